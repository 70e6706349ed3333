/**
 * The `json` format: exactly the text Python's `json.dumps(obj, indent=2)` prints, so that
 * users switching from the Python gateway see the same messages byte for byte.
 *
 * Numbers. Python keeps what a JS number cannot: the float-ness of `1.0`, `-0.0` and `1e3`,
 * and the exact digits of integers beyond 2^53. `renderJson` alone prints a JS number the
 * way Python prints the value it most likely was: an integral number below 1e16 as an int
 * (`1`), anything else with Python's float `repr` (`0.5`, `1e-07`, `1e+16`, `Infinity`).
 * That matches Python for every int below 1e16 and every non-integral float. To match it
 * for the rest, parse the body with `parseJsonForRender`: it remembers the source text of
 * the numbers JSON.parse would lose, and the source order of integer-like keys (a JS object
 * always lists `"2"` before `"b"`; a Python dict keeps insertion order). It keeps that
 * knowledge beside the plain value, keyed by each object or array, so every other consumer
 * still sees ordinary JSON values. A bare top-level number has no object to key on: for it,
 * pass the body's text to `renderJson` too, or the body `1.0` alone renders as `1`.
 */

/** What `parseJsonForRender` remembers about one object or array. */
interface SourceInfo {
  /** Own keys in source order, when it differs from the JS enumeration order. */
  keys?: readonly string[];
  /** Python's text for member numbers whose JS value alone would print differently. */
  numbers?: Map<string, { readonly value: number; readonly text: string }>;
}

// Keyed by identity and weakly held: the information lives exactly as long as the value.
const sourceInfo = new WeakMap<object, SourceInfo>();

/**
 * Renders `value` (JSON data: plain objects, arrays, strings, numbers, booleans, null) as
 * `json.dumps(value, indent=2)` would. `source`, the JSON text `value` was parsed from, is
 * only looked at when `value` is a bare number: it is the one place that still knows
 * whether the body said `1.0` or `1`.
 */
export function renderJson(value: unknown, source?: string): string {
  if (typeof value === "number" && source !== undefined) {
    const text = bareNumberText(source, value);
    if (text !== undefined) return text;
  }
  return write(value, "", new Set(), undefined);
}

/** RFC 8259 §6: a JSON number, and the whitespace JSON allows around a value (§2). */
const BARE_NUMBER = /^[ \t\n\r]*(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)[ \t\n\r]*$/;

/** Python's text for `source` when it is one JSON number whose value is `value` and prints differently. */
function bareNumberText(source: string, value: number): string | undefined {
  const literal = BARE_NUMBER.exec(source)?.[1];
  if (literal === undefined || !Object.is(Number(literal), value)) return undefined;
  return pythonOverride(literal, value);
}

/** Parses JSON text like `JSON.parse` (same errors) and remembers what `renderJson` needs to print numbers and key order exactly as Python would. */
export function parseJsonForRender(text: string): unknown {
  // The engine validates and throws its usual SyntaxError; the scan below may then
  // assume well-formed input and only has to record what JSON.parse forgets.
  JSON.parse(text);
  return scan(text);
}

/** The own enumerable keys of `obj` in source order when `parseJsonForRender` knows it, else in JS order. */
export function orderedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  const known = sourceInfo.get(obj)?.keys;
  // Trust the recorded order only while it still describes the object's keys.
  if (
    known !== undefined &&
    known.length === keys.length &&
    known.every((k) => Object.prototype.propertyIsEnumerable.call(obj, k))
  ) {
    return [...known];
  }
  return keys;
}

function write(
  value: unknown,
  indent: string,
  open: Set<object>,
  text: string | undefined,
): string {
  switch (typeof value) {
    case "string":
      return quote(value);
    case "number":
      return text ?? formatNumber(value);
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return value.toString();
    case "object":
      if (value === null) return "null";
      if (Array.isArray(value) || isPlainObject(value)) return writeContainer(value, indent, open);
  }
  throw new TypeError(`renderJson: a ${describe(value)} is not JSON data`);
}

function writeContainer(value: object, indent: string, open: Set<object>): string {
  if (open.has(value)) throw new TypeError("renderJson: circular reference");
  const isArray = Array.isArray(value);
  const keys = isArray ? Array.from(value, (_, i) => String(i)) : orderedKeys(value);
  if (keys.length === 0) return isArray ? "[]" : "{}";
  open.add(value);
  const numbers = sourceInfo.get(value)?.numbers;
  const inner = `${indent}  `;
  const items = keys.map((key) => {
    const member: unknown = (value as Record<string, unknown>)[key];
    const known = numbers?.get(key);
    const text = known !== undefined && Object.is(known.value, member) ? known.text : undefined;
    const rendered = write(member, inner, open, text);
    return isArray ? inner + rendered : `${inner}${quote(key)}: ${rendered}`;
  });
  open.delete(value);
  return isArray ? `[\n${items.join(",\n")}\n${indent}]` : `{\n${items.join(",\n")}\n${indent}}`;
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (typeof value !== "object" || value === null) return typeof value;
  return value.constructor?.name ?? "object";
}

const PRINTABLE_ASCII = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;

const ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"',
  "\\": "\\\\",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

/** Python's `ensure_ascii` quoting: everything outside space..`~` as lowercase `\uXXXX`, per UTF-16 unit. */
function quote(s: string): string {
  if (PRINTABLE_ASCII.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s.charAt(i);
    const code = s.charCodeAt(i);
    const escaped = ESCAPES[ch];
    if (escaped !== undefined) out += escaped;
    else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** How a JS number without known source prints: integral below 1e16 as an int, else as a Python float. */
function formatNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return String(n); // String(-0) is "0", as Python's int
  return formatFloat(n);
}

/** Python's `float.__repr__` (as `json.dumps` uses it): shortest round-trip digits, exponent when the point is out of -4..16. */
function formatFloat(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "Infinity";
  if (n === -Infinity) return "-Infinity";
  const sign = n < 0 || Object.is(n, -0) ? "-" : "";
  // toExponential() without an argument gives the same shortest round-trip digits as Python.
  const [mantissa = "0", exp = "0"] = Math.abs(n).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const exponent = Number(exp);
  const point = exponent + 1; // digits are 0.d1d2... times 10**point
  if (point > -4 && point <= 16) {
    if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
    if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}.0`;
    return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  const abs = String(Math.abs(exponent)).padStart(2, "0");
  return `${sign}${mantissa}e${exponent < 0 ? "-" : "+"}${abs}`;
}

/**
 * Python's text for a JSON number literal when `formatNumber(value)` would print something
 * else, else undefined. Python reads a literal without `.`/`e` as an int and prints its
 * digits (`-0` as `0`); any other literal is a float, which `formatNumber` already prints
 * right unless it is integral (`1.0`, `-0.0`, `1e3`) and below 1e16.
 */
function pythonOverride(source: string, value: number): string | undefined {
  if (!/[.eE]/.test(source)) {
    if (Number.isSafeInteger(value)) return undefined;
    return source === formatNumber(value) ? undefined : source;
  }
  return Number.isInteger(value) && Math.abs(value) < 1e16 ? formatFloat(value) : undefined;
}

const [SPACE, TAB, LF, CR, COMMA, COLON, QUOTE, BACKSLASH] = [
  0x20, 0x09, 0x0a, 0x0d, 0x2c, 0x3a, 0x22, 0x5c,
];
const [OPEN_BRACE, CLOSE_BRACE, OPEN_BRACKET, CLOSE_BRACKET] = [0x7b, 0x7d, 0x5b, 0x5d];
const [LOWER_T, LOWER_F, LOWER_N] = [0x74, 0x66, 0x6e];
const NUMBER_CHARS = "0123456789+-.eE";

interface Frame {
  readonly container: Record<string, unknown> | unknown[];
  /** Keys in first-occurrence order (objects only; a repeated key keeps its place, the last value wins, as in Python). */
  readonly keys: string[] | undefined;
  /** The key read, waiting for its value. */
  key: string | undefined;
  numbers: Map<string, { readonly value: number; readonly text: string }> | undefined;
}

/** Builds the value of already validated JSON text, recording what JSON.parse forgets. Iterative, so nesting depth cannot exhaust the stack. */
function scan(text: string): unknown {
  const stack: Frame[] = [];
  let root: unknown;
  let i = 0;

  const put = (value: unknown, numberText?: string): void => {
    const frame = stack.at(-1);
    if (frame === undefined) {
      root = value;
      return;
    }
    let key: string;
    if (Array.isArray(frame.container)) {
      key = String(frame.container.length);
      frame.container.push(value);
    } else {
      key = frame.key ?? "";
      frame.key = undefined;
      if (!Object.hasOwn(frame.container, key)) frame.keys?.push(key);
      if (key === "__proto__") {
        // Assignment would replace the prototype; JSON.parse makes it an own property.
        Object.defineProperty(frame.container, key, {
          value,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      } else {
        frame.container[key] = value;
      }
    }
    if (numberText !== undefined && typeof value === "number") {
      frame.numbers ??= new Map();
      frame.numbers.set(key, { value, text: numberText });
    } else {
      frame.numbers?.delete(key); // a repeated key's earlier number must not speak for the new value
    }
  };

  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (
      code === SPACE ||
      code === TAB ||
      code === LF ||
      code === CR ||
      code === COMMA ||
      code === COLON
    ) {
      i++;
    } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      const isArray = code === OPEN_BRACKET;
      stack.push({
        container: isArray ? [] : {},
        keys: isArray ? undefined : [],
        key: undefined,
        numbers: undefined,
      });
      i++;
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
      const frame = stack.pop() as Frame;
      remember(frame);
      put(frame.container);
      i++;
    } else if (code === QUOTE) {
      let end = text.indexOf('"', i + 1);
      while (isEscaped(text, end)) end = text.indexOf('"', end + 1);
      const body = text.slice(i + 1, end);
      const str: string = body.includes("\\") ? JSON.parse(`"${body}"`) : body;
      const frame = stack.at(-1);
      if (frame?.keys !== undefined && frame.key === undefined) frame.key = str;
      else put(str);
      i = end + 1;
    } else if (code === LOWER_T) {
      put(true);
      i += 4;
    } else if (code === LOWER_F) {
      put(false);
      i += 5;
    } else if (code === LOWER_N) {
      put(null);
      i += 4;
    } else {
      let end = i + 1;
      while (end < text.length && NUMBER_CHARS.includes(text.charAt(end))) end++;
      const source = text.slice(i, end);
      const value = Number(source);
      put(value, pythonOverride(source, value));
      i = end;
    }
  }
  return root;
}

/** True when the quote at `at` follows an odd run of backslashes, so belongs to the string. */
function isEscaped(text: string, at: number): boolean {
  let slashes = 0;
  while (text.charCodeAt(at - 1 - slashes) === BACKSLASH) slashes++;
  return slashes % 2 === 1;
}

function remember(frame: Frame): void {
  const info: SourceInfo = {};
  if (frame.keys !== undefined) {
    const jsOrder = Object.keys(frame.container);
    if (frame.keys.some((k, n) => jsOrder[n] !== k)) info.keys = frame.keys;
  }
  if (frame.numbers !== undefined) info.numbers = frame.numbers;
  if (info.keys !== undefined || info.numbers !== undefined) sourceInfo.set(frame.container, info);
}
