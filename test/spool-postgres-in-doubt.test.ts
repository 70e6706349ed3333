// A commit whose reply is lost: the connection fails after COMMIT reached the server, so
// the transaction may have committed. Against a real PostgreSQL, behind a TCP proxy of the
// test's that cuts the connection at the COMMIT, either after passing it on (the server
// commits, its reply is lost) or before (the server never sees it, and rolls back).
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, test } from "node:test";
import { isCode } from "../src/core/errors.ts";
import { type PostgresServer, startPostgres } from "../src/devserver/postgres.ts";
import { openPostgresSpool } from "../src/spool/postgres.ts";
import { message } from "../src/spool/spool.contract.ts";

const ROOMY = { maxMessages: 100_000, maxBytes: 100_000_000 };
const LANE = { room: "ops@conf.example.org", nick: "bot" };

let server: PostgresServer;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

/** A proxy to the server; `cutNextCommit` makes it cut the connection that sends the next COMMIT. */
interface Cutter {
  readonly port: number;
  cutNextCommit(how: "after passing it on" | "before passing it on"): void;
  /** Connections cut so far. */
  cuts(): number;
  close(): Promise<void>;
}

async function commitCutter(upstreamPort: number): Promise<Cutter> {
  let armed: "after passing it on" | "before passing it on" | undefined;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const proxy: Server = createServer((client) => {
    const upstream = connect(upstreamPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    let cutting = false;
    const cut = () => {
      cuts += 1;
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (d) => {
      if (armed !== undefined && d.includes("COMMIT")) {
        const how = armed;
        armed = undefined;
        cutting = true;
        if (how === "before passing it on") return cut();
        upstream.write(d);
        // Time for the server to commit; its reply is never passed on.
        setTimeout(cut, 300);
        return;
      }
      upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (!cutting) client.write(d);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const address = proxy.address();
  assert.ok(address !== null && typeof address === "object");
  return {
    port: address.port,
    cutNextCommit(how) {
      armed = how;
    },
    cuts: () => cuts,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    },
  };
}

/** A spool on a fresh database, reached through a commit cutter. */
async function withCutSpool(
  fn: (
    spool: Awaited<ReturnType<typeof openPostgresSpool>>,
    cutter: Cutter,
    direct: Awaited<ReturnType<typeof openPostgresSpool>>,
  ) => Promise<void>,
) {
  const url = await server.createDatabase();
  const cutter = await commitCutter(server.port);
  const via = new URL(url);
  via.port = String(cutter.port);
  const spool = await openPostgresSpool({ url: via.href, limits: ROOMY });
  const direct = await openPostgresSpool({ url, limits: ROOMY });
  try {
    await fn(spool, cutter, direct);
  } finally {
    await spool.close();
    await direct.close();
    await cutter.close();
    await server.dropDatabase(new URL(url).pathname.slice(1));
  }
}

test("the reply to COMMIT lost, the commit not: the post resolves as stored, and is stored once", () =>
  withCutSpool(async (spool, cutter, direct) => {
    cutter.cutNextCommit("after passing it on");
    const stored = await spool.enqueue([message(LANE, "committed, reply lost")]);
    assert.equal(cutter.cuts(), 1, "the connection was cut at the COMMIT");
    assert.deepEqual(
      stored.map((m) => m.body),
      ["committed, reply lost"],
    );
    assert.deepEqual(
      (await direct.pending(LANE, 10)).map((m) => [m.id, m.seq]),
      stored.map((m) => [m.id, m.seq]),
      "stored once, as the reply said",
    );
    assert.equal(spool.stats().messages, 1, "counted");
    // The spool goes on writing on a fresh connection.
    await spool.enqueue([message(LANE, "next")]);
    assert.equal((await direct.pending(LANE, 10)).length, 2);
  }));

test("the connection cut before COMMIT reached the server: UNAVAILABLE with Retry-After, nothing stored", () =>
  withCutSpool(async (spool, cutter, direct) => {
    cutter.cutNextCommit("before passing it on");
    const err = await spool.enqueue([message(LANE, "never committed")]).catch((e: unknown) => e);
    assert.equal(cutter.cuts(), 1);
    assert.ok(isCode(err, "UNAVAILABLE"), String(err));
    assert.ok(((err as { retryAfter?: number }).retryAfter ?? 0) > 0, "Retry-After");
    assert.deepEqual(await direct.pending(LANE, 10), [], "nothing stored");
    assert.equal(spool.stats().messages, 0);
  }));
