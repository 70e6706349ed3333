/**
 * The integration tests' witness: a second, real XMPP account in the rooms, recording
 * exactly what arrives (body, sender nick, and the room's stanza-id, reply, fallback, thread
 * and reaction elements) and acting as the rooms' owner (kicks, bans, configuration,
 * affiliations, archive reads). It runs as a Python process on slixmpp (witness.py, spoken
 * to in JSON lines), sharing no code with the gateway it checks.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { signal, within } from "../../src/devserver/process.ts";
import type { Account } from "./gateway.ts";
import { extrasOf, type MessageExtras } from "./witness-extras.ts";

export {
  bodyWithoutFallback,
  type Fallback,
  type FallbackRange,
  fallbackText,
  type MessageExtras,
  type Reactions,
  type ReplyTo,
} from "./witness-extras.ts";

/** Where an XMPP server for the tests listens (Prosody's or ejabberd's harness fits). */
export interface WitnessServer {
  /** The domain accounts live on. */
  readonly domain: string;
  /** The MUC service's domain. */
  readonly mucDomain: string;
  readonly host: string;
  /** The client port offering STARTTLS. */
  readonly c2sPort: number;
  /** The CA that signed the server's certificate: the only one trusted. */
  readonly caFile: string;
}

/** A message seen in a room: who said what (XEP-0045 §7.4), a body or reactions. */
export interface RoomMessage extends MessageExtras {
  readonly room: string;
  readonly nick: string;
  readonly body: string;
  /** XEP-0359 origin-id, else the message id. */
  readonly id: string | undefined;
}

/** A message addressed to the witness's account itself (RFC 6121 §5). */
export interface DirectMessage {
  /** The sender's full JID. */
  readonly from: string;
  /** "chat" or "normal". */
  readonly type: string;
  readonly body: string;
  readonly id: string | undefined;
}

/** An occupant's presence in a room, as the room broadcast it (XEP-0045 §7.2). */
export interface RoomPresence {
  readonly room: string;
  readonly nick: string;
  readonly type: "available" | "unavailable";
  /** MUC status codes, e.g. 110 (self), 307 (kicked). */
  readonly codes: number[];
  readonly role: string;
  readonly affiliation: string;
}

/**
 * One archived groupchat message (XEP-0313) with a body or reactions. Its `stanzaId` is
 * the copy's own `<stanza-id by=room>`, else the archive id (the same thing, by XEP-0313).
 */
export interface Archived extends MessageExtras {
  readonly nick: string;
  readonly body: string;
  readonly id: string | undefined;
  /** The MAM `<result id>`: the archive's id of the message. */
  readonly archiveId?: string;
}

/** A joined witness and what it has seen. */
export interface Observer {
  /** Live messages, in arrival order; never room history (which is not asked for anyway). */
  readonly messages: RoomMessage[];
  /** Messages that came with a delay stamp (history), kept out of `messages`. */
  readonly delayed: RoomMessage[];
  /** Every presence broadcast in the rooms, in arrival order. */
  readonly presences: RoomPresence[];
  /** Chat and normal messages sent to the witness's account, in arrival order. */
  readonly direct: DirectMessage[];
  /** Resolves with the first message (seen or future) matching `pred`; rejects after `ms`. */
  waitFor(pred: (m: RoomMessage) => boolean, ms?: number): Promise<RoomMessage>;
  /** Calls `listener` with every presence from now on; returns the function that stops it. */
  onPresence(listener: (p: RoomPresence) => void): () => void;
  /** Whether the witness is in `room` now (false while it reconnects after an outage). */
  joined(room: string): boolean;
  /** Resolves once the witness is in `room`; rejects after `ms`. */
  untilJoined(room: string, ms?: number): Promise<void>;
  /** Joins one more room (as `nick`, by default the witness's nick). */
  join(room: string, nick?: string): Promise<void>;
  leave(room: string): Promise<void>;
  /** Kicks `nick` out of `room` (XEP-0045 §8.2): the witness must be a moderator there. */
  kick(room: string, nick: string): Promise<void>;
  /** Bans `jid` from `room` (affiliation outcast, §9.1). */
  ban(room: string, jid: string): Promise<void>;
  /** Submits room configuration fields (§10.2), e.g. members-only. */
  configureRoom(room: string, fields: Record<string, string>): Promise<void>;
  /** Every message in the room's archive, oldest first (XEP-0313, all pages). */
  archive(room: string, max?: number): Promise<Archived[]>;
  /** Sets the affiliation of `jid` in `room` (§9.3, §10.6). */
  setAffiliation(
    room: string,
    jid: string,
    affiliation: "owner" | "admin" | "member" | "none",
  ): Promise<void>;
  /** Says `body` in `room`. */
  say(room: string, body: string): Promise<void>;
  /** Leaves the rooms, closes the stream and ends the process; safe to call twice. */
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL("./witness.py", import.meta.url));
/** Debian's python3 with python3-slixmpp, not whatever python is first on PATH. */
const PYTHON = process.env.WITNESS_PYTHON ?? "/usr/bin/python3";
const INSTALL_HINT = `the witness needs ${PYTHON} with slixmpp: run \`sudo apt-get install -y python3-slixmpp\``;
const COMMAND_MS = 20_000;
const JOIN_MS = 20_000;
const STOP_MS = 5_000;

/**
 * Logs in as `account` (already registered), available, and joins `rooms` under `nick`
 * (distinct per concurrent witness); resolves once it is in all of them.
 */
export async function observe(
  server: WitnessServer,
  account: Account,
  rooms: string[],
  nick = "watcher",
): Promise<Observer> {
  const witness = new Witness(server, account, rooms, nick);
  try {
    await witness.untilConnected(JOIN_MS);
    await Promise.all(rooms.map((room) => witness.untilJoined(room, JOIN_MS, true)));
  } catch (err) {
    await witness.stop();
    throw err;
  }
  return witness;
}

/** Witness processes still running, killed if this process exits first. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

interface Event {
  event: string;
  [key: string]: unknown;
}

class Witness implements Observer {
  readonly messages: RoomMessage[] = [];
  readonly delayed: RoomMessage[] = [];
  readonly presences: RoomPresence[] = [];
  readonly direct: DirectMessage[] = [];
  private readonly child: ChildProcess;
  private readonly rooms = new Set<string>();
  private readonly joinErrors = new Map<string, string>();
  private readonly errors: string[] = [];
  private readonly presenceListeners = new Set<(p: RoomPresence) => void>();
  /** Called after every event and at the exit: the waits re-check their condition. */
  private readonly changed = new Set<() => void>();
  /** Replies to commands, by seq, until their command has taken them. */
  private readonly replies = new Map<number, Event>();
  private seq = 0;
  private stderr = "";
  private connected = false;
  private authError: string | undefined;
  private exit: string | undefined;
  private readonly exited: Promise<void>;
  private stopping: Promise<void> | undefined;

  private readonly nick: string;

  constructor(server: WitnessServer, account: Account, rooms: string[], nick: string) {
    this.nick = nick;
    this.child = spawn(PYTHON, [SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
    live.add(this.child);
    // Only a wait (each with its own timer) keeps the test process alive, never the witness.
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) {
      (s as Socket | null)?.unref();
    }
    this.child.stdin?.on("error", () => {}); // EPIPE once it has gone: reported by the exit
    this.child.stderr?.on("data", (d) => {
      this.stderr = (this.stderr + d).slice(-8000);
    });
    createInterface({ input: this.child.stdout as Socket }).on("line", (line) => this.onLine(line));
    this.exited = new Promise((resolve) => {
      const gone = (why: string): void => {
        live.delete(this.child);
        this.exit ??= why;
        this.rooms.clear();
        for (const f of [...this.changed]) f();
        resolve();
      };
      this.child.once("error", (err) => gone(`could not run ${PYTHON}: ${err.message}`));
      this.child.once("exit", (code, sig) => gone(`exited (code ${code}, signal ${sig})`));
    });
    this.write({
      jid: `${account.user}@${server.domain}`,
      password: account.password,
      host: server.host,
      port: server.c2sPort,
      ca: server.caFile,
      rooms,
      nick,
    });
  }

  private write(obj: object): void {
    this.child.stdin?.write(`${JSON.stringify(obj)}\n`);
  }

  private onLine(line: string): void {
    let e: Event;
    try {
      e = JSON.parse(line);
    } catch {
      this.stderr += `(stdout) ${line}\n`;
      return;
    }
    const room = String(e.room);
    switch (e.event) {
      case "message": {
        const id = typeof e.id === "string" ? e.id : undefined;
        const m: RoomMessage = {
          room,
          nick: String(e.nick),
          body: String(e.body),
          id,
          ...extrasOf(e),
        };
        (e.delayed ? this.delayed : this.messages).push(m);
        break;
      }
      case "presence": {
        const p: RoomPresence = {
          room,
          nick: String(e.nick),
          type: e.type === "unavailable" ? "unavailable" : "available",
          codes: e.codes as number[],
          role: String(e.role),
          affiliation: String(e.affiliation),
        };
        this.presences.push(p);
        for (const f of [...this.presenceListeners]) f(p);
        break;
      }
      case "direct":
        this.direct.push({
          from: String(e.from),
          type: String(e.type),
          body: String(e.body),
          id: typeof e.id === "string" ? e.id : undefined,
        });
        break;
      case "connected":
        this.connected = true;
        break;
      case "auth_failed":
        this.authError = String(e.error);
        break;
      case "joined":
        this.rooms.add(room);
        this.joinErrors.delete(room);
        break;
      case "join_failed":
        this.joinErrors.set(room, String(e.error));
        break;
      case "left":
        this.rooms.delete(room);
        break;
      case "disconnected":
        this.connected = false;
        this.rooms.clear();
        break;
      case "error":
        this.errors.push(String(e.error));
        break;
      case "reply":
        this.replies.set(Number(e.seq), e);
        break;
    }
    for (const f of [...this.changed]) f();
  }

  /** What to show when something fails: what the process said and where it is. */
  private diagnostics(): string {
    const parts = [`in rooms: [${[...this.rooms].join(", ")}]`];
    if (this.exit) parts.push(`process ${this.exit}`);
    if (this.errors.length > 0) parts.push(`errors: ${this.errors.slice(-5).join("; ")}`);
    const stderr = this.stderr.replace(/^Using slower stringprep.*\n/m, "").trim();
    if (stderr) parts.push(`stderr:\n${stderr}`);
    if (/No module named 'slixmpp'|could not run/.test(`${stderr}${this.exit}`)) {
      parts.push(INSTALL_HINT);
    }
    return `; witness ${this.nick} ${parts.join("; ")}`;
  }

  /** Resolves with `check()` once it is defined; rejects with `what` after `ms` or at the exit. */
  private when<T>(what: string, check: () => T | undefined, ms: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const settle = (): void => {
        let value: T | undefined;
        try {
          value = check();
        } catch (err) {
          finish();
          reject(err);
          return;
        }
        if (value !== undefined) {
          finish();
          resolve(value);
        } else if (this.exit !== undefined) {
          finish();
          reject(new Error(`${what}${this.diagnostics()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${what} within ${ms} ms${this.diagnostics()}`));
      }, ms);
      const finish = (): void => {
        clearTimeout(timer);
        this.changed.delete(settle);
      };
      this.changed.add(settle);
      settle();
    });
  }

  private async command<T>(cmd: string, args: Record<string, unknown>): Promise<T> {
    const seq = ++this.seq;
    const what = `${cmd} ${JSON.stringify(args)}`;
    this.write({ seq, cmd, ...args });
    try {
      const e = await this.when(`no reply to ${what}`, () => this.replies.get(seq), COMMAND_MS);
      if (!e.ok) throw new Error(`witness ${this.nick}: ${what} failed: ${e.error}`);
      return e.result as T;
    } finally {
      this.replies.delete(seq);
    }
  }

  waitFor(pred: (m: RoomMessage) => boolean, ms = 10_000): Promise<RoomMessage> {
    return this.when("no matching message", () => this.messages.find(pred), ms).catch(
      (err: Error) => {
        throw new Error(`${err.message}; seen: ${JSON.stringify(this.messages)}`);
      },
    );
  }

  onPresence(listener: (p: RoomPresence) => void): () => void {
    this.presenceListeners.add(listener);
    return () => this.presenceListeners.delete(listener);
  }

  joined(room: string): boolean {
    return this.rooms.has(room);
  }

  untilConnected(ms: number): Promise<void> {
    return this.when(
      "not logged in",
      () => {
        if (this.authError !== undefined)
          throw new Error(`witness ${this.nick}: ${this.authError}`);
        return this.connected ? true : undefined;
      },
      ms,
    ).then(() => undefined);
  }

  /** With `failFast`, a refused join rejects at once (the first join of observe()). */
  untilJoined(room: string, ms = JOIN_MS, failFast = false): Promise<void> {
    return this.when(
      `not in ${room}`,
      () => {
        if (this.rooms.has(room)) return true;
        const error = failFast ? this.joinErrors.get(room) : undefined;
        if (error !== undefined) throw new Error(`witness could not join ${room}: ${error}`);
        return undefined;
      },
      ms,
    ).then(() => undefined);
  }

  async join(room: string, nick = this.nick): Promise<void> {
    await this.command("join", { room, nick });
  }

  async leave(room: string): Promise<void> {
    await this.command("leave", { room });
  }

  async kick(room: string, nick: string): Promise<void> {
    await this.command("kick", { room, nick });
  }

  async ban(room: string, jid: string): Promise<void> {
    await this.command("ban", { room, jid });
  }

  async configureRoom(room: string, fields: Record<string, string>): Promise<void> {
    await this.command("configure", { room, fields });
  }

  async archive(room: string, max?: number): Promise<Archived[]> {
    const got = await this.command<Event[]>("archive", {
      room,
      ...(max !== undefined && { max }),
    });
    return got.map((m) => ({
      nick: String(m.nick),
      body: String(m.body),
      id: typeof m.id === "string" ? m.id : undefined,
      ...(typeof m.archiveId === "string" && { archiveId: m.archiveId }),
      ...extrasOf(m),
    }));
  }

  async setAffiliation(
    room: string,
    jid: string,
    affiliation: "owner" | "admin" | "member" | "none",
  ): Promise<void> {
    await this.command("affiliation", { room, jid, affiliation });
  }

  async say(room: string, body: string): Promise<void> {
    await this.command("send", { room, body });
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.exit === undefined) this.write({ seq: ++this.seq, cmd: "stop" });
      if (await within(this.exited, STOP_MS)) return;
      if (this.child.pid !== undefined) signal(this.child.pid, "SIGKILL");
      await within(this.exited, STOP_MS);
    })();
    return this.stopping;
  }
}
