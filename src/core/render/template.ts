/**
 * User templates: Liquid (LiquidJS), compiled once at start-up so that a bad template stops
 * start-up with its origin, line and column, never a request. Liquid runs no arbitrary
 * JavaScript, and here it reads no files either: `include`, `render` and `layout` are off.
 *
 * In a template the body is the root scope (`{{ title }}`) and also `body` (`{{ body.title }}`,
 * the only way to reach a body that is not an object); `now` is the time of rendering. A
 * missing field renders empty; an unknown filter is a compile error. Filters: Liquid's own
 * (`date` reads ISO 8601 strings and takes an optional time zone, `json`, `join`, `default`,
 * …) plus `yaml` and `pyjson` (the gateway's `yaml` and `json` formats).
 */
import { Liquid, LiquidError } from "liquidjs";
import { GatewayError } from "../errors.ts";
import { renderJson } from "./json.ts";
import { renderYaml } from "./yaml.ts";

/** Tags that would read templates from the file system; a message template needs none. */
const FILE_TAGS = ["include", "render", "layout", "block"] as const;

/** Upper bound on one render, against a template that loops over a huge body. */
const RENDER_LIMIT_MS = 1000;

function createEngine(): Liquid {
  const engine = new Liquid({
    strictFilters: true,
    strictVariables: false,
    ownPropertyOnly: true,
    renderLimit: RENDER_LIMIT_MS,
    templates: {},
  });
  for (const tag of FILE_TAGS) delete engine.tags[tag];
  engine.registerFilter("yaml", (value: unknown) => renderYaml(value ?? null));
  engine.registerFilter("pyjson", (value: unknown) => renderJson(value ?? null));
  return engine;
}

const engine = createEngine();

/**
 * Compiles `source`; the returned function renders a body to message text without trailing
 * whitespace, with `now` from `clock`. Throws an Error naming `origin`, line and column when
 * the template is bad.
 */
export function compileTemplate(
  source: string,
  origin: string,
  clock: () => Date = () => new Date(),
): (value: unknown) => string {
  let compiled: ReturnType<Liquid["parse"]>;
  try {
    compiled = engine.parse(source);
  } catch (err) {
    throw new Error(`${origin}: ${describe(err)}`, { cause: err });
  }
  return (value) => {
    const body = value ?? null;
    const fields = typeof body === "object" && body !== null && !Array.isArray(body) ? body : {};
    // `body` and `now` always mean the same thing, even when the body has such fields.
    const scope = { ...fields, body, now: clock() };
    try {
      return (engine.renderSync(compiled, scope) as string).trimEnd();
    } catch (err) {
      // The template compiled, so this body is what it cannot handle: the caller's input.
      throw new GatewayError("BAD_REQUEST", `the route's template failed: ${describe(err)}`, {
        cause: err,
      });
    }
  };
}

/** `line L, column C: what` for Liquid's errors, whose message ends in `, line:L, col:C`. */
function describe(err: unknown): string {
  if (err instanceof LiquidError) {
    const what = err.message.replace(/, line:\d+, col:\d+$/, "");
    const [line, column] = err.token.getPosition();
    return `line ${line}, column ${column}: ${what}`;
  }
  return err instanceof Error ? err.message : String(err);
}
