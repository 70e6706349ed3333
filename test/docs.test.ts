// The docs quote what the gateway prints: every quoted log line or reply must exist in
// the sources, so that a reworded message cannot leave the troubleshooting guide behind.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const root = new URL("..", import.meta.url).pathname;
const read = (p: string) => readFileSync(join(root, p), "utf8");

function sources(dir: string): string {
  let all = "";
  for (const name of readdirSync(join(root, dir))) {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) all += sources(path);
    else if (name.endsWith(".ts") && !name.endsWith(".test.ts")) all += read(path);
  }
  return all;
}

/** The fixed parts of a quoted message: split at `…` and placeholders like example.org. */
function fragments(quote: string): string[] {
  return quote
    .split(/…|bot@example\.org|example\.org|\(…\)|\bE[A-Z]{3,}\b/)
    .map((f) => f.trim())
    .filter((f) => f.length >= 8);
}

test("every message quoted in docs/troubleshooting.md is one the code prints", () => {
  const code = sources("src");
  // Quoted messages are the bold ones: **Log: `…`** or **`…`**.
  const quotes = [
    ...read("docs/troubleshooting.md").matchAll(/\*\*(?:Log: )?`([^`\n]{20,})`/g),
  ].map((m) => m[1] as string);
  assert.ok(quotes.length >= 4, "the guide quotes messages");
  for (const quote of quotes) {
    for (const fragment of fragments(quote)) {
      // Template literals in the code hold ${…} where the quote has a value.
      const pattern = fragment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      assert.match(
        code.replace(/\$\{[^}]*\}/g, "…"),
        new RegExp(pattern.replace(/…/g, ".*")),
        `quoted: ${quote}`,
      );
    }
  }
});

test("the migration guide's contract table matches the README's and the code's", () => {
  const migration = read("docs/migration.md");
  assert.match(migration, /404 \{"error":"404 Not Found: Token mismatch"\}/);
  assert.match(sources("src"), /"Token mismatch"/);
  assert.match(read("src/config/index.ts"), /default\(10080\)/);
});
