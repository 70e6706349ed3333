import assert from "node:assert/strict";
import { test } from "node:test";
import { ListenError, listenError } from "./listen-error.ts";

const failed = (code: string) => Object.assign(new Error(`listen ${code}`), { code });

test("a port in use names the address and HTTP_PORT", () => {
  const err = listenError(failed("EADDRINUSE"), "127.0.0.1", 10080) as ListenError;
  assert.ok(err instanceof ListenError);
  assert.equal(err.setting, "HTTP_PORT");
  assert.equal(
    err.message,
    "HTTP_PORT 10080 on 127.0.0.1 is already in use (another gateway or demo?): set HTTP_PORT to a free port",
  );
  assert.match(
    (listenError(failed("EADDRINUSE"), "0.0.0.0", 10080) as Error).message,
    /on 0\.0\.0\.0 \(every interface\)/,
  );
});

test("a privileged port names HTTP_PORT, an address not of this machine HTTP_HOST", () => {
  const port = listenError(failed("EACCES"), "0.0.0.0", 80) as ListenError;
  assert.equal(port.setting, "HTTP_PORT");
  assert.match(port.message, /^HTTP_PORT 80 on 0\.0\.0\.0 .*needs privileges.*1024 or above/);
  const host = listenError(failed("EADDRNOTAVAIL"), "10.9.9.9", 10080) as ListenError;
  assert.equal(host.setting, "HTTP_HOST");
  assert.match(
    host.message,
    /^HTTP_HOST 10\.9\.9\.9 is not an address of this machine: set HTTP_HOST/,
  );
});

test("any other error is passed on as it is", () => {
  const other = failed("EMFILE");
  assert.equal(listenError(other, "127.0.0.1", 1), other);
});
