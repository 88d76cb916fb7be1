// Scalars, keys, merges and refusals as kubectl reads them. The expected JSON of each row was
// derived from go-yaml v2's resolve.go/decode.go and sigs.k8s.io/yaml's YAMLToJSON (run on these
// exact inputs), and is confirmed against the test bed's kubectl by test/integration/yaml-kubectl.test.ts.
import { describe, expect, it } from "vitest";
import { parseManifests } from "../../src/manifests/parse.js";
import { goBytesToString, goFloatKey, isGoTimestamp, resolveScalar } from "../../src/manifests/yaml-resolve.js";
import { FileProblemError, type FileProblem } from "../../src/types.js";

const head = "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: p\nspec:\n";

function spec(body: string): unknown {
  const ms = parseManifests([{ path: "p.yaml", content: head + body.split("\n").map((l) => `  ${l}`).join("\n") + "\n" }]);
  return ms[0]!.object.spec;
}

function problems(body: string): FileProblem[] {
  try {
    spec(body);
  } catch (err) {
    expect(err).toBeInstanceOf(FileProblemError);
    return (err as FileProblemError).problems;
  }
  throw new Error(`expected a refusal for ${JSON.stringify(body)}`);
}

function parseProblems(path: string, content: string): FileProblem[] {
  try {
    parseManifests([{ path, content }]);
  } catch (err) {
    expect(err).toBeInstanceOf(FileProblemError);
    return (err as FileProblemError).problems;
  }
  throw new Error(`expected a refusal for ${JSON.stringify(content)}`);
}

/** `v: <text>` → the JSON kubectl sends for v, or a refusal (kubectl refuses these too). */
const VALUES: [string, string | { error: RegExp }][] = [
  [".", "\".\""],
  ["..", "\"..\""],
  [".5", "0.5"],
  ["-.5", "-0.5"],
  ["+.5", "0.5"],
  ["+1", "1"],
  ["-1", "-1"],
  ["1_000", "1000"],
  ["1__0", "10"],
  ["1_", "1"],
  ["_1", "\"_1\""],
  ["0x1F", "31"],
  ["0X1F", "31"],
  ["0x_1F", "31"],
  ["-0x1F", "-31"],
  ["+0x1F", "31"],
  ["0xG", "\"0xG\""],
  ["0x", "\"0x\""],
  ["0o17", "15"],
  ["0O17", "15"],
  ["0o8", "\"0o8\""],
  ["0b101", "5"],
  ["0B101", "5"],
  ["-0b101", "-5"],
  ["0b", "\"0b\""],
  ["0b2", "\"0b2\""],
  ["0644", "420"],
  ["0777", "511"],
  ["00", "0"],
  ["08", "8"],
  ["09", "9"],
  ["0_7", "7"],
  ["0", "0"],
  ["-0", "0"],
  ["-0.0", "0"],
  ["0.", "0"],
  ["1.", "1"],
  ["1e3", "1000"],
  ["1E3", "1000"],
  ["1.0e+3", "1000"],
  ["1e+06", "1000000"],
  ["1e-4", "0.0001"],
  ["1.5e-7", "1.5e-07"],
  ["1e21", "1e+21"],
  ["1e20", "100000000000000000000"],
  ["1e400", "\"1e400\""],
  ["1e-400", "0"],
  ["1e", "\"1e\""],
  ["1.2.3", "\"1.2.3\""],
  ["3.0", "3"],
  ["0.1", "0.1"],
  ["1_0.5", "10.5"],
  [".5_0", "0.5"],
  [".5e3", "500"],
  ["._5", "\"._5\""],
  [".e1", "\".e1\""],
  ["0x1p-2", "\"0x1p-2\""],
  ["123456789012345678901234567890", "1.2345678901234568e+29"],
  ["9007199254740992", "9007199254740992"],
  ["1152921504606846976", "1152921504606846976"],
  ["-9223372036854775808", "-9223372036854775808"],
  ["18446744073709551615", "18446744073709551615"],
  ["18446744073709551616", "18446744073709552000"],
  [".inf", { error: /cannot be represented in JSON/ }],
  ["-.Inf", { error: /cannot be represented in JSON/ }],
  ["+.inf", { error: /cannot be represented in JSON/ }],
  [".NaN", { error: /cannot be represented in JSON/ }],
  [".iNf", "\".iNf\""],
  ["Infinity", "\"Infinity\""],
  ["nan", "\"nan\""],
  ["yes", "true"],
  ["Yes", "true"],
  ["yEs", "\"yEs\""],
  ["no", "false"],
  ["on", "true"],
  ["ON", "true"],
  ["off", "false"],
  ["y", "true"],
  ["Y", "true"],
  ["n", "false"],
  ["N", "false"],
  ["True", "true"],
  ["tRUE", "\"tRUE\""],
  ["FALSE", "false"],
  ["t", "\"t\""],
  ["~", "null"],
  ["null", "null"],
  ["Null", "null"],
  ["NULL", "null"],
  ["nULL", "\"nULL\""],
  ["", "null"],
  ["2001-12-14", "\"2001-12-14\""],
  ["2001-12-14t21:59:43.10-05:00", "\"2001-12-14t21:59:43.10-05:00\""],
  ["2001-12-14 21:59:43.10", "\"2001-12-14 21:59:43.10\""],
  ["12:30:00", "\"12:30:00\""],
  ["190:20:30", "\"190:20:30\""],
  ["=", "\"=\""],
  ["+", "\"+\""],
  ["+-1", "\"+-1\""],
  ["--1", "\"--1\""],
  ["<<", "\"<<\""],
  ["!", "\"\""],
  ["! 12", "\"12\""],
  ["!!str 12", "\"12\""],
  ["!!int \"12\"", "12"],
  ["!!int 0x1F", "31"],
  ["!!float 12", "12"],
  ["!!int 1.5", { error: /cannot decode !!float `1\.5` as a !!int/ }],
  ["!!float 1e400", { error: /cannot decode !!str `1e400` as a !!float/ }],
  ["!!bool yes", "true"],
  ["!!bool 'yes'", "true"],
  ["!!bool 1", { error: /cannot decode !!int `1` as a !!bool/ }],
  ["!!null ''", "null"],
  ["!!null foo", { error: /cannot decode !!str `foo` as a !!null/ }],
  ["!!int", { error: /cannot decode !!null `` as a !!int/ }],
  ["!!str", "\"\""],
  ["!!timestamp 2001-12-14", "\"2001-12-14\""],
  ["!!timestamp foo", { error: /cannot decode !!str `foo` as a !!timestamp/ }],
  ["!custom 12", "\"12\""],
  ["!!binary aGVsbG8=", "\"hello\""],
  ["!!binary aGVsbG8", { error: /invalid base64/ }],
  ["!!binary /w==", "\"\\ufffd\""],
  ["!!binary 4oJh", "\"\\ufffd\\ufffda\""],
  ["'12'", "\"12\""],
  ["\"yes\"", "\"yes\""],
  ["'.'", "\".\""],
];

/** `<text>: x` → the JSON key kubectl makes of it (sigs.k8s.io/yaml converts non-string keys). */
const KEYS: [string, string | { error: RegExp }][] = [
  ["yes", "true"],
  ["no", "false"],
  ["y", "true"],
  ["on", "true"],
  ["True", "true"],
  ["1", "1"],
  ["0644", "420"],
  ["0x1F", "31"],
  ["-0", "0"],
  ["1.5", "1.5"],
  ["1e3", "1000"],
  ["1e10", "1e+10"],
  ["0.1", "0.1"],
  ["3.14159265358979", "3.1415927"],
  ["-1e-5", "-1e-05"],
  ["1e-4", "0.0001"],
  ["1234567.0", "1.234567e+06"],
  ["1e39", ".inf"],
  [".inf", ".inf"],
  ["-.inf", "-.inf"],
  [".nan", ".nan"],
  ["2001-12-14", "2001-12-14"],
  ["!!binary aGk=", "hi"],
  ["'1'", "1"],
  ["~", { error: /null map key/ }],
  ["null", { error: /null map key/ }],
  ["9223372036854775808", { error: /beyond int64/ }],
  ["9223372036854775807", "9223372036854775807"],
];

describe("YAML values as kubectl reads them", () => {
  it.each(VALUES)("v: %s", (text, want) => {
    if (typeof want === "string") {
      expect(spec(`v: ${text}`)).toEqual({ v: JSON.parse(want) });
    } else {
      const ps = problems(`v: ${text}`);
      expect(ps).toEqual([expect.objectContaining({ file: "p.yaml", line: 6, field: "spec.v" })]);
      expect(ps[0]!.message).toMatch(want.error);
    }
  });

  it.each(KEYS)("%s: x", (text, want) => {
    if (typeof want === "string") {
      expect(spec(`m:\n  ${text}: x`)).toEqual({ m: { [want]: "x" } });
    } else {
      const ps = problems(`m:\n  ${text}: x`);
      expect(ps).toEqual([expect.objectContaining({ file: "p.yaml", line: 7, field: "spec.m" })]);
      expect(ps[0]!.message).toMatch(want.error);
    }
  });

  it("reads a Tekton path param `default: .` as the string '.' (kustomize writes it so)", () => {
    const content = [
      "apiVersion: tekton.dev/v1",
      "kind: Pipeline",
      "metadata: {name: build}",
      "spec:",
      "  params:",
      "  - name: path",
      "    default: .",
      "  - {name: dir, default: ., type: string}",
    ].join("\n");
    const [m] = parseManifests([{ path: "pipeline.yaml", content }]);
    expect(m!.object.spec).toEqual({ params: [{ name: "path", default: "." }, { name: "dir", default: ".", type: "string" }] });
  });

  it("keeps every int64 that a JS number holds exactly, and refuses the others at file:line and field", () => {
    expect(spec("v: 9007199254740992")).toEqual({ v: 2 ** 53 });
    expect(spec("v: 1152921504606846976")).toEqual({ v: 2 ** 60 });
    expect(spec("v: -9223372036854775808")).toEqual({ v: -(2 ** 63) });
    // Past int64 go-yaml yields a uint64, which kubectl itself reads back as a float64.
    expect(spec("v: 18446744073709551615")).toEqual({ v: 2 ** 64 }); // the float64 nearest to it
    const ps = problems("a:\n  - 9007199254740993");
    expect(ps).toEqual([expect.objectContaining({ file: "p.yaml", line: 7, field: "spec.a[0]" })]);
    expect(ps[0]!.message).toMatch(/9007199254740993 is not exactly representable.*quote it/);
  });

  it("applies merge keys in go-yaml v2's order: a later key wins, a merge overrides an earlier key", () => {
    expect(spec("a: &x {p: 1, q: 2}\nb:\n  p: 0\n  <<: *x")).toEqual({ a: { p: 1, q: 2 }, b: { p: 1, q: 2 } });
    expect(spec("a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  p: 0")).toEqual({ a: { p: 1, q: 2 }, b: { p: 0, q: 2 } });
    // In a list of maps the earlier map wins.
    expect(spec("a: &x {p: 1}\nc: &y {p: 2, r: 3}\nb:\n  <<: [*x, *y]")).toEqual({ a: { p: 1 }, c: { p: 2, r: 3 }, b: { p: 1, r: 3 } });
    expect(spec("b:\n  <<: {p: 1}\n  <<: {p: 2}")).toEqual({ b: { p: 2 } });
    expect(spec("b:\n  !!merge <<: {p: 1}")).toEqual({ b: { p: 1 } });
    // Quoted, it is an ordinary key.
    expect(spec("b:\n  '<<': {p: 1}")).toEqual({ b: { "<<": { p: 1 } } });
    const ps = problems("a: &x [1]\nb:\n  <<: *x");
    expect(ps).toEqual([expect.objectContaining({ line: 8, field: "spec.b.<<" })]);
    expect(ps[0]!.message).toMatch(/map merge requires map or sequence of maps/);
  });

  it("refuses duplicate keys, also keys that only collide once converted to strings", () => {
    for (const [body, line] of [
      ["m:\n  a: 1\n  a: 2", 8],
      ["m:\n  1: a\n  '1': b", 8],
      ["m:\n  y: a\n  yes: b", 8],
    ] as const) {
      const ps = problems(body);
      expect(ps, body).toEqual([expect.objectContaining({ file: "p.yaml", line })]);
      expect(ps[0]!.message).toMatch(/already defined at line 7/);
    }
  });

  it("refuses a cyclic alias, a key that is a map or a list, and an alias bomb", () => {
    expect(problems("a: &a [*a]")[0]!.message).toMatch(/anchor 'a' value contains itself/);
    expect(problems("m:\n  ? [a]\n  : 1")[0]!.message).toMatch(/invalid map key/);
    expect(problems("m:\n  ? {a: 1}\n  : 1")[0]!.message).toMatch(/invalid map key/);
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 8; i++) levels.push(`${"abcdefgh"[i]}: &${"abcdefgh"[i]} [${Array(9).fill(`*${"abcdefgh"[i - 1]}`).join(", ")}]`);
    const bomb = problems(levels.join("\n"));
    expect(bomb).toEqual([expect.objectContaining({ file: "p.yaml", line: 1 })]);
    expect(bomb[0]!.message).toMatch(/too many alias expansions \(limit 100\)/);
  });

  it("refuses nesting past the depth limit instead of overflowing the stack, flow or block", () => {
    expect(spec(`v: ${"[".repeat(200)}1${"]".repeat(200)}`)).toBeDefined();
    const ps = problems(`v: ${"[".repeat(1100)}1${"]".repeat(1100)}`);
    expect(ps[0]!.message).toMatch(/flow collections nested deeper than 500 levels/);
    expect(ps[0]!.line).toBe(6);
    const block = Array.from({ length: 1000 }, (_, i) => `${" ".repeat(i)}a:`).join("\n");
    const bps = problems(block);
    expect(bps.map((p) => p.message)).toContain("nested too deeply (at most 500 levels)");
    // An alias of a deep value counts its depth where it is used.
    const deep = `${"[".repeat(300)}1${"]".repeat(300)}`;
    expect(problems(`a: &d ${deep}\nb: ${"[".repeat(300)}*d${"]".repeat(300)}`)[0]!.message).toMatch(/nested deeper than 500 levels/);
  });

  it("refuses what libyaml reads differently: control characters, a tag glued to a flow indicator", () => {
    const ctl = problems('v: "a\u0001b"'.replace("\\u0001", "\u0001"));
    expect(ctl).toEqual([expect.objectContaining({ file: "p.yaml", line: 6 })]);
    expect(ctl[0]!.message).toMatch(/control character U\+0001/);
    const tag = problems("l: [!important, x]");
    expect(tag).toEqual([expect.objectContaining({ line: 6 })]);
    expect(tag[0]!.message).toMatch(/tag !important is directly followed by ","/);
    // Inside quotes nothing is a tag.
    expect(spec('v: "!important, x"')).toEqual({ v: "!important, x" });
  });

  it("refuses what kubectl's document splitter refuses: content after ---, directives", () => {
    const sep = parseProblems("a.yaml", `--- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n`);
    expect(sep).toEqual([expect.objectContaining({ file: "a.yaml", line: 1 })]);
    expect(sep[0]!.message).toMatch(/only a comment after a "---" document separator/);
    expect(parseManifests([{ path: "c.yaml", content: `--- # first\n${head}  v: 1\n---\n` }])).toHaveLength(1);
    const dir = parseProblems("d.yaml", `%YAML 1.1\n---\n${head}  v: 1\n`);
    expect(dir).toEqual([expect.objectContaining({ file: "d.yaml", line: 1 })]);
    expect(dir[0]!.message).toMatch(/YAML directives \(%YAML\) are not supported/);
  });

  it("refuses surrogate escapes in YAML, which libyaml rejects even as a valid pair", () => {
    const ps = problems('a: ok\nv: "x\\ud83d\\ude00"');
    expect(ps).toEqual([expect.objectContaining({ file: "p.yaml", line: 7 })]);
    expect(ps[0]!.message).toMatch(/escape \\ud83d is a UTF-16 surrogate/);
    // An escaped backslash is not an escape.
    expect(spec('v: "\\\\ud800"')).toEqual({ v: "\\ud800" });
  });

  it("refuses escapes and anchor names libyaml does not know", () => {
    const esc = problems('v: "a\\/b"');
    expect(esc).toEqual([expect.objectContaining({ line: 6 })]);
    expect(esc[0]!.message).toMatch(/escape \\\/ is not one kubectl knows/);
    expect(spec('v: "\\x41\\t\\\'\\N\\_"')).toEqual({ v: "A\t'\u0085\u00a0" });
    const anchor = problems("a: &a.b x\nb: *a.b");
    expect(anchor).toEqual([expect.objectContaining({ line: 6 })]);
    expect(anchor[0]!.message).toMatch(/anchor "&a\.b": kubectl accepts only ASCII letters/);
    expect(spec("a: &a-1_B x\nb: *a-1_B")).toEqual({ a: "x", b: "x" });
  });

  it("reads a JSON document as encoding/json does: number overflow refused, lone surrogates replaced", () => {
    const json = (specText: string) => `{"apiVersion": "tekton.dev/v1", "kind": "Pipeline", "metadata": {"name": "p"},\n "spec": ${specText}}`;
    const [m] = parseManifests([{ path: "p.json", content: json('{"a": 1e3, "b": "\\ud800x", "c": "\\ud83d\\ude00", "d": 1.5}') }]);
    expect(m!.object.spec).toEqual({ a: 1000, b: "\ufffdx", c: "😀", d: 1.5 });
    const ps = parseProblems("p.json", json('{"v": 1e400}'));
    expect(ps).toEqual([expect.objectContaining({ file: "p.json", line: 2, field: "spec.v" })]);
    expect(ps[0]!.message).toMatch(/number 1e400 is out of range/);
    // The same in YAML is go-yaml's string.
    expect(spec("v: 1e400")).toEqual({ v: "1e400" });
  });

  it("accepts apiVersion, kind and metadata that come through a merge key or an alias", () => {
    const content = [
      "x-base: &b {apiVersion: tekton.dev/v1, kind: Pipeline}",
      "x-md: &md {name: merged}",
      "<<: *b",
      "metadata: *md",
      "spec: {v: yes}",
    ].join("\n");
    const [m] = parseManifests([{ path: "m.yaml", content }]);
    expect(m!.object).toMatchObject({ apiVersion: "tekton.dev/v1", kind: "Pipeline", metadata: { name: "merged" }, spec: { v: true } });
    expect(m!.source).toEqual({ file: "m.yaml", line: 1 });
    const ps = parseProblems("m.yaml", content.replace("{name: merged}", "{name: a/b}"));
    expect(ps).toEqual([expect.objectContaining({ file: "m.yaml", line: 4, field: "metadata.name" })]);
  });

  it("reads a lone - in a flow collection as the string \"-\", as libyaml does (`command: [cat, -]`)", () => {
    expect(spec("command: [cat, -]\nm: {k: -}\nl: [-, x, '-']\nq: {-: 1}")).toEqual({
      command: ["cat", "-"],
      m: { k: "-" },
      l: ["-", "x", "-"],
      q: { "-": 1 },
    });
    // The quoting keeps every line where it was.
    const ps = problems("l: [cat, -]\nv: .nan");
    expect(ps).toEqual([expect.objectContaining({ line: 7, field: "spec.v" })]);
    // A "- " in a flow collection is a block entry there, which both refuse.
    expect(problems("l: [- x]")[0]!.line).toBe(6);
  });

  it("keeps a __proto__ key as data", () => {
    const s = spec("m:\n  __proto__: {polluted: yes}") as { m: Record<string, unknown> };
    expect(Object.keys(s.m)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(s.m)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("skips documents that are only null, as kubectl does", () => {
    const ms = parseManifests([{ path: "n.yaml", content: "~\n---\nnull\n---\n" + head + "  v: 1\n" }]);
    expect(ms).toHaveLength(1);
    expect(ms[0]!.source.line).toBe(5);
  });
});

describe("go-yaml v2 helpers", () => {
  it("resolves scalars by go-yaml's rules, quoted ones stay strings", () => {
    expect(resolveScalar("0o17", "", true)).toEqual({ kind: "int", value: 15n });
    expect(resolveScalar("0o17", "", false)).toEqual({ kind: "string", value: "0o17" });
    expect(resolveScalar("9223372036854775808", "", true)).toEqual({ kind: "int", value: 9223372036854775808n });
    expect(resolveScalar("1e400", "", true)).toEqual({ kind: "string", value: "1e400" });
  });

  it("formats float keys as strconv.FormatFloat(f, 'g', -1, 32)", () => {
    expect([1.5, 1000, 1e10, 0.1, 3.14159265358979, -1e-5, 1e-4, 1234567, 123456, 1e39, -0, NaN].map(goFloatKey)).toEqual([
      "1.5", "1000", "1e+10", "0.1", "3.1415927", "-1e-05", "0.0001", "1.234567e+06", "123456", ".inf", "-0", ".nan",
    ]);
  });

  it("replaces each byte of invalid UTF-8 with U+FFFD, as Go's encoding/json does", () => {
    expect(goBytesToString(Buffer.from([0xe2, 0x82, 0x61]))).toBe("\ufffd\ufffda");
    expect(goBytesToString(Buffer.from([0xed, 0xa0, 0x80]))).toBe("\ufffd\ufffd\ufffd"); // a surrogate
    expect(goBytesToString(Buffer.from("é€😀", "utf8"))).toBe("é€😀");
  });

  it("recognises the timestamp layouts go-yaml tries", () => {
    expect(["2001-12-14", "2001-1-2", "2001-12-14t21:59:43.10-05:00", "2001-12-14T21:59:43Z", "2001-12-14 21:59:43.10"].every(isGoTimestamp)).toBe(true);
    expect(["2001-13-14", "2001-02-30", "2001-12-14 21:59:43.10 -5", "2001-12-14T21:59:43", "12:30:00"].some(isGoTimestamp)).toBe(false);
  });
});
