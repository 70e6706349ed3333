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

const RENDERERS: Record<Format, (value: unknown) => string[]> = {
  json: (v) => [renderJson(v)],
  yaml: (v) => [renderYaml(v)],
  // A body with no Slack text still says something: its YAML.
  text: (v) => [renderText(v) ?? renderYaml(v)],
  auto: renderAuto,
};

/** Text bodies are sent as they are; parsed bodies in the route's format, one string per message. */
export function renderPost(route: Route, body: PostBody): string[] {
  return body.kind === "text" ? [body.text] : RENDERERS[route.format](body.value);
}
