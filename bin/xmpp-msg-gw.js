#!/usr/bin/env node
// The xmpp-msg-gw program, which the executable bin/xmpp-msg-gw `exec`s under the project's
// Node (bin/node); the container runs it with its own: `node bin/xmpp-msg-gw.js`. A checkout runs its
// TypeScript sources (Node's type stripping); the container image, which carries only the
// compiled JavaScript in dist/ (`npm run build`), runs that: about 20 MB less memory, no
// type stripper loaded (BENCHMARKS.md). XMPP_MSG_GW_COMPILED=1 makes a checkout run its
// build too.
import { existsSync } from "node:fs";
import { enableCompileCache, requireRunnableNode } from "./node-runtime.js";

const source = new URL("../src/cli/index.ts", import.meta.url);
const build = new URL("../dist/cli/index.js", import.meta.url);
const compiled =
  existsSync(build) && (!existsSync(source) || process.env.XMPP_MSG_GW_COMPILED === "1");
requireRunnableNode({ typescript: !compiled });

const args = process.argv.slice(2);
if ((args.find((a) => !a.startsWith("-")) ?? "serve") === "serve") {
  // Loading the gateway's modules takes a while; a signal in that time must not kill it
  // (SIGHUP's default) nor skip the clean stop. Nothing has started and no setting has
  // been read yet: SIGTERM or SIGINT ends it with 0, as a stop would; SIGHUP has nothing
  // to reload. Once serve has its own handlers (src/main.ts), they alone act.
  const early = (signal) => {
    if (process.listenerCount(signal) > 1) return;
    if (signal === "SIGHUP") return;
    process.stderr.write(`xmpp-msg-gw: ${signal} while starting: stopped\n`);
    process.exit(0);
  };
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(signal, early);
}

// Under `npm start` and `npm run demo` npm is the parent (the scripts `exec` the
// launcher); under `npx` a shell sits in between. npm passes SIGINT and SIGTERM on, but a
// SIGHUP ends it, as a SIGTERM ends that shell, and this process would run on, orphaned.
// Once its parent is gone, it stops as on SIGTERM instead.
const script = process.env.npm_lifecycle_script ?? "";
if (/^(exec\s+)?'?(\S*\/)?xmpp-msg-gw(\.js)?'?(\s|$)/.test(script)) {
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    process.stderr.write(
      `xmpp-msg-gw: the npm script's process (pid ${parent}) that started this one (pid ${process.pid}) has gone: stopping\n`,
    );
    process.kill(process.pid, "SIGTERM");
  }, 1000);
  watch.unref();
}

enableCompileCache();
const { runCli } = await import(compiled ? build.href : source.href);
try {
  const code = await runCli(args, process.env);
  // serve resolves with -1 and keeps running until a signal stops it.
  if (code >= 0) process.stdout.write("", () => process.exit(code));
} catch (err) {
  process.stderr.write(`xmpp-msg-gw: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
