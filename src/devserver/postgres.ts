// A throwaway, loopback-only PostgreSQL (Debian's 15) for the spool tests, the twin of
// prosody.ts and ejabberd.ts: initdb into its own temp dir, the postmaster in the foreground
// on 127.0.0.1 and a random port (its Unix socket in the temp dir too), a test user with its
// own database, stopped by PID. initdb and postgres refuse to run as root: as root they run
// as Debian's `postgres` user, which then owns the temp dir. Debian's own cluster is never
// used (its binaries live off PATH, in /usr/lib/postgresql/<major>/bin).

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import {
  assertTraversable,
  findExecutable,
  freePort,
  PortInUseError,
  retryWhilePortInUse,
  type ServerControls,
  type ServerProcess,
  spawnServer,
} from "./process.ts";

/** A running throwaway PostgreSQL, and the database and user made for the tests. */
export interface PostgresServer extends ServerControls {
  readonly host: string;
  readonly port: number;
  /** The temp dir: `data/` (the cluster), the socket, the logs. */
  readonly dir: string;
  /** The postmaster's PID (changes at each start). */
  pid: number;
  /** Its log (stderr). */
  readonly logFile: string;
  /** The test user (LOGIN CREATEDB, not a superuser) and its password. */
  readonly user: string;
  readonly password: string;
  /** The test user's own database. */
  readonly database: string;
  /** `postgres://user:password@127.0.0.1:port/database`: what a spool connects to. */
  readonly url: string;
  /** The same for the superuser `postgres`, for what the tests do behind the spool's back. */
  readonly adminUrl: string;
  /** Creates a fresh empty database owned by the test user (a random name unless given); resolves with its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Drops a database made by `createDatabase`, closing its sessions first. */
  dropDatabase(name: string): Promise<void>;
}

const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 30_000;
const EXEC_TIMEOUT_MS = 60_000;
const RUN_AS = "postgres"; // the system user Debian's postgresql-common creates
const TEST_USER = "gateway";
const TEST_DB = "gateway";
const INSTALL_HINT =
  "PostgreSQL is not installed: run `sudo apt-get install -y postgresql` (Debian/Ubuntu) and " +
  "`sudo service postgresql stop`; the spool tests start their own server.";

/** The directory of `initdb` and `postgres`, or throws one line telling how to install them. */
export function requirePostgres(): string {
  // Debian: /usr/lib/postgresql/<major>/bin, the newest major first; elsewhere often on PATH.
  const root = "/usr/lib/postgresql";
  let majors: string[] = [];
  try {
    majors = readdirSync(root).filter((d) => /^\d+$/.test(d));
  } catch {
    // Not Debian's layout.
  }
  majors.sort((a, b) => Number(b) - Number(a));
  const dirs = majors.map((m) => path.join(root, m, "bin"));
  const onPath = findExecutable("initdb");
  if (onPath !== undefined) dirs.push(path.dirname(onPath));
  for (const dir of dirs) {
    try {
      statSync(path.join(dir, "initdb"));
      statSync(path.join(dir, "postgres"));
      return dir;
    } catch {
      // Incomplete: keep looking.
    }
  }
  throw new Error(INSTALL_HINT);
}

/** Options for {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Extra `-c name=value` settings of the server. */
  settings?: Record<string, string>;
}

/** Initialises and starts a fresh PostgreSQL on a random loopback port, with the test user and database. */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = requirePostgres();
  const owner = await runAs();
  const parent = os.tmpdir();
  if (owner !== undefined) assertTraversable(parent, RUN_AS);
  const dir = await mkdtemp(path.join(parent, "xmpp-msg-gw-postgres-"));
  try {
    const password = randomBytes(12).toString("hex");
    await initCluster(bin, dir, owner, password);
    return await retryWhilePortInUse(() => startIn(bin, dir, owner, password, opts));
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Runs initdb as `owner` into `dir/data`; the superuser `postgres` gets `password`. */
async function initCluster(bin: string, dir: string, owner: Owner, password: string) {
  const pwfile = path.join(dir, "pwfile");
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner !== undefined) {
    await chown(dir, owner.uid, owner.gid);
    await chown(pwfile, owner.uid, owner.gid);
  }
  // --no-sync: a throwaway cluster need not survive a power loss of the test machine; the
  // server itself still fsyncs (the spool's durability is what the tests look at).
  await exec(
    path.join(bin, "initdb"),
    [
      ...["-D", path.join(dir, "data"), "-U", "postgres", "--pwfile", pwfile],
      ...["-E", "UTF8", "--no-locale", "--auth-local=peer", "--auth-host=scram-sha-256"],
      ...["--no-sync", "--no-instructions"],
    ],
    owner,
  );
  await rm(pwfile);
}

async function startIn(
  bin: string,
  dir: string,
  owner: Owner,
  password: string,
  opts: StartPostgresOptions,
): Promise<PostgresServer> {
  const port = await freePort();
  const logFile = path.join(dir, "postgres.log");
  const settings: Record<string, string> = {
    listen_addresses: HOST,
    port: String(port),
    unix_socket_directories: dir,
    // A test spool needs a few connections; the default 100 costs shared memory for nothing.
    max_connections: "40",
    ...opts.settings,
  };
  const args = ["-D", path.join(dir, "data")];
  for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`);
  const launch = () => launchPostgres(bin, args, dir, logFile, owner, port);
  const proc = await launch();
  const admin = urlOf("postgres", password, port, "postgres");
  const url = urlOf(TEST_USER, password, port, TEST_DB);
  try {
    await sql(admin, [
      `CREATE ROLE ${TEST_USER} LOGIN CREATEDB PASSWORD '${password}'`,
      `CREATE DATABASE ${TEST_DB} OWNER ${TEST_USER}`,
    ]);
  } catch (err) {
    await proc.stop("SIGINT");
    throw err;
  }
  // SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, the data is
  // checkpointed. SIGTERM ("smart") would wait for every client to leave, and a test's
  // connection pool may never do that. A crash is SIGQUIT ("immediate"): no checkpoint,
  // recovery at the next start, as after a power loss.
  let current = proc;
  let stopping: Promise<void> | undefined;
  const server: PostgresServer = {
    host: HOST,
    port,
    dir,
    pid: proc.pid,
    logFile,
    user: TEST_USER,
    password,
    database: TEST_DB,
    url,
    adminUrl: admin,
    async createDatabase(name = `t_${randomBytes(6).toString("hex")}`) {
      await sql(admin, [`CREATE DATABASE ${ident(name)} OWNER ${TEST_USER}`]);
      return urlOf(TEST_USER, password, port, name);
    },
    async dropDatabase(name) {
      await sql(admin, [`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`]);
    },
    async restart() {
      await server.down();
      await server.start();
    },
    async down(o = {}) {
      await current.stop(o.crash ? "SIGQUIT" : "SIGINT");
    },
    async start() {
      current = await launch();
      server.pid = current.pid;
    },
    stop() {
      stopping ??= current.stop("SIGINT").then(() => rm(dir, { recursive: true, force: true }));
      return stopping;
    },
  };
  return server;
}

/** Spawns the postmaster and resolves once it accepts connections. */
async function launchPostgres(
  bin: string,
  args: string[],
  dir: string,
  logFile: string,
  owner: Owner,
  port: number,
): Promise<ServerProcess> {
  const proc = await spawnServer(path.join(bin, "postgres"), args, {
    cwd: dir,
    stdout: logFile,
    env: serverEnv(),
    removeOnExit: dir,
    user: owner,
  });
  // postmaster.pid's 8th line says "ready" once connections are accepted
  // (https://www.postgresql.org/docs/15/storage-file-layout.html; PM_STATUS_READY).
  const pidFile = path.join(dir, "data", "postmaster.pid");
  const ready = async () => {
    try {
      const lines = readFileSync(pidFile, "utf8").split("\n");
      return Number(lines[0]) === proc.pid && lines[7]?.trim() === "ready";
    } catch {
      return false;
    }
  };
  if (await proc.waitUntil(ready, START_TIMEOUT_MS, 25)) return proc;
  const died = proc.hasExited();
  await proc.stop("SIGQUIT");
  let log = "(no output)";
  try {
    log = readFileSync(logFile, "utf8").trim().split("\n").slice(-30).join("\n");
  } catch {
    // Nothing written.
  }
  const why = died
    ? `PostgreSQL exited (code ${proc.child.exitCode}, signal ${proc.child.signalCode}) during start-up`
    : `PostgreSQL was not ready on port ${port} within ${START_TIMEOUT_MS} ms`;
  const portBusy = /could not bind .*Address already in use|could not create any TCP/i.test(log);
  throw new (portBusy ? PortInUseError : Error)(`${why}; log tail:\n${log}`);
}

/** Runs `statements` one by one as `url`'s user on a connection of its own. */
async function sql(url: string, statements: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const s of statements) await client.query(s);
  } finally {
    await client.end();
  }
}

function urlOf(user: string, password: string, port: number, db: string): string {
  return `postgres://${user}:${encodeURIComponent(password)}@${HOST}:${port}/${encodeURIComponent(db)}`;
}

/** A quoted SQL identifier; the names here are the tests' own, so only plain ones are taken. */
function ident(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain database name: ${name}`);
  return `"${name}"`;
}

/** This process's environment without libpq's PG* variables, in the C locale. */
function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PG")) env[k] = v;
  return { ...env, LC_ALL: "C", LANG: "C" };
}

/** Whom initdb and postgres run as: the user `postgres` when we are root, else ourselves. */
type Owner = { uid: number; gid: number } | undefined;

async function runAs(): Promise<Owner> {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) =>
    exec("id", [flag, RUN_AS], undefined).then(
      (out) => Number.parseInt(out, 10),
      () => Number.NaN,
    );
  const [uid, gid] = await Promise.all([id("-u"), id("-g")]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new Error(
      `PostgreSQL refuses to run as root, and there is no user ${RUN_AS} to run it as: ${INSTALL_HINT}`,
    );
  }
  return { uid, gid };
}

/** Runs a command (as `owner` when given) with a time limit, failing with its output. */
function exec(file: string, args: string[], owner: Owner): Promise<string> {
  return new Promise((resolve, reject) => {
    const options = {
      timeout: EXEC_TIMEOUT_MS,
      killSignal: "SIGKILL" as const,
      env: serverEnv(),
      cwd: "/",
      ...owner,
    };
    execFile(file, args, options, (error, stdout, stderr) => {
      if (error) reject(new Error(`${path.basename(file)}: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}
