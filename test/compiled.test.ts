// The container image carries bin/ and the compiled dist/, not src/. Build that layout in
// a temp dir and run it: the demo posts a message through a real Prosody with it.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const root = new URL("..", import.meta.url).pathname;
const image = mkdtempSync(join(tmpdir(), "gw-image-"));

after(() => rmSync(image, { recursive: true, force: true }));

test("bin/ + dist/ without src/ (the image's layout) runs the compiled gateway end to end", () => {
  execFileSync(
    process.execPath,
    [
      join(root, "node_modules/typescript/bin/tsc"),
      "-p",
      join(root, "tsconfig.build.json"),
      "--outDir",
      join(image, "dist"),
    ],
    {
      stdio: "pipe",
    },
  );
  cpSync(join(root, "bin"), join(image, "bin"), { recursive: true });
  cpSync(join(root, "package.json"), join(image, "package.json"));
  symlinkSync(join(root, "node_modules"), join(image, "node_modules"));
  const token = spawnSync(process.execPath, [join(image, "bin/xmpp-msg-gw.js"), "token"], {
    encoding: "utf8",
  });
  assert.match(token.stdout, /^[A-Za-z0-9_-]{32}\n$/, token.stderr);
  const demo = spawnSync(process.execPath, [join(image, "bin/xmpp-msg-gw.js"), "demo", "--once"], {
    cwd: image,
    encoding: "utf8",
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? "", HTTP_PORT: "0" },
  });
  assert.equal(demo.status, 0, demo.stderr + demo.stdout);
  assert.match(demo.stdout, /reply 200 \{"success":true,"id":"[^"]+","status":"delivered"\}/);
});
