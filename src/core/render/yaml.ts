/**
 * The `yaml` format: block-style YAML 1.2 for people to read in a chat window. Unicode is
 * kept as is, keys keep their order (source order when the body came through
 * `parseJsonForRender`), long lines are never folded, multi-line strings become block
 * literals, and the text always loads back (with the `yaml` package) to the same value.
 * Numbers print as the `yaml` package prints JS numbers (`1`, `0.5`, `1e+21`).
 */
import { Document, isCollection, isScalar, Scalar, visit } from "yaml";
import { orderedKeys } from "./json.ts";

/** Renders `value` (JSON data: plain objects, arrays, strings, numbers, booleans, null) as YAML, without a trailing newline. */
export function renderYaml(value: unknown): string {
  const doc = new Document(toYamlData(value, new Set()), { aliasDuplicateObjects: false });
  quoteWhereBlocksFail(doc);
  const text = doc.toString({ indent: 2, lineWidth: 0, minContentWidth: 0 });
  // A chat message should not end in a blank line; quoteWhereBlocksFail makes this safe.
  return text.endsWith("\n") ? text.slice(0, -1) : text;
}

/**
 * Plain objects become Maps in `orderedKeys` order, because the `yaml` package writes an
 * object's keys in JS order, which lists integer-like keys first.
 */
function toYamlData(value: unknown, open: Set<object>): unknown {
  if (value === null || typeof value !== "object") {
    if (value === undefined || typeof value === "function" || typeof value === "symbol") {
      throw new TypeError(`renderYaml: a ${typeof value} is not JSON data`);
    }
    return value;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  const isArray = Array.isArray(value);
  if (!isArray && proto !== Object.prototype && proto !== null) {
    throw new TypeError(`renderYaml: a ${value.constructor?.name ?? "object"} is not JSON data`);
  }
  if (open.has(value)) throw new TypeError("renderYaml: circular reference");
  open.add(value);
  const out = isArray
    ? Array.from(value, (item: unknown) => toYamlData(item, open))
    : new Map(
        orderedKeys(value).map((key) => [
          key,
          toYamlData((value as Record<string, unknown>)[key], open),
        ]),
      );
  open.delete(value);
  return out;
}

/**
 * Picks double quotes where the `yaml` package's block scalars would not load back:
 * - a string that ends in a newline and is the last node (`|` / `|+` keep their trailing
 *   newlines as content, so dropping the document's final newline would change them);
 * - a multi-line string with no visible character (a whitespace-only block line is read as
 *   indentation, not content);
 * - a multi-line top-level string starting with a space (its indentation indicator is
 *   read differently at the top level);
 * - a string starting with a byte order mark, which a parser drops at the document start.
 */
function quoteWhereBlocksFail(doc: Document): void {
  let last: unknown;
  visit(doc, (_key, node) => {
    if (isScalar(node) || isCollection(node)) last = node;
    if (!isScalar(node) || typeof node.value !== "string") return;
    const s = node.value;
    const multiLine = s.includes("\n");
    if (
      s.startsWith("\ufeff") ||
      (multiLine && !/\S/.test(s)) ||
      (multiLine && node === doc.contents && /^\s/.test(s))
    ) {
      node.type = Scalar.QUOTE_DOUBLE;
    }
  });
  if (isScalar(last) && typeof last.value === "string" && last.value.endsWith("\n")) {
    last.type = Scalar.QUOTE_DOUBLE;
  }
}
