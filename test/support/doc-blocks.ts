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

/** A fenced shell block (```sh, ```shell, ```bash) of a Markdown page, its indentation removed. */
export interface ShellBlock {
  /** The page, relative to the repository. */
  readonly page: string;
  /** The 1-based line of its opening fence. */
  readonly line: number;
  /** Its first line, which names it in skip lists. */
  readonly first: string;
  readonly text: string;
  /** The file it embeds with `<!-- file: path -->`, if it does: a file, not commands. */
  readonly file: string | undefined;
}

/** Every shell block of the page `page` (relative to the repository). */
export function shellBlocks(page: string): ShellBlock[] {
  const markdown = readFileSync(join(REPO_ROOT, page), "utf8");
  const blocks: ShellBlock[] = [];
  const fence = /^([ \t]*)(`{3,})(?:sh|shell|bash)[ \t]*\n([\s\S]*?)^\1\2[ \t]*$/gm;
  for (const m of markdown.matchAll(fence)) {
    const indent = (m[1] as string).length;
    const text = (m[3] as string)
      .split("\n")
      .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
      .join("\n");
    const before = markdown.slice(0, m.index);
    const file = /<!-- file: (\S+) -->\r?\n[ \t]*$/.exec(before)?.[1];
    blocks.push({
      page,
      line: before.split("\n").length,
      first: text.split("\n")[0] ?? "",
      text,
      file,
    });
  }
  return blocks;
}

/** One command of a shell block and the output the page quotes under it. */
export interface Step {
  /** The command, continuation lines (`\` at the end) included. */
  readonly command: string;
  /** The quoted output lines, without their `# `, e.g. `{"success":true,…}`. */
  readonly quoted: readonly string[];
  /** The HTTP status an annotation after the quote gives: `# {…}      (status 404)`. */
  readonly status: number | undefined;
}

/**
 * Splits a shell block into its commands. A `# …` line right below a command (no blank
 * line between) quotes that command's output; a comment after a command on its own line
 * (`cmd   # what it does`) and a comment line anywhere else are explanations.
 */
export function stepsOf(text: string): Step[] {
  const steps: Array<{ command: string; quoted: string[]; status: number | undefined }> = [];
  let open: (typeof steps)[number] | undefined; // the step quotes may still attach to
  let continued = false;
  for (const line of text.split("\n")) {
    if (continued && open) {
      open.command += `\n${line}`;
      continued = line.endsWith("\\");
    } else if (line.trim() === "") {
      open = undefined;
    } else if (line.startsWith("#")) {
      if (!open) continue;
      const m = /^#\s?(.*?)(?:\s{2,}\(status (\d{3})\))?\s*$/.exec(line) as RegExpExecArray;
      open.quoted.push(m[1] as string);
      if (m[2]) open.status = Number(m[2]);
    } else {
      open = { command: line, quoted: [], status: undefined };
      steps.push(open);
      continued = line.endsWith("\\");
    }
  }
  return steps;
}

/**
 * Whether `actual` is what `quoted` shows, where each `…` in the quote stands for any
 * text (the id of a reply, a long body); the rest must be exactly the same.
 */
export function matchesQuote(actual: string, quoted: string): boolean {
  const pattern = quoted
    .split("…")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join("[\\s\\S]*?");
  return new RegExp(`^${pattern}$`).test(actual);
}
