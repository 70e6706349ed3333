/**
 * The `text` format: the message a Slack incoming webhook body would show, as plain text,
 * so that tools which can post to Slack can post here unchanged.
 *
 * What Slack shows, in its order: the message (`blocks` when they render to something,
 * else `text`, which Slack itself only uses as the notification fallback once blocks are
 * given), then each of `attachments[]`: `pretext`, `title` with `title_link`, `text`,
 * `fields[]` and the attachment's own `blocks`, or its `fallback` when it has none of
 * those. Slack's mrkdwn emphasis (`*bold*`, `_italic_`, `~strike~`, `` `code` ``) is kept:
 * XEP-0393 message styling reads the same marks. Slack's angle-bracket syntax is not, so
 * links and mentions become readable text and `&amp; &lt; &gt;` are unescaped.
 * References: https://api.slack.com/reference/messaging/attachments,
 * https://api.slack.com/reference/block-kit/blocks, https://api.slack.com/reference/surfaces/formatting
 */

type Json = Record<string, unknown>;

/** Renders a Slack-style body (`text`, `attachments`, `blocks`) as plain text, or undefined when the value has nothing of the kind to show. */
export function renderText(value: unknown): string | undefined {
  if (!isRecord(value)) return undefined;
  const parts: string[] = [];
  const message = renderBlocks(own(value, "blocks")) || mrkdwn(str(own(value, "text")));
  if (message !== "") parts.push(message);
  const attachments = own(value, "attachments");
  if (Array.isArray(attachments)) {
    for (const attachment of attachments) {
      const text = renderAttachment(attachment);
      if (text !== "") parts.push(text);
    }
  }
  return parts.length === 0 ? undefined : parts.join("\n\n");
}

/** One legacy attachment: pretext, title (link), text, fields, blocks; fallback only when it has nothing else. */
function renderAttachment(attachment: unknown): string {
  if (!isRecord(attachment)) return "";
  const lines: string[] = [];
  const push = (line: string): void => {
    if (line !== "") lines.push(line);
  };
  push(mrkdwn(str(own(attachment, "pretext"))));
  const title = mrkdwn(str(own(attachment, "title")));
  const link = str(own(attachment, "title_link")).trim();
  push(title !== "" && link !== "" && link !== title ? `${title} (${link})` : title);
  push(mrkdwn(str(own(attachment, "text"))));
  const fields = own(attachment, "fields");
  if (Array.isArray(fields)) for (const field of fields) push(renderField(field));
  push(renderBlocks(own(attachment, "blocks")));
  if (lines.length === 0) push(mrkdwn(str(own(attachment, "fallback"))));
  return lines.join("\n");
}

/** An attachment field as `title: value`, or whichever half is present. */
function renderField(field: unknown): string {
  if (!isRecord(field)) return "";
  const title = mrkdwn(str(own(field, "title")));
  const value = mrkdwn(str(own(field, "value")));
  if (title !== "" && value !== "") return `${title}: ${value}`;
  return title || value;
}

/** Block Kit, best effort: the text people read; images, buttons and inputs are left out. */
function renderBlocks(blocks: unknown): string {
  if (!Array.isArray(blocks)) return "";
  const out: string[] = [];
  for (const block of blocks) {
    const text = isRecord(block) ? renderBlock(block) : "";
    if (text !== "") out.push(text);
  }
  return out.join("\n");
}

function renderBlock(block: Json): string {
  switch (own(block, "type")) {
    case "header":
    case "section": {
      const lines = [textObject(own(block, "text"))];
      const fields = own(block, "fields");
      if (Array.isArray(fields)) lines.push(...fields.map(textObject));
      return lines.filter((line) => line !== "").join("\n");
    }
    case "context": {
      const elements = own(block, "elements");
      if (!Array.isArray(elements)) return "";
      return elements
        .map(textObject)
        .filter((t) => t !== "")
        .join(" ");
    }
    case "markdown":
      // Standard Markdown, not mrkdwn: shown as written.
      return str(own(block, "text")).trim();
    case "rich_text":
      return richText(own(block, "elements"));
    default:
      return "";
  }
}

/** A composition text object: `plain_text` unescaped, `mrkdwn` converted; anything else (images) is empty. */
function textObject(object: unknown): string {
  if (!isRecord(object)) return "";
  const text = str(own(object, "text"));
  switch (own(object, "type")) {
    case "plain_text":
      // No links or mentions are parsed here, but the three escapes may still be used.
      return decodeEntities(text).trim();
    case "mrkdwn":
      return mrkdwn(text);
    default:
      return "";
  }
}

/** The text of a rich_text block's sections, lists, quotes and preformatted parts. */
function richText(elements: unknown): string {
  if (!Array.isArray(elements)) return "";
  const out: string[] = [];
  for (const element of elements) {
    if (!isRecord(element)) continue;
    const inline = inlineText(own(element, "elements"));
    switch (own(element, "type")) {
      case "rich_text_section":
        out.push(inline);
        break;
      case "rich_text_preformatted":
        out.push(`\`\`\`\n${inline}\n\`\`\``);
        break;
      case "rich_text_quote":
        out.push(
          inline
            .split("\n")
            .map((line) => `> ${line}`)
            .join("\n"),
        );
        break;
      case "rich_text_list": {
        const items = own(element, "elements");
        if (Array.isArray(items)) {
          for (const item of items) {
            if (isRecord(item)) out.push(`• ${inlineText(own(item, "elements")).trim()}`);
          }
        }
        break;
      }
    }
  }
  return out
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .join("\n");
}

function inlineText(elements: unknown): string {
  if (!Array.isArray(elements)) return "";
  let out = "";
  for (const e of elements) {
    if (!isRecord(e)) continue;
    const text = str(own(e, "text"));
    switch (own(e, "type")) {
      case "text":
        out += text;
        break;
      case "link": {
        const url = str(own(e, "url"));
        out += text !== "" && text !== url ? `${text} (${url})` : url;
        break;
      }
      case "emoji":
        out +=
          str(own(e, "unicode")) !== ""
            ? emoji(str(own(e, "unicode")))
            : `:${str(own(e, "name"))}:`;
        break;
      case "user":
        out += `@${str(own(e, "user_id"))}`;
        break;
      case "channel":
        out += `#${str(own(e, "channel_id"))}`;
        break;
      case "usergroup":
        out += `@${str(own(e, "usergroup_id"))}`;
        break;
      case "broadcast":
        out += `@${str(own(e, "range"))}`;
        break;
    }
  }
  return out;
}

/** Slack gives an emoji's code points as hex joined by `-` (e.g. `1f44d`, `1f1eb-1f1f7`). */
function emoji(hex: string): string {
  const points = hex.split("-").map((h) => Number.parseInt(h, 16));
  return points.every((p) => Number.isInteger(p) && p >= 0 && p <= 0x10ffff)
    ? String.fromCodePoint(...points)
    : "";
}

// `<target>` or `<target|label>`, or one of the three entities Slack escapes. A target never
// contains whitespace, so a lone `a < b > c` in careless text is left alone. One pass over
// the text, so `&amp;lt;` becomes `&lt;`, never `<`.
const MARKUP = /<([^<>|\s]+)(?:\|([^<>]*))?>|&(amp|lt|gt);/g;
const BROADCASTS: ReadonlySet<string> = new Set(["here", "channel", "everyone"]);
const ENTITY = /&(amp|lt|gt);/g;
const ENTITIES: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">" };

/** Converts Slack mrkdwn to plain text: links as `label (url)`, mentions by name, entities unescaped, surrounding whitespace trimmed. */
function mrkdwn(text: string): string {
  return text
    .replace(MARKUP, (_all, target: string | undefined, label: string | undefined, entity) =>
      target === undefined
        ? (ENTITIES[entity as string] ?? "")
        : angle(decodeEntities(target), label === undefined ? "" : decodeEntities(label)),
    )
    .trim();
}

/** One `<…>` form: special mentions by their label or name, links as `label (url)`. */
function angle(target: string, label: string): string {
  switch (target[0]) {
    case "@": // <@U123> or <@U123|alice>
      return label !== "" ? `@${label.replace(/^@/, "")}` : target;
    case "#": // <#C123> or <#C123|general>
      return label !== "" ? `#${label.replace(/^#/, "")}` : target;
    case "!": {
      // <!here>, <!channel>, <!everyone>; <!subteam^ID|@team>, <!date^…|fallback text>
      const name = target.slice(1).split("^")[0] ?? "";
      if (BROADCASTS.has(name) || label === "") return `@${name}`;
      return label;
    }
  }
  return label !== "" && label !== target ? `${label} (${target})` : target;
}

function decodeEntities(text: string): string {
  return text.replace(ENTITY, (_all, name: string) => ENTITIES[name] ?? "");
}

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An own property only, so that keys like `constructor` never reach the prototype. */
function own(object: Json, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}
