/**
 * Rendering: a post becomes message text in its route's format. One file per format.
 */
import type { PostBody } from "../post.ts";
import type { Format, Route } from "../routes.ts";
import { renderJson } from "./json.ts";
import { renderYaml } from "./yaml.ts";

const RENDERERS: Record<Format, (value: unknown) => string> = {
  json: renderJson,
  yaml: renderYaml,
};

/** Text bodies are sent as they are; JSON values are rendered in the route's format. */
export function renderPost(route: Route, body: PostBody): string {
  return body.kind === "text" ? body.text : RENDERERS[route.format](body.value);
}
