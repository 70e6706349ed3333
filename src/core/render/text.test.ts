import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { renderText } from "./text.ts";

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url), "utf8"));

describe("renderText fixtures", () => {
  it("renders slack-text.json: mrkdwn kept, links, mentions and entities made readable", () => {
    assert.equal(
      renderText(fixture("slack-text.json")),
      [
        "Deploy of *api* to _production_ finished: build #42 (https://ci.example.org/builds/42?stage=deploy&log=1) by @alice <ok> & done.",
        "Details: https://ci.example.org/builds/42",
      ].join("\n"),
    );
  });

  it("renders slack-attachments.json: pretext, title (link), text, fields; fallback only when alone", () => {
    assert.equal(
      renderText(fixture("slack-attachments.json")),
      [
        "Nightly backup report",
        "",
        "Backups for 14 May 2024",
        "db-1: backup completed (https://backups.example.org/runs/1234)",
        "All *3* databases were dumped and uploaded.",
        "Size: 12.4 GiB",
        "Duration: 4m 12s",
        "Target: bucket (s3://backups/db-1/2024-05-14)",
        "",
        "db-2: backup FAILED, see https://backups.example.org/runs/1235",
      ].join("\n"),
    );
  });

  it("renders slack-blocks.json: header, section text and fields, context text; no images or buttons", () => {
    assert.equal(
      renderText(fixture("slack-blocks.json")),
      [
        "Incident INC-42 opened",
        "*Checkout latency* above SLO. Status page (https://status.example.org/incidents/42)",
        "*Severity:*",
        "SEV-2",
        "*Commander:*",
        "@alice",
        "Opened by @oncall 14 May 2024 09:51",
      ].join("\n"),
    );
  });
});

describe("renderText", () => {
  it("returns undefined for values that are not objects", () => {
    for (const value of [null, undefined, "text", 42, true, [], [{ text: "x" }]]) {
      assert.equal(renderText(value), undefined, String(value));
    }
  });

  it("returns undefined for objects with nothing Slack would show", () => {
    const cases: unknown[] = [
      {},
      { title: "Deploy", tag: ["a", "b"] },
      { text: "" },
      { text: "  \n " },
      { text: 42 },
      { text: ["a"] },
      { attachments: "x" },
      { attachments: [null, 1, "x", {}, { color: "good", footer: "bot" }] },
      { blocks: [{ type: "divider" }, { type: "image", image_url: "https://x/i.png" }] },
      { blocks: { type: "section" } },
    ];
    for (const value of cases) assert.equal(renderText(value), undefined, JSON.stringify(value));
  });

  it("trims the text", () => {
    assert.equal(renderText({ text: "  hello\n" }), "hello");
  });

  it("reads objects without a prototype (form fields) and never inherited keys", () => {
    const form = Object.create(null) as Record<string, unknown>;
    form.text = "done";
    form.title = "Deploy";
    assert.equal(renderText(form), "done");
    const child = Object.create({ text: "inherited" }) as Record<string, unknown>;
    assert.equal(renderText(child), undefined);
  });

  describe("mrkdwn", () => {
    const cases: [string, string][] = [
      ["<https://example.org/a?b=1&amp;c=2|the page>", "the page (https://example.org/a?b=1&c=2)"],
      ["<https://example.org/>", "https://example.org/"],
      ["<https://example.org/|https://example.org/>", "https://example.org/"],
      ["<https://example.org/|>", "https://example.org/"],
      ["<mailto:bob@example.org|Bob>", "Bob (mailto:bob@example.org)"],
      ["<https://x.org|a &lt;b&gt; c>", "a <b> c (https://x.org)"],
      ["<@U024BE7LH>", "@U024BE7LH"],
      ["<@U024BE7LH|alice>", "@alice"],
      ["<#C024BE7LR>", "#C024BE7LR"],
      ["<#C024BE7LR|general>", "#general"],
      ["<!here>", "@here"],
      ["<!channel|channel>", "@channel"],
      ["<!everyone>", "@everyone"],
      ["<!subteam^SAZ94GDB8|@ops>", "@ops"],
      ["<!subteam^SAZ94GDB8>", "@subteam"],
      ["<!date^1392734382^{date_num}|2014-02-18 6:39 AM>", "2014-02-18 6:39 AM"],
      ["&amp; &lt; &gt;", "& < >"],
      ["&amp;lt; stays an entity once", "&lt; stays an entity once"],
      ["&quot;other entities&#39; stay", "&quot;other entities&#39; stay"],
      ["a < b > c", "a < b > c"],
      ["unclosed <https://example.org", "unclosed <https://example.org"],
      ["<a|b> and <c|d>", "b (a) and d (c)"],
      ["*bold* _italic_ ~strike~ `code`", "*bold* _italic_ ~strike~ `code`"],
    ];
    for (const [input, expected] of cases) {
      it(`${input} → ${expected}`, () => assert.equal(renderText({ text: input }), expected));
    }
  });

  it("shows an attachment's fallback only when it has nothing else", () => {
    assert.equal(
      renderText({ attachments: [{ fallback: "plain", text: "rich" }, { fallback: "only" }] }),
      "rich\n\nonly",
    );
  });

  it("shows title_link only after a title, and once when it equals the title", () => {
    assert.equal(
      renderText({
        attachments: [
          { title_link: "https://x.org", text: "body" },
          { title: "https://x.org", title_link: "https://x.org" },
          { title: "T", title_link: "  " },
        ],
      }),
      "body\n\nhttps://x.org\n\nT",
    );
  });

  it("renders fields with only a title or only a value, skipping empty ones", () => {
    assert.equal(
      renderText({
        attachments: [
          {
            fields: [
              { title: "Only title" },
              { value: "only value" },
              {},
              null,
              { title: "", value: "" },
            ],
          },
        ],
      }),
      "Only title\nonly value",
    );
  });

  it("prefers blocks to text, as Slack does, and falls back to text when blocks show nothing", () => {
    const section = { type: "section", text: { type: "plain_text", text: "from blocks" } };
    assert.equal(renderText({ text: "fallback", blocks: [section] }), "from blocks");
    assert.equal(renderText({ text: "fallback", blocks: [{ type: "divider" }] }), "fallback");
  });

  it("renders blocks inside attachments", () => {
    const blocks = [{ type: "section", text: { type: "mrkdwn", text: "<https://x.org|x>" } }];
    assert.equal(renderText({ attachments: [{ blocks }] }), "x (https://x.org)");
  });

  it("parses no links in plain_text and ignores unknown text object types", () => {
    const blocks = [
      { type: "section", text: { type: "plain_text", text: "<not a link> &amp;" } },
      { type: "section", text: { type: "other", text: "hidden" } },
      { type: "markdown", text: "**Standard** [markdown](https://x.org)" },
    ];
    assert.equal(renderText({ blocks }), "<not a link> &\n**Standard** [markdown](https://x.org)");
  });

  it("renders rich_text sections, lists, quotes and preformatted text", () => {
    const blocks = [
      {
        type: "rich_text",
        elements: [
          {
            type: "rich_text_section",
            elements: [
              { type: "text", text: "Hi " },
              { type: "user", user_id: "U1" },
              { type: "text", text: ", see " },
              { type: "link", url: "https://x.org", text: "docs" },
              { type: "text", text: " " },
              { type: "emoji", name: "thumbsup", unicode: "1f44d" },
              { type: "emoji", name: "custom" },
              { type: "text", text: " in " },
              { type: "channel", channel_id: "C1" },
              { type: "broadcast", range: "here" },
            ],
          },
          {
            type: "rich_text_list",
            style: "bullet",
            elements: [
              { type: "rich_text_section", elements: [{ type: "text", text: "one" }] },
              { type: "rich_text_section", elements: [{ type: "link", url: "https://y.org" }] },
            ],
          },
          { type: "rich_text_quote", elements: [{ type: "text", text: "quoted\nlines" }] },
          { type: "rich_text_preformatted", elements: [{ type: "text", text: "code()" }] },
        ],
      },
    ];
    assert.equal(
      renderText({ blocks }),
      [
        "Hi @U1, see docs (https://x.org) 👍:custom: in #C1@here",
        "• one",
        "• https://y.org",
        "> quoted",
        "> lines",
        "```",
        "code()",
        "```",
      ].join("\n"),
    );
  });
});
