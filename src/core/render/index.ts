/**
 * Rendering: a post becomes one or more messages in its route's format. One file per
 * format; this table is the only place that knows them all.
 */
import type { PostBody } from "../post.ts";
import type { Format, Route } from "../routes.ts";
import { renderAuto } from "./auto.ts";
import { renderJson } from "./json.ts";
import { renderText } from "./text.ts";
import { renderYaml } from "./yaml.ts";

const RENDERERS: Record<Format, (value: unknown, source: string | undefined) => string[]> = {
  json: (v, source) => [renderJson(v, source)],
  yaml: (v) => [renderYaml(v)],
  // A body with no Slack text still says something: its YAML.
  text: (v) => [renderText(v) ?? renderYaml(v)],
  auto: renderAuto,
};

/** XEP-0393 §5.1.2: a block between lines of three backticks is shown monospaced, unstyled. */
export function preformattedBlock(text: string): string {
  return `\`\`\`\n${text}\n\`\`\``;
}

/**
 * Text bodies are sent as they are; parsed bodies through the route's template when it has
 * one, else in the route's format (json and yaml wrapped in a preformatted block when the
 * route asks for it), one string per message.
 */
export function renderPost(route: Route, body: PostBody): string[] {
  if (body.kind === "text") return [body.text];
  if (route.template !== undefined) return [route.template(body.value)];
  const messages = RENDERERS[route.format](body.value, body.source);
  const wrap = route.preformatted === true && (route.format === "json" || route.format === "yaml");
  return wrap ? messages.map(preformattedBlock) : messages;
}
