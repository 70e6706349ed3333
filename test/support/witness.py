#!/usr/bin/python3
"""The integration tests' witness: a second, real XMPP account in the rooms.

It reports what arrived there and does what a room owner does (kick, ban, configure,
affiliations, read the archive). It is written in Python on slixmpp, not on the gateway's
own XMPP code, so that a bug in that code cannot hide itself by being in the witness too.

Driven by test/support/witness.ts over JSON lines. The first line on stdin is the setup:
{"jid", "password", "host", "port", "ca", "rooms", "nick"}. Every later line is a command
{"seq": n, "cmd": name, ...}; stdout gets one JSON object a line: events, and replies
{"event": "reply", "seq": n, "ok": true, "result": ...} or {"ok": false, "error": "..."}.
It reconnects and rejoins by itself when the server restarts; it exits when stdin closes.
"""
import asyncio
import json
import logging
import ssl
import sys
from pathlib import Path

from slixmpp import JID, ClientXMPP, InvalidJID
from slixmpp.exceptions import IqError, IqTimeout, PresenceError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

OUT = sys.stdout
sys.stdout = sys.stderr  # slixmpp 1.8 print()s during joins: keep stdout for the protocol
REPLY_TIMEOUT = 15  # seconds; witness.ts gives up on a command after 20
ROOMCONFIG = "http://jabber.org/protocol/muc#roomconfig"
SID = "urn:xmpp:sid:0"  # XEP-0359
REPLY = "urn:xmpp:reply:0"  # XEP-0461
FALLBACK = "urn:xmpp:fallback:0"  # XEP-0428
REACTIONS = "urn:xmpp:reactions:0"  # XEP-0444


def emit(event, **fields):
    try:
        OUT.write(json.dumps({"event": event, **fields}) + "\n")
        OUT.flush()
    except BrokenPipeError:
        pass  # witness.ts is gone; stdin's end follows


TASKS = set()  # asyncio keeps only weak references to running tasks


def spawn(coro):
    task = asyncio.ensure_future(coro)
    TASKS.add(task)
    task.add_done_callback(TASKS.discard)


def message_id(msg):
    """The XEP-0359 origin-id the sender chose, else the message id."""
    origin = msg.xml.find("{urn:xmpp:sid:0}origin-id")
    return origin.get("id") if origin is not None else msg["id"] or None


def child(xml, name):
    """`xml`'s first child `name` in the stanza's own namespace (jabber:client)."""
    ns = xml.tag[:xml.tag.index("}") + 1] if xml.tag.startswith("{") else ""
    return xml.find(ns + name)


def covered(body, start, end):
    """A XEP-0428 range: its offsets, and the text of `body` it covers, or why it is malformed.

    Offsets count Unicode code points (XEP-0428), as Python's str indexes do; a <body/>
    without them covers the whole body."""
    found = {}
    for name, raw in (("start", start), ("end", end)):
        if raw is None:
            continue
        if not (raw.isascii() and raw.isdigit()):  # no sign, no space, no "²"
            return {**found, "error": f"{name}={raw!r} is not a non-negative integer"}
        found[name] = int(raw)
    first, last = found.get("start", 0), found.get("end", len(body))
    if not first <= last <= len(body):
        return {**found, "error": f"range {first}..{last} is outside the body "
                                  f"({len(body)} code points)"}
    return {**found, "text": body[first:last]}


def same_jid(a, b):
    """Whether `a` and `b` are the same bare JID once normalised; a malformed one is not."""
    try:
        return a is not None and JID(a).bare == JID(b).bare
    except InvalidJID:
        return False


def extras(xml, room, body):
    """What a room message says beyond its body, read from its raw XML (no slixmpp plugins,
    whose parsing is not what is being checked): the room's stanza-id, reply, fallbacks,
    thread and reactions. Only the elements present are included."""
    found = {}
    for sid in xml.findall(f"{{{SID}}}stanza-id"):
        # Anyone can put a stanza-id in (XEP-0359, security): only the room's own counts.
        if same_jid(sid.get("by"), room) and sid.get("id"):
            found["stanzaId"] = sid.get("id")
            break
    reply = xml.find(f"{{{REPLY}}}reply")
    if reply is not None:
        found["reply"] = {k: reply.get(k) for k in ("to", "id") if reply.get(k) is not None}
    fallbacks = [{"for": f.get("for"),
                  "bodies": [covered(body, b.get("start"), b.get("end"))
                             for b in f.findall(f"{{{FALLBACK}}}body")]}
                 for f in xml.findall(f"{{{FALLBACK}}}fallback")]
    if fallbacks:
        found["fallbacks"] = fallbacks
    thread = child(xml, "thread")
    if thread is not None:
        found["thread"] = thread.text or ""
    reactions = xml.find(f"{{{REACTIONS}}}reactions")
    if reactions is not None:
        found["reactions"] = {"id": reactions.get("id"),
                              "emojis": [r.text or "" for r in
                                         reactions.findall(f"{{{REACTIONS}}}reaction")]}
    return found


def is_room_message(xml):
    """Has a body (what slixmpp's groupchat_message needs) or is a XEP-0444 reaction."""
    return child(xml, "body") is not None or xml.find(f"{{{REACTIONS}}}reactions") is not None


def describe(err):
    """'condition: text' for XMPP errors, the exception itself for anything else."""
    if isinstance(err, (IqError, PresenceError)):
        return f"{err.condition}: {err.text}" if err.text else err.condition
    if isinstance(err, (IqTimeout, asyncio.TimeoutError)):
        return f"timeout: no reply within {REPLY_TIMEOUT} s"
    return f"{type(err).__name__}: {err}"


class Witness(ClientXMPP):
    def __init__(self, setup):
        super().__init__(setup["jid"], setup["password"])
        self.target = (setup["host"], int(setup["port"]))
        # Trust the test CA and nothing else (no system store), and check the host name.
        self.ssl_context = ssl.create_default_context(cafile=setup["ca"])
        self.ca_certs = Path(setup["ca"])
        self.nicks = {room: setup["nick"] for room in setup["rooms"]}  # rooms to be in
        self.joined = set()
        self.join_errors = {}  # room -> future failed by the room's error presence
        self.stopping = False
        for plugin in ("xep_0030", "xep_0004", "xep_0045", "xep_0059", "xep_0297", "xep_0313"):
            self.register_plugin(plugin)
        self.muc = self.plugin["xep_0045"]
        for event, handler in {
            "session_start": self.on_session_start, "disconnected": self.on_disconnected,
            "connection_failed": self.on_connection_failed, "stream_error": self.on_stream_error,
            "failed_all_auth": self.on_auth_failed,
            "message": self.on_direct, "groupchat_presence": self.on_presence,
        }.items():
            self.add_event_handler(event, handler)
        # Not the presence_error event: slixmpp drops those from a room it has been in.
        self.register_handler(
            Callback("join errors", StanzaPath("presence@type=error"), self.on_presence_error))
        # Not the groupchat_message event: it needs a <body/>, which a reaction has not.
        self.register_handler(
            Callback("room messages", StanzaPath("message@type=groupchat"), self.on_message))

    async def get_dns_records(self, domain, port=None):
        # Exactly host:port, whatever DNS says about the domain (it is verified by TLS).
        return [(domain, self.target[0], self.target[1])]

    def start(self):
        if not self.stopping:
            self.connect(address=self.target)

    def on_connection_failed(self, err):
        # slixmpp's own retry waits 1, 3, 7, 15 s...: too slow for a server restart.
        self.cancel_connection_attempt()
        self.loop.call_later(0.25, self.start)

    def on_disconnected(self, reason):
        self.joined.clear()
        emit("disconnected", reason=str(reason))
        self.loop.call_later(0.25, self.start)

    def on_stream_error(self, err):
        text = f"stream error {err['condition']}: {err['text']}"
        if err["condition"] == "conflict":  # a newer session of this account took over
            self.stopping = True  # reconnecting would just throw that one out in turn
            text += " (not reconnecting: the server's session limit, or the same resource?)"
        emit("error", error=text)

    def on_auth_failed(self, _):
        self.stopping = True  # a wrong password stays wrong: no retries
        emit("auth_failed", error="not-authorized: no SASL mechanism worked")

    def exception(self, err):  # an exception in a slixmpp handler
        emit("error", error=describe(err))

    async def on_session_start(self, _):
        self.send_presence()  # available: the server then routes direct messages to us
        emit("connected", jid=str(self.boundjid))
        for room in list(self.nicks):
            spawn(self.rejoin(room))

    async def rejoin(self, room):
        """Joins `room` while it is wanted, once a second until it works (it may be locked)."""
        while room in self.nicks and self.is_connected() and room not in self.joined:
            try:
                return await self.join(room)
            except Exception:
                await asyncio.sleep(1)

    async def join(self, room, nick=None):
        nick = nick or self.nicks[room]
        self.nicks[room] = nick
        # join_muc_wait misses errors without the muc element (Prosody's): watch for them too.
        failed = self.join_errors[room] = self.loop.create_future()
        joining = asyncio.ensure_future(
            self.muc.join_muc_wait(JID(room), nick, maxstanzas=0, timeout=REPLY_TIMEOUT))
        try:
            await asyncio.wait([joining, failed], return_when=asyncio.FIRST_COMPLETED)
            if failed.done():
                joining.cancel()
                failed.result()  # raises the PresenceError
            failed.cancel()
            pres, *_ = joining.result()
            codes = sorted(pres["muc"]["status_codes"])
            if 201 in codes:  # we created it: unlock it as an instant room (XEP-0045 §10.1.2)
                form = self.plugin["xep_0004"].make_form(ftype="submit")
                await self.muc.set_room_config(JID(room), form, timeout=REPLY_TIMEOUT)
        except Exception as err:
            emit("join_failed", room=room, nick=nick, error=describe(err))
            raise
        finally:
            self.join_errors.pop(room, None)
        self.joined.add(room)
        emit("joined", room=room, nick=nick, codes=codes, affiliation=pres["muc"]["affiliation"])
        return {"codes": codes}

    def on_presence_error(self, pres):
        failed = self.join_errors.get(pres["from"].bare)
        if failed is not None and not failed.done():
            failed.set_exception(PresenceError(pres))

    def on_message(self, msg):  # every groupchat message with a body or reactions, history flagged
        if not is_room_message(msg.xml):
            return  # a subject, a chat state, a MUC status message...
        room, body = msg["from"].bare, msg["body"]
        emit("message", room=room, nick=msg["from"].resource, body=body, id=message_id(msg),
             delayed=msg.xml.find("{urn:xmpp:delay}delay") is not None,
             **extras(msg.xml, room, body))

    def on_direct(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            emit("direct", **{"from": str(msg["from"])}, type=msg["type"], body=msg["body"],
                 id=message_id(msg))

    def on_presence(self, pres):
        room, nick = pres["from"].bare, pres["from"].resource
        kind = "unavailable" if pres["type"] == "unavailable" else "available"
        codes = sorted(pres["muc"]["status_codes"])
        emit("presence", room=room, nick=nick, type=kind, codes=codes,
             role=pres["muc"]["role"], affiliation=pres["muc"]["affiliation"])
        if kind == "unavailable" and 110 in codes and room in self.joined:
            self.joined.discard(room)  # kicked, banned, or left
            emit("left", room=room, codes=codes)

    async def archive(self, room, max=None):
        """Every archived groupchat message of `room`, oldest first (XEP-0313, RSM pages)."""
        found, after = [], None
        while max is None or len(found) < max:
            rsm = {"max": 100, **({"after": after} if after else {})}
            iq = await self.plugin["xep_0313"].retrieve(jid=JID(room), rsm=rsm,
                                                        timeout=REPLY_TIMEOUT)
            for result in iq["mam"]["results"]:
                msg = result["mam_result"]["forwarded"]["stanza"]
                if msg["body"] or msg.xml.find(f"{{{REACTIONS}}}reactions") is not None:
                    # The result's id is the archive's UID, which XEP-0313 ("Communicating the
                    # archive ID") makes the message's stanza-id by the room; an archived copy's
                    # own <stanza-id by=room>, if it kept one, takes precedence below.
                    archive_id = result["mam_result"]["id"] or None
                    more = extras(msg.xml, room, msg["body"])
                    found.append({"nick": msg["from"].resource, "body": msg["body"],
                                  "id": message_id(msg), "archiveId": archive_id,
                                  **({"stanzaId": archive_id} if archive_id else {}), **more})
            fin = iq["mam_fin"]
            after = fin["rsm"]["last"]
            if fin.xml.get("complete") in ("true", "1") or not after or not iq["mam"]["results"]:
                break
        return found if max is None else found[:max]

    async def command(self, c):
        room = JID(c["room"]) if "room" in c else None
        iq = {"timeout": REPLY_TIMEOUT}
        name = c["cmd"]
        if name == "join":
            try:
                return await self.join(c["room"], c.get("nick"))
            except Exception:
                self.nicks.pop(c["room"], None)  # the caller is told; no retries
                raise
        if name == "leave":
            self.joined.discard(c["room"])
            return self.muc.leave_muc(room, self.nicks.pop(c["room"]))
        if name == "kick":
            return await self.muc.set_role(room, c["nick"], "none", **iq)
        if name in ("ban", "affiliation"):  # a ban is affiliation outcast (XEP-0045 §9.1)
            affiliation = "outcast" if name == "ban" else c["affiliation"]
            return await self.muc.set_affiliation(room, affiliation, jid=JID(c["jid"]), **iq)
        if name == "configure":
            form = self.plugin["xep_0004"].make_form(ftype="submit")
            form.add_field(var="FORM_TYPE", ftype="hidden", value=ROOMCONFIG)
            for var, value in c["fields"].items():
                form.add_field(var=var, value=value)
            return await self.muc.set_room_config(room, form, **iq)
        if name == "archive":
            return await self.archive(c["room"], c.get("max"))
        if name == "send":
            self.make_message(mto=room, mbody=c["body"], mtype="groupchat").send()
            return None
        raise ValueError(f"unknown command {name!r}")

    async def run(self, c):
        try:
            result = await self.command(c)
            emit("reply", seq=c.get("seq"), ok=True, result=result)
        except Exception as err:
            emit("reply", seq=c.get("seq"), ok=False, error=describe(err))

    async def stop(self):
        self.stopping = True
        for room in list(self.joined):
            self.muc.leave_muc(JID(room), self.nicks[room])
        if self.is_connected():
            try:
                await asyncio.wait_for(self.disconnect(wait=2), 5)
            except asyncio.TimeoutError:
                self.abort()


async def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, ctx: emit("error", error=str(ctx.get("exception")
                                                                      or ctx["message"])))
    stdin = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    witness = Witness(json.loads(await stdin.readline()))
    witness.start()
    while line := await stdin.readline():
        try:
            c = json.loads(line)
        except ValueError as err:
            emit("error", error=f"not JSON: {err}")
            continue
        if c.get("cmd") == "stop":
            await witness.stop()
            emit("reply", seq=c.get("seq"), ok=True, result=None)
            return
        spawn(witness.run(c))
    await witness.stop()  # stdin closed: the test process is gone


if __name__ == "__main__":
    asyncio.run(main())
