import assert from "node:assert/strict";
import { test } from "node:test";
import { type ServerProof, scramMechanism, serverProofMatches } from "./scram.ts";

// The exchanges of RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256).
const vectors = [
  {
    hash: "sha1" as const,
    nonce: "fyko+d2lbbFgONRv9qkxdawL",
    serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    clientFinal:
      "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
  },
  {
    hash: "sha256" as const,
    nonce: "rOprNGfwEbeRWgbNEkqO",
    serverFirst:
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    clientFinal:
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
  },
];

for (const v of vectors) {
  test(`SCRAM-${v.hash === "sha1" ? "SHA-1" : "SHA-256"} reproduces the RFC's exchange and checks the server's proof`, () => {
    const proof: ServerProof = { expected: undefined };
    const Mech = scramMechanism(v.hash, proof, () => v.nonce);
    const mech = new Mech();
    const cred = { username: "user", password: "pencil" };
    assert.equal(mech.response(cred), `n,,n=user,r=${v.nonce}`);
    mech.challenge(v.serverFirst);
    assert.equal(mech.response(cred), v.clientFinal);
    assert.equal(serverProofMatches(proof, v.serverFinal), true);
    assert.equal(
      serverProofMatches(proof, "v=AAAA"),
      false,
      "a server that does not know the password",
    );
  });
}

test("a server nonce that does not extend ours, or too few iterations, is refused", () => {
  const Mech = scramMechanism("sha1", { expected: undefined }, () => "abc");
  const cred = { username: "user", password: "pencil" };
  const forged = new Mech();
  forged.response(cred);
  forged.challenge("r=XYZ,s=QSXCR+Q6sek8bf92,i=4096");
  assert.throws(() => forged.response(cred), /not valid SCRAM/);
  const weak = new Mech();
  weak.response(cred);
  weak.challenge("r=abcdef,s=QSXCR+Q6sek8bf92,i=1");
  assert.throws(() => weak.response(cred), /not valid SCRAM/);
});
