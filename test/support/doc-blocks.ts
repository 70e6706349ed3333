/**
 * Documentation that quotes tested files: a Markdown page embeds a file as
 *
 *     <!-- file: docs/grafana/contact-point.yaml -->
 *     ```yaml
 *     …the file, verbatim…
 *     ```
 *
 * and the test that uses the file checks, with {@link assertEmbedsVerbatim}, that the page
 * still shows exactly what the test ran.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root directory; embedded paths are relative to it. */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Every `<!-- file: path -->` + fenced block in `markdown`: the path and the block's text. */
export function embeddedFiles(markdown: string): Array<{ path: string; text: string }> {
  const found: Array<{ path: string; text: string }> = [];
  const marker = /<!-- file: (\S+) -->\r?\n(`{3,})[^\n]*\n([\s\S]*?)^\2[ \t]*$/gm;
  for (const m of markdown.matchAll(marker)) {
    found.push({ path: m[1] as string, text: m[3] as string });
  }
  return found;
}

/**
 * Asserts that the Markdown page `page` (relative to the repository) embeds each of `files`
 * exactly as it is on disk, and that every file it embeds matches.
 */
export function assertEmbedsVerbatim(page: string, files: readonly string[]): void {
  const blocks = embeddedFiles(readFileSync(join(REPO_ROOT, page), "utf8"));
  for (const file of files) {
    assert.ok(
      blocks.some((b) => b.path === file),
      `${page} should embed ${file} after a "<!-- file: ${file} -->" line`,
    );
  }
  for (const block of blocks) {
    const actual = readFileSync(join(REPO_ROOT, block.path), "utf8");
    assert.equal(block.text, actual, `${page}: the block after "<!-- file: ${block.path} -->"`);
  }
}

/**
 * The chat messages a page shows as room output: ```text blocks whose first line starts
 * with `<nick> `, returned without that prefix (and without the block's last newline), so
 * a test can compare them with what the room received.
 */
export function shownMessages(page: string, nick: string): string[] {
  const markdown = readFileSync(join(REPO_ROOT, page), "utf8");
  const prefix = `<${nick}> `;
  const shown: string[] = [];
  for (const m of markdown.matchAll(/^```text\n([\s\S]*?)^```$/gm)) {
    const block = (m[1] as string).replace(/\n$/, "");
    if (block.startsWith(prefix)) shown.push(block.slice(prefix.length));
  }
  return shown;
}
