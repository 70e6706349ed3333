// The throwaway CA and server certificate of the local Prosody (tests and `demo`),
// generated once per process with the openssl CLI.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { requireExecutable } from "./process.ts";

/** Re-exported from process.ts, where it now lives, for the importers of this module. */
export { findExecutable } from "./process.ts";

const DOMAIN = "localhost";
const MUC_DOMAIN = "conference.localhost";
const HOST = "127.0.0.1";
const EXEC_TIMEOUT_MS = 15_000;

/** Runs a command with a time limit, failing with its output so the cause is visible. */
export function run(file: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const options = { cwd, timeout: EXEC_TIMEOUT_MS, killSignal: "SIGKILL" as const };
    execFile(file, args, options, (error, stdout) => {
      // error.message already carries the command line and stderr; prosodyctl talks on stdout.
      if (error) reject(new Error(`${path.basename(file)}: ${error.message}\n${stdout}`.trim()));
      else resolve(stdout);
    });
  });
}

/** PEM material of the test CA and of the server certificate it signed. */
export interface TestCerts {
  caPem: string;
  certPem: string;
  keyPem: string;
}

let certs: Promise<TestCerts> | undefined;

/** Generates the CA and server certificate once per process: openssl is the slow step. */
export function generateCerts(): Promise<TestCerts> {
  certs ??= makeCerts().catch((err: unknown) => {
    certs = undefined;
    throw err;
  });
  return certs;
}

async function makeCerts(): Promise<TestCerts> {
  const openssl = requireExecutable(
    "openssl",
    "openssl is not installed: run `sudo apt-get install -y openssl`",
  );
  const dir = await mkdtemp(path.join(os.tmpdir(), "xmpp-msg-gw-certs-"));
  // Relative names in `dir` (the cwd), so the argument lists can be written as plain strings.
  const openSsl = (args: string): Promise<string> => run(openssl, args.split(" "), dir);
  // P-256 keys: instant to generate, and both Prosody (LuaSec) and Node accept them.
  const key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  try {
    await openSsl(
      `req -x509 ${key} -keyout ca.key -out ca.pem -days 3650 -subj /CN=xmpp-msg-gw-test-CA ` +
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
    );
    await openSsl(`req ${key} -keyout server.key -out server.csr -subj /CN=${DOMAIN}`);
    const ext = [
      `subjectAltName = DNS:${DOMAIN}, DNS:${MUC_DOMAIN}, IP:${HOST}`,
      "basicConstraints = critical, CA:FALSE",
      "keyUsage = critical, digitalSignature",
      "extendedKeyUsage = serverAuth",
    ];
    await writeFile(path.join(dir, "ext.cnf"), `${ext.join("\n")}\n`);
    await openSsl(
      "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -days 825 -extfile ext.cnf " +
        `-set_serial 0x${Date.now().toString(16)} -out server.crt`,
    );
    const read = (name: string): string => readFileSync(path.join(dir, name), "utf8");
    return { caPem: read("ca.pem"), certPem: read("server.crt"), keyPem: read("server.key") };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
