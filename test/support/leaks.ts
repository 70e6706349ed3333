/**
 * Searching text for secrets in every form a library may print them: as they are,
 * URL-encoded, base64 (HTTP Basic, SASL PLAIN), hex (a Buffer's inspection), and as
 * lists of decimal byte values (a Buffer's JSON, `[116,111,107,…]`, or its inspection).
 */

/** Every base64 text that holds `s`, whatever bytes come before it (3 alignments). */
function base64Forms(s: string): string[] {
  return [0, 1, 2].map((k) => {
    const b64 = Buffer.concat([Buffer.alloc(k), Buffer.from(s)]).toString("base64");
    // Drop the characters that also encode the neighbouring bytes.
    return b64.slice(k === 0 ? 0 : 4, -4);
  });
}

/** The forms of `value` searched for: text, URL-encoded, base64, hex and byte lists. */
export function secretForms(value: string): string[] {
  const bytes = [...Buffer.from(value)];
  const hex = bytes.map((b) => b.toString(16).padStart(2, "0"));
  return [
    ...new Set([
      value,
      encodeURIComponent(value),
      ...base64Forms(value),
      hex.join(""),
      hex.join("").toUpperCase(),
      hex.join(" "), // <Buffer 74 6f 6b …>
      bytes.join(","), // JSON: {"type":"Buffer","data":[116,111,107,…]}
      bytes.join(", "), // util.inspect of an array
      JSON.stringify(bytes),
    ]),
  ];
}

/** Names of the secrets found in `text`, each with the form it was found in. */
export function leaks(text: string, secrets: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [name, value] of Object.entries(secrets)) {
    for (const form of secretForms(value))
      if (text.includes(form)) found.push(`${name} as "${form}"`);
  }
  return found;
}
