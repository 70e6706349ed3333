import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { verifySignature } from "./hmac.ts";

const secret = "s3cret-hmac";
const body = Buffer.from('{"status":"firing"}');
const sign = (data: string | Buffer) => createHmac("sha256", secret).update(data).digest("hex");
const plain = { secret, header: "X-Grafana-Alerting-Signature", maxSkewMs: 300_000 };
const withTs = { ...plain, timestampHeader: "X-Grafana-Alerting-Signature-Timestamp" };

test("a body signed with the route's secret is accepted; any change is refused", () => {
  assert.deepEqual(
    verifySignature(plain, body, { "x-grafana-alerting-signature": sign(body) }, 0),
    { ok: true },
  );
  const tampered = verifySignature(
    plain,
    Buffer.from('{"status":"resolved"}'),
    { "x-grafana-alerting-signature": sign(body) },
    0,
  );
  assert.deepEqual(tampered, {
    ok: false,
    reason:
      "X-Grafana-Alerting-Signature does not match the body (HMAC-SHA256 with the route's secret)",
  });
  assert.deepEqual(verifySignature(plain, body, {}, 0), {
    ok: false,
    reason: "missing X-Grafana-Alerting-Signature header",
  });
  assert.equal(verifySignature(plain, body, { "x-grafana-alerting-signature": "zz" }, 0).ok, false);
});

test("with a timestamp header, timestamp:body is signed and the clock skew is bounded", () => {
  const now = 1_800_000_000_000;
  const ts = String(now / 1000 - 60);
  const headers = {
    "x-grafana-alerting-signature": sign(`${ts}:${body}`),
    "x-grafana-alerting-signature-timestamp": ts,
  };
  assert.deepEqual(verifySignature(withTs, body, headers, now), { ok: true });
  const late = verifySignature(withTs, body, headers, now + 600_000);
  assert.deepEqual(late, {
    ok: false,
    reason: "X-Grafana-Alerting-Signature-Timestamp is 660 s away from now; at most 300 s allowed",
  });
  const bodyOnly = verifySignature(
    withTs,
    body,
    { ...headers, "x-grafana-alerting-signature": sign(body) },
    now,
  );
  assert.equal(bodyOnly.ok, false);
  assert.doesNotMatch(JSON.stringify([late, bodyOnly]), new RegExp(secret));
});
