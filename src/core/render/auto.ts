/**
 * The `auto` format: whatever reads best for the body at hand. Grafana and Alertmanager
 * alert groups are summarised, Slack-style bodies show their text, and anything else is
 * printed as YAML, so that no body is ever rendered empty.
 */
import { renderAlerts } from "./alerts.ts";
import { renderText } from "./text.ts";
import { renderYaml } from "./yaml.ts";

/** Renders `value` as alert summaries when it is an alert group, else as Slack text when it has some, else as YAML; one string per message. */
export function renderAuto(value: unknown): string[] {
  const alerts = renderAlerts(value);
  if (alerts !== undefined) return alerts;
  const text = renderText(value);
  return [text ?? renderYaml(value)];
}
