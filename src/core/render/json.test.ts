import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { orderedKeys, parseJsonForRender, renderJson } from "./json.ts";

/** One body, and what Python 3.11's `json.dumps(json.loads(input), indent=2)` printed for it. */
interface Fixture {
  readonly name: string;
  /** The JSON text as posted. */
  readonly input: string;
  /** True when `JSON.parse` alone keeps everything Python would print (no `1.0`, no big ints, no integer-like keys out of order). */
  readonly plain: boolean;
  readonly expected: string;
}

// Expected outputs were generated with python3 `json.dumps(json.loads(input), indent=2)`
// and are committed as literals; do not edit them by hand.
const FIXTURES: readonly Fixture[] = [
  {
    name: "nested objects and arrays",
    input: `{"alert": {"labels": {"severity": "critical", "team": "ops"}, "values": [1, [2, [3, []]], {"deep": {"deeper": null}}]}, "ok": false}`,
    plain: true,
    expected: `{
  "alert": {
    "labels": {
      "severity": "critical",
      "team": "ops"
    },
    "values": [
      1,
      [
        2,
        [
          3,
          []
        ]
      ],
      {
        "deep": {
          "deeper": null
        }
      }
    ]
  },
  "ok": false
}`,
  },
  {
    name: "empty containers",
    input: `{"obj": {}, "arr": [], "both": [[], {}], "inner": {"e": []}}`,
    plain: true,
    expected: `{
  "obj": {},
  "arr": [],
  "both": [
    [],
    {}
  ],
  "inner": {
    "e": []
  }
}`,
  },
  {
    name: "key order is insertion order",
    input: `{"zeta": 1, "alpha": 2, "mid": 3, "Beta": 4}`,
    plain: true,
    expected: `{
  "zeta": 1,
  "alpha": 2,
  "mid": 3,
  "Beta": 4
}`,
  },
  {
    name: "integer-like keys keep source order",
    input: `{"b": 1, "2": "two", "a": 3, "1": "one", "-1": "minus", "01": "zero-one"}`,
    plain: false,
    expected: `{
  "b": 1,
  "2": "two",
  "a": 3,
  "1": "one",
  "-1": "minus",
  "01": "zero-one"
}`,
  },
  {
    name: "repeated key keeps first place and last value",
    input: `{"a": 1, "b": 2, "a": 3}`,
    plain: true,
    expected: `{
  "a": 3,
  "b": 2
}`,
  },
  {
    name: "repeated key drops the earlier number's source",
    input: `{"a": 1.0, "b": 2, "a": 1, "c": [1.0], "c": 3}`,
    plain: true,
    expected: `{
  "a": 1,
  "b": 2,
  "c": 3
}`,
  },
  {
    name: "__proto__ is an ordinary key",
    input: `{"__proto__": {"polluted": true}, "x": 1}`,
    plain: true,
    expected: `{
  "__proto__": {
    "polluted": true
  },
  "x": 1
}`,
  },
  {
    name: "unicode is escaped as lowercase \\uXXXX",
    input: `{"fr": "é", "ja": "日本", "emoji": "😀", "key é": "ÿ ü", "sym": "€ ∑ ✓"}`,
    plain: true,
    expected: String.raw`{
  "fr": "\u00e9",
  "ja": "\u65e5\u672c",
  "emoji": "\ud83d\ude00",
  "key \u00e9": "\u00ff \u00fc",
  "sym": "\u20ac \u2211 \u2713"
}`,
  },
  {
    name: "escaped unicode input",
    input: String.raw`{"s": "\u00e9\u65e5\uD83D\uDE00"}`,
    plain: true,
    expected: String.raw`{
  "s": "\u00e9\u65e5\ud83d\ude00"
}`,
  },
  {
    name: "control characters",
    input: String.raw`{"s": "nl\n cr\r tab\t bs\b ff\f quote\" backslash\\ nul\u0000 esc\u001b us\u001f del\u007f c1\u0085 ls\u2028 bom\ufeff"}`,
    plain: true,
    expected: String.raw`{
  "s": "nl\n cr\r tab\t bs\b ff\f quote\" backslash\\ nul\u0000 esc\u001b us\u001f del\u007f c1\u0085 ls\u2028 bom\ufeff"
}`,
  },
  {
    name: "slash is not escaped",
    input: String.raw`{"url": "https://example.org/a/b?c=d&e=<f>", "escaped": "\/"}`,
    plain: true,
    expected: `{
  "url": "https://example.org/a/b?c=d&e=<f>",
  "escaped": "/"
}`,
  },
  {
    name: "lone surrogates",
    input: String.raw`["\ud800", "\udfff", "x\ud83dy", "\ude00\ud83d"]`,
    plain: true,
    expected: String.raw`[
  "\ud800",
  "\udfff",
  "x\ud83dy",
  "\ude00\ud83d"
]`,
  },
  {
    name: "integers",
    input: `[0, 1, -1, 42, -17, 9007199254740991, -9007199254740991, 1000000000000000]`,
    plain: true,
    expected: `[
  0,
  1,
  -1,
  42,
  -17,
  9007199254740991,
  -9007199254740991,
  1000000000000000
]`,
  },
  {
    name: "floats and exponents",
    input: `[0.5, -2.25, 0.1, 3.14159, 1e-7, 1E-5, 0.0001, 1.5e300, -1e-300, 2.5e+20, 1e21, 1e16, 1e22, 123456789.123, 5e-324, 1.7976931348623157e308, 0.000123, 1234567890123456.7]`,
    plain: true,
    expected: `[
  0.5,
  -2.25,
  0.1,
  3.14159,
  1e-07,
  1e-05,
  0.0001,
  1.5e+300,
  -1e-300,
  2.5e+20,
  1e+21,
  1e+16,
  1e+22,
  123456789.123,
  5e-324,
  1.7976931348623157e+308,
  0.000123,
  1234567890123456.8
]`,
  },
  {
    name: "float-ness and exact digits from the source",
    input: `{"one": 1.0, "negzero": -0.0, "intzero": -0, "exp": 1E3, "trailing": 1.50, "big": 12345678901234567890, "beyond": 9007199254740993, "e16": 10000000000000000, "huge": 1e400, "neghuge": -1e400, "tiny": -1e-400, "arr": [2.0, 3, 4e0]}`,
    plain: false,
    expected: `{
  "one": 1.0,
  "negzero": -0.0,
  "intzero": 0,
  "exp": 1000.0,
  "trailing": 1.5,
  "big": 12345678901234567890,
  "beyond": 9007199254740993,
  "e16": 10000000000000000,
  "huge": Infinity,
  "neghuge": -Infinity,
  "tiny": -0.0,
  "arr": [
    2.0,
    3,
    4.0
  ]
}`,
  },
  {
    name: "booleans and null",
    input: `{"t": true, "f": false, "n": null, "list": [true, false, null]}`,
    plain: true,
    expected: `{
  "t": true,
  "f": false,
  "n": null,
  "list": [
    true,
    false,
    null
  ]
}`,
  },
  {
    name: "top-level string",
    input: `"hi"`,
    plain: true,
    expected: `"hi"`,
  },
  {
    name: "top-level unicode string",
    input: `"é😀"`,
    plain: true,
    expected: String.raw`"\u00e9\ud83d\ude00"`,
  },
  {
    name: "top-level null",
    input: `null`,
    plain: true,
    expected: `null`,
  },
  {
    name: "top-level true",
    input: `true`,
    plain: true,
    expected: `true`,
  },
  {
    name: "top-level integer",
    input: `42`,
    plain: true,
    expected: `42`,
  },
  {
    name: "top-level float",
    input: `-1.5`,
    plain: true,
    expected: `-1.5`,
  },
  {
    name: "top-level empty array",
    input: `[]`,
    plain: true,
    expected: `[]`,
  },
  {
    name: "top-level empty object",
    input: `{}`,
    plain: true,
    expected: `{}`,
  },
  {
    name: "whitespace around tokens",
    input: '\r\n {\t"a" :\n[ 1 ,\t2 ] , "b":{ } }\n',
    plain: true,
    expected: `{
  "a": [
    1,
    2
  ],
  "b": {}
}`,
  },
];

describe("renderJson", () => {
  for (const fixture of FIXTURES) {
    it(`prints what Python prints: ${fixture.name}`, () => {
      assert.equal(renderJson(parseJsonForRender(fixture.input)), fixture.expected);
    });
    if (fixture.plain) {
      it(`prints what Python prints from JSON.parse values: ${fixture.name}`, () => {
        assert.equal(renderJson(JSON.parse(fixture.input)), fixture.expected);
      });
    }
  }

  it("prints JS numbers without known source as Python would print the likeliest value", () => {
    const cases: [number, string][] = [
      [1, "1"],
      [-0, "0"],
      [1.5, "1.5"],
      [1e-7, "1e-07"],
      [1e-5, "1e-05"],
      [0.0001, "0.0001"],
      [1e16, "1e+16"],
      [1e15, "1000000000000000"],
      [2 ** 53, "9007199254740992"],
      [1e21, "1e+21"],
      [-1.5e300, "-1.5e+300"],
      [Number.MIN_VALUE, "5e-324"],
      [Number.NaN, "NaN"],
      [Number.POSITIVE_INFINITY, "Infinity"],
      [Number.NEGATIVE_INFINITY, "-Infinity"],
    ];
    for (const [n, text] of cases) assert.equal(renderJson(n), text, String(n));
  });

  it("prints an integral float as an int when it has no source (JSON.parse forgets `1.0`)", () => {
    assert.equal(renderJson(JSON.parse('{"a": 1.0}')), '{\n  "a": 1\n}');
    // A bare top-level number has no object to keep its source beside: without its text
    // it prints as the likeliest value.
    assert.equal(renderJson(parseJsonForRender("1.0")), "1");
  });

  it("prints a bare top-level number as Python prints it when given the body's text", () => {
    // [body, what python3 `json.dumps(json.loads(body), indent=2)` printed]; do not edit by hand.
    const cases: [string, string][] = [
      ["1.0", "1.0"],
      ["-0.0", "-0.0"],
      ["0.0", "0.0"],
      ["-1.0", "-1.0"],
      ["100.0", "100.0"],
      ["1e3", "1000.0"],
      ["1E3", "1000.0"],
      ["1E+2", "100.0"],
      ["-1e-0", "-1.0"],
      ["0e0", "0.0"],
      ["1.5e2", "150.0"],
      ["12345678901234567890123", "12345678901234567890123"],
      ["-12345678901234567890123", "-12345678901234567890123"],
      ["123456789012345678", "123456789012345678"],
      ["9007199254740993", "9007199254740993"],
      ["10000000000000000", "10000000000000000"],
      ["-0", "0"],
      ["1e400", "Infinity"],
      ["-1e400", "-Infinity"],
      ["2.50", "2.5"],
      ["1e16", "1e+16"],
      ["1e-7", "1e-07"],
      [" \r\n\t1.0\n", "1.0"],
    ];
    for (const [body, expected] of cases) {
      assert.equal(renderJson(parseJsonForRender(body), body), expected, JSON.stringify(body));
    }
  });

  it("ignores a text that does not belong to the value", () => {
    assert.equal(renderJson(1, "1.0 but not a number"), "1");
    assert.equal(renderJson(2, "1.0"), "2");
    assert.equal(renderJson({ a: 1 }, "1.0"), '{\n  "a": 1\n}');
    assert.equal(renderJson("1.0", "1.0"), '"1.0"');
  });

  it("prints bigints as Python ints", () => {
    assert.equal(renderJson({ id: 12345678901234567890n }), '{\n  "id": 12345678901234567890\n}');
  });

  it("accepts objects without a prototype", () => {
    const fields = Object.create(null) as Record<string, unknown>;
    fields.name = "x";
    assert.equal(renderJson(fields), '{\n  "name": "x"\n}');
  });

  it("refuses values that are not JSON data", () => {
    for (const value of [undefined, () => 1, Symbol("s"), new Date(0), new Map(), [undefined]]) {
      assert.throws(() => renderJson(value), TypeError);
    }
  });

  it("refuses circular references", () => {
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    assert.throws(() => renderJson(loop), { name: "TypeError", message: /circular/ });
  });

  it("renders a value shared twice (not a cycle) twice", () => {
    const shared = { a: 1 };
    assert.equal(renderJson([shared, shared]), '[\n  {\n    "a": 1\n  },\n  {\n    "a": 1\n  }\n]');
  });

  it("ignores a remembered number once the value changed", () => {
    const value = parseJsonForRender('{"a": 1.0, "b": 2.0}') as Record<string, unknown>;
    value.a = 1.5;
    value.b = 3;
    assert.equal(renderJson(value), '{\n  "a": 1.5,\n  "b": 3\n}');
  });
});

describe("parseJsonForRender", () => {
  it("returns the same values as JSON.parse", () => {
    for (const fixture of FIXTURES) {
      assert.deepStrictEqual(
        parseJsonForRender(fixture.input),
        JSON.parse(fixture.input),
        fixture.name,
      );
    }
  });

  it("throws JSON.parse's SyntaxError on invalid JSON", () => {
    for (const text of ["", "{", '{"a":}', "[1,]", "01", "'x'", "NaN", '{"a" 1}', "[1] x"]) {
      assert.throws(() => parseJsonForRender(text), SyntaxError, text);
    }
  });

  it("keeps __proto__ an own property without touching the prototype", () => {
    const value = parseJsonForRender('{"__proto__": {"polluted": true}}') as Record<
      string,
      unknown
    >;
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.deepStrictEqual(Object.keys(value), ["__proto__"]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it("parses deep nesting without recursion", () => {
    const depth = 100_000;
    let value = parseJsonForRender(`${"[".repeat(depth)}${"]".repeat(depth)}`);
    let levels = 0;
    while (Array.isArray(value) && value.length > 0) {
      value = value[0];
      levels++;
    }
    assert.equal(levels, depth - 1);
  });
});

describe("orderedKeys", () => {
  it("gives source order for parsed objects and JS order otherwise", () => {
    const text = '{"b": 1, "2": 2, "a": 3, "1": 4}';
    assert.deepStrictEqual(orderedKeys(parseJsonForRender(text) as object), ["b", "2", "a", "1"]);
    assert.deepStrictEqual(orderedKeys(JSON.parse(text)), ["1", "2", "b", "a"]);
  });

  it("falls back to JS order once the keys changed", () => {
    const value = parseJsonForRender('{"b": 1, "2": 2}') as Record<string, unknown>;
    delete value.b;
    value.c = 3;
    assert.deepStrictEqual(orderedKeys(value), ["2", "c"]);
  });
});
