// Differential test of plumber's YAML reading against the test bed's own kubectl: a generated
// corpus of tricky scalars (in values, keys, lists, nested maps, under explicit tags, through
// anchors and merges) is written as tekton.dev/v1 Pipelines (x-kubernetes-preserve-unknown-fields,
// so the apiserver's schema keeps every field), read by `kubectl create --dry-run=client -o json`
// and by parseManifests, and compared case by case. Numbers are compared from kubectl's JSON text,
// not through JSON.parse, so a rounded int64 cannot hide.
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseManifests } from "../../src/manifests/parse.js";
import { FileProblemError } from "../../src/types.js";
import { tempDir, testEnv } from "../setup/env.js";

const env = testEnv();

/** Plain scalars that YAML 1.1, 1.2 and go-yaml v2 read differently. */
const SCALARS = [
  ".", "..", ".5", "-.5", "+.5", "+1", "-1", "1_000", "1__0", "1_", "_1", "0x1F", "0X1F", "0x_1F", "-0x1F", "+0x1F",
  "0xG", "0x", "0o17", "0O17", "0o8", "0b101", "0B101", "-0b101", "+0b101", "0b", "0b2", "0644", "0777", "00", "08", "09",
  "0_7", "0", "-0", "+0", "-0.0", "0.", "1.", "1e3", "1E3", "1.0e+3", "1e+06", "1e-4", "1.5e-7", "1e21", "1e20", "1e400",
  "1e-400", "1e", "1.2.3", "3.0", "0.1", "1_0.5", ".5_0", ".5e3", "._5", ".e1", "0x1p-2", "123456789012345678901234567890",
  "9007199254740992", "9007199254740993", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
  "18446744073709551615", "18446744073709551616", "-9223372036854775809", "1152921504606846976",
  ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "+.inf", ".iNf", ".nan", ".NaN", ".NAN", "Infinity", "inf", "nan", "NaN",
  "yes", "Yes", "YES", "yEs", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N",
  "true", "True", "TRUE", "tRUE", "false", "False", "FALSE", "t", "f", "~", "null", "Null", "NULL", "nULL",
  "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14T21:59:43Z", "2001-12-14 21:59:43.10", "2001-12-14 21:59:43.10 -5",
  "2001-13-14", "2002-02-29", "12:30:00", "190:20:30", "1:2", "=", "-", "+", "-1-", "+-1", "--1", "0.0.0.0", "1,000", "<<x",
  "!important", "a b", "é", "0x1F_", "1e3_", "+.5e-3",
  "0x8000000000000000", "-0x8000000000000000", "0xFFFFFFFFFFFFFFFF", "0x10000000000000000", `0b${"1".repeat(64)}`, "-0b1",
  "1_000_000_000_000_000_000_000", "0o", "0_", "-_1", "+_1", "1__", ".1_e1", "0.5_", "1_e5", "00.5", "-00", "0x-1", "1e+", "1.e5",
  "0.0000001", "123456789.123456789", "4.9e-324", "2.5e-324", "1.7976931348623157e308", "1.8e308",
];

interface Case {
  name: string;
  /** YAML lines of the Pipeline's spec (indented under `spec:`), or a whole document. */
  spec?: string;
  doc?: string;
}

function generate(): Case[] {
  const cases: Case[] = [];
  const add = (name: string, spec: string) => cases.push({ name: cases.some((c) => c.name === name) ? `${name} (${cases.length})` : name, spec });
  SCALARS.forEach((s, i) => {
    add(`value ${s}`, `v: ${s}`);
    add(`flow-list ${s}`, `l: [${s}, x]`);
    add(`block-list ${s}`, `l:\n- ${s}`);
    add(`nested ${s}`, `a:\n  b:\n    c: ${s}`);
    add(`flow-map ${s}`, `m: {k: ${s}}`);
    add(`key ${s}`, `m:\n  ${s}: k${i}`);
    add(`single-quoted ${s}`, `v: '${s}'`);
    add(`double-quoted ${s}`, `v: "${s}"`);
    add(`anchored ${s}`, `a: &x ${s}\nb: *x`);
  });
  for (const tag of ["!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!", "!custom"]) {
    for (const s of ["12", "0x1F", "1.5", "1e400", "yes", "'yes'", '"12"', "~", "", "2001-12-14", "foo", ".inf", "9007199254740993"]) {
      add(`tag ${tag} ${s || "(empty)"}`, `v: ${tag} ${s}`);
    }
  }
  for (const [name, spec] of [
    ["binary", "v: !!binary aGVsbG8="],
    ["binary block", "v: !!binary |\n  aGVs\n  bG8="],
    ["binary unpadded", "v: !!binary aGVsbG8"],
    ["binary invalid utf-8", "v: !!binary /w=="],
    ["binary truncated utf-8", "v: !!binary 4oJh"],
    ["binary empty", "v: !!binary ''"],
    ["binary key", "m:\n  !!binary aGk=: x"],
    ["merge after key", "a: &x {p: 1, q: 2}\nb:\n  p: 0\n  <<: *x"],
    ["merge before key", "a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  p: 0"],
    ["merge list", "a: &x {p: 1}\nc: &y {p: 2, r: 3}\nb:\n  <<: [*x, *y]\n  s: 4"],
    ["merge inline maps", "b:\n  <<: [{p: 1}, {p: 2, q: 3}]"],
    ["merge twice", "b:\n  <<: {p: 1}\n  <<: {p: 2}"],
    ["merge nested", "a: &x {p: {deep: 1}}\nb:\n  <<: *x\n  q: 1"],
    ["merge chain", "a: &x {p: 1}\nc: &y\n  <<: *x\n  q: 2\nb:\n  <<: *y\n  r: 3"],
    ["merge quoted key", "b:\n  '<<': {p: 1}"],
    ["merge tagged key", "b:\n  !!merge <<: {p: 1}"],
    ["merge of scalar", "b:\n  <<: 1"],
    ["merge of list alias", "a: &x [1]\nb:\n  <<: *x"],
    ["merge list with scalar", "b:\n  <<: [{p: 1}, 2]"],
    ["merge null", "b:\n  <<: ~"],
    ["merge as value", "v: <<"],
    ["alias of map", "a: &x {p: 1}\nb: *x"],
    ["alias of list", "a: &x [1, yes]\nb: *x"],
    ["alias as key", "a: &k yes\nm:\n  *k : 1"],
    ["alias cycle", "a: &a [*a]"],
    ["anchor redefined", "a: &x 1\nb: *x\nc: &x 2\nd: *x"],
    ["key yes and y", "m:\n  y: 1\n  yes: 2"],
    ["key 1 and '1'", "m:\n  1: a\n  '1': b"],
    ["duplicate key", "m:\n  a: 1\n  a: 2"],
    ["key null", "m:\n  null: x"],
    ["key tilde", "m:\n  ~: x"],
    ["key empty", "m:\n  : x"],
    ["key float", "m:\n  1.5: a\n  1e3: b\n  1e10: c\n  0.1: d\n  3.14159265358979: e\n  -1e-5: f\n  1e-4: g\n  1234567.0: h\n  .inf: i\n  -.inf: j\n  .nan: k\n  -0.0: l"],
    ["key float32 overflow", "m:\n  1e39: a\n  -1e39: b"],
    ["key int", "m:\n  0644: a\n  0x1F: b\n  -0: c\n  1_000: d\n  9223372036854775807: e"],
    ["key uint64", "m:\n  9223372036854775808: x"],
    ["key bool", "m:\n  on: a\n  off: b"],
    ["key bool words", "m:\n  True: a\n  N: b"],
    ["key list", "m:\n  ? [a]\n  : 1"],
    ["key map", "m:\n  ? {a: 1}\n  : 1"],
    ["empty value", "v:"],
    ["empty list item", "l:\n-\n- x"],
    ["empty flow", "m: {}\nl: []"],
    ["proto key", "m:\n  __proto__: {polluted: yes}\n  constructor: x"],
    ["block literal", "v: |\n  0x1F\n  yes"],
    ["block folded", "v: >-\n  yes\n  no"],
    ["multi-line plain", "v: 1\n  2"],
    ["double-quoted escapes", 'v: "\\x41\\u00e9\\t\\N\\_\\L"'],
    ["tab in quoted", 'v: "a\tb"'],
    ["lone surrogate escape", 'v: "\\ud800"'],
    ["surrogate pair escape", 'v: "\\ud83d\\ude00"'],
    ["long string", `v: ${"x".repeat(5000)}`],
    ["tab after colon", "v:\t1"],
    ["comment after value", "v: 1 # one\nw: a#b\nx: 'it''s'"],
    ["folded plain with blank line", "v: a\n  b\n\n  c"],
    ["block keep", "v: |+\n  a\n\nw: 1"],
    ["block strip", "v: |-\n  a\n"],
    ["block indent indicator", "v: |2\n   a\n  b"],
    ["folded more-indented", "v: >\n  a\n    b\n  c"],
    ["anchor with tag", "a: &x !!str 12\nb: *x"],
    ["complex scalar key", "m:\n  ? a\n  : b\n  ? 1\n  : 2"],
    ["set", "v: !!set {a, b}"],
    ["omap", "v: !!omap [a: 1, b: 2]"],
    ["tag on seq", "v: !!seq [a]\nw: !!map {a: 1}\nx: !custom {a: 1}"],
    ["str tag on map", "v: !!str {a: 1}"],
    ["int tag on seq", "v: !!int [1]"],
    ["nulls in flow", "l: [~, null, '', ]\nm: {a: , b: ~}"],
    ["non-ascii key", "m:\n  é: x\n  日本: y"],
    ["single-pair flow seq", "l: [a: 1, b]"],
    ["flow key without value", "m: {a, b: 1}"],
    ["plain with colon and hash", "v: a:b\nw: http://x/y#z"],
    ["indicator starts", "v: ?x\nw: :x\nx: -x"],
    ["args with dashes", 'args: ["--flag=value", -v, --, -, -1, --x=-]'],
    ["flow dash words", "l: [a, -b, - , c]"],
    ["flow map dash values", "m: {k: -v, j: --}"],
    ["nested block seqs", "l:\n- - a\n  - -\n- -"],
    ["colon in flow seq", "l: [a:b, http://x/y, a: b]"],
    ["colon in flow map", "m: {a:b}"],
    ["json-like adjacent value", 'm: {"a":b, "c":1}'],
    ["plain with colon value in flow", "m: {a: b:c}"],
    ["percent value", "v: 100%\nw: '%x'"],
    ["at sign start", "v: @x"],
    ["backtick start", "v: `x`"],
    ["anchor with dot", "a: &a.b x\nb: *a.b"],
    ["anchor with brackets", "a: &a1 x\nb: [*a1]"],
    ["anchor unicode", "a: &é x\nb: *é"],
    ["tab indentation", "v:\n\t- a"],
    ["verbatim tag", "v: !<tag:yaml.org,2002:int> 12\nw: !<!local> 12"],
    ["long implicit key", `m:\n  ${"k".repeat(1100)}: x`],
    ["long explicit key", `m:\n  ? ${"k".repeat(1100)}\n  : x`],
    ["flow across lines", "l: [a,\n  b]\nm: {a: 1,\n  b: 2}"],
    ["flow under-indented", "l: [a,\nb]"],
    ["multi-line double-quoted", 'v: "a\n  b\n\n  c"'],
    ["multi-line single-quoted", "v: 'a\n\n  b'"],
    ["escapes", 'v: "\\0\\a\\b\\e\\f\\v\\ \\/\\P\\x7f\\U0001F600"'],
    ["bad escape", 'v: "\\q"'],
    ["escaped single quote in double", `v: "it\\'s \\\\' x"`],
    ["slash escape", 'v: "a\\/b"'],
    ["escaped quote in single", "v: 'a\\'"],
    ["comment forms", "v: a #b\nw: a# b\n# full\nx: 1 #"],
    ["empty flow item", "l: [a, , b]"],
    ["flow duplicate key", "m: {a: 1, a: 2}"],
    ["explicit key without value", "m:\n  ? a\n  ? b\n  : 1"],
    ["key with trailing spaces", "m:\n  a   : 1"],
    ["quoted keys", "m:\n  'yes': 1\n  \"0644\": 2\n  '': 3"],
    ["value on next line", "v:\n  yes"],
    ["plain multi-line key value", "m:\n  a: b\n    c"],
    ["sequence of maps compact", "l:\n- a: 1\n  b: yes\n- {c: off}"],
    ["indentless sequence", "m:\n  l:\n  - a\n  - b"],
    ["null alias", "a: &n\nb: *n"],
    ["anchor on empty", "a: &e\n  \nb: *e"],
    ["alias of alias", "a: &x 1\nb: &y [*x]\nc: *y"],
    ["deep nesting", `v: ${"[".repeat(50)}1${"]".repeat(50)}`],
  ] as [string, string][]) {
    add(name, spec);
  }
  cases.push({
    name: "tekton path param",
    doc: [
      "apiVersion: tekton.dev/v1",
      "kind: Pipeline",
      "metadata:",
      "  name: NAME",
      "spec:",
      "  params:",
      "  - name: path",
      "    default: .",
      "  - name: revision",
      "    default: 0644",
      "  tasks:",
      "  - name: build",
      "    params:",
      "    - {name: path, value: $(params.path)}",
    ].join("\n"),
  });
  cases.push({ name: "control character", doc: "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: NAME\nspec:\n  v: \"a\u0001b\"\n" });
  const pipe = "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: NAME\nspec: {v: yes}\n";
  cases.push({ name: "directive %YAML 1.1", doc: `%YAML 1.1\n---\n${pipe}` });
  cases.push({ name: "directive %YAML 1.2", doc: `%YAML 1.2\n---\n${pipe}` });
  cases.push({ name: "directive %TAG", doc: `%TAG !e! tag:yaml.org,2002:\n---\n${pipe.replace("{v: yes}", "{v: !e!str yes}")}` });
  cases.push({ name: "document end marker", doc: `${pipe}...\n` });
  cases.push({ name: "separator with comment", doc: `--- # the pipeline\n${pipe}` });
  cases.push({ name: "separator with content", doc: `--- {apiVersion: tekton.dev/v1, kind: Pipeline, metadata: {name: NAME}, spec: {v: yes}}\n` });
  cases.push({ name: "separator with block scalar", doc: `${pipe}--- |\n  text\n` });
  cases.push({ name: "flow document", doc: `{apiVersion: tekton.dev/v1, kind: Pipeline, metadata: {name: NAME}, spec: {v: yes, w: 0644}}\n` });
  const json = (spec: string) => `{"apiVersion": "tekton.dev/v1", "kind": "Pipeline", "metadata": {"name": "NAME"}, "spec": ${spec}}\n`;
  cases.push({ name: "json numbers", doc: json(`{"a": 1e3, "b": 1.0, "c": -0, "d": 1E-7, "e": 12345678901234567890, "f": 0.1}`) });
  cases.push({ name: "json 1e400", doc: json(`{"v": 1e400}`) });
  cases.push({ name: "json big int", doc: json(`{"v": 9007199254740993}`) });
  cases.push({ name: "json duplicate key", doc: json(`{"a": 1, "a": 2}`) });
  cases.push({ name: "json escapes", doc: json(`{"v": "\\u00e9\\n\\/\\t"}`) });
  cases.push({ name: "json lone surrogate", doc: json(`{"v": "\\ud800"}`) });
  cases.push({ name: "json then yaml", doc: `${json(`{"v": 1}`)}---\n${pipe.replace("NAME", "NAME-b")}` });
  cases.push({ name: "top-level merge", doc: "x-base: &b\n  apiVersion: tekton.dev/v1\n  kind: Pipeline\n<<: *b\nmetadata: {name: NAME}\nspec: {v: yes}\n" });
  cases.push({ name: "metadata through an alias", doc: "x: &md {name: NAME}\napiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: *md\nspec: {v: yes}\n" });
  cases.push({ name: "crlf", doc: "apiVersion: tekton.dev/v1\r\nkind: Pipeline\r\nmetadata:\r\n  name: NAME\r\nspec:\r\n  v: |\r\n    a\r\n    b\r\n  w: yes\r\n" });
  cases.push({ name: "bom", doc: "\ufeffapiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: NAME\nspec: {v: yes}\n" });
  cases.push({ name: "null document", doc: "~\n---\napiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: NAME\nspec: {v: 1}\n" });
  return cases;
}

/**
 * Deliberate divergences: kubectl accepts these, plumber refuses them with file:line and field.
 * - ints past 2^53 that a JS number would round: kubectl sends them exactly, plumber would change
 *   the value silently, so it refuses (quote them);
 * - duplicate keys (also after key conversion): kubectl keeps the last value, or a random one when
 *   the keys only collide as strings; the YAML spec and go-yaml's strict mode refuse them;
 * - a tag glued to a flow indicator (`[!x, y]`), which libyaml reads as part of the tag;
 * - flow collection items indented no deeper than their key, which the YAML spec forbids.
 */
const big = (v: string) => ["value", "flow-list", "block-list", "nested", "flow-map", "anchored"].map((p) => `${p} ${v}`);
const PLUMBER_REFUSES = new Map<string, RegExp>([
  ...[...big("9007199254740993"), ...big("9223372036854775807"), "tag !!int 9007199254740993"].map(
    (n) => [n, /not exactly representable/] as [string, RegExp],
  ),
  ["duplicate key", /already defined/],
  ["key 1 and '1'", /already defined/],
  ["key yes and y", /already defined/],
  // libyaml reads `[!important, x]` as the tag "!important," on "x".
  ["flow-list !important", /directly followed by ","/],
  ["json big int", /not exactly representable/],
  ["json duplicate key", /already defined/],
  ["flow duplicate key", /already defined/],
  // Flow items indented no deeper than their key: libyaml lets them pass, the YAML spec does not.
  ["flow under-indented", /must be sufficiently indented/],
]);

function manifestOf(c: Case, name: string): string {
  if (c.doc) return c.doc.replace("NAME", name);
  const spec = c.spec!.split("\n").map((l) => `  ${l}`).join("\n");
  return `apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: ${name}\nspec:\n${spec}\n`;
}

type Lossless = null | boolean | string | { num: string } | Lossless[] | { obj: Map<string, Lossless> };

/**
 * JSON.parse that keeps number literals as text (kubectl prints int64 exactly), for a stream of
 * values (kubectl create -o json prints one object after another).
 */
function parseLossless(text: string): Lossless[] {
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i] ?? "")) i++;
  };
  const val = (): Lossless => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const obj = new Map<string, Lossless>();
      ws();
      if (text[i] === "}") {
        i++;
        return { obj };
      }
      for (;;) {
        ws();
        const k = val() as string;
        ws();
        i++; // :
        obj.set(k, val());
        ws();
        if (text[i++] === "}") return { obj };
      }
    }
    if (c === "[") {
      i++;
      const arr: Lossless[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(val());
        ws();
        if (text[i++] === "]") return arr;
      }
    }
    if (c === '"') {
      const m = /^"(?:[^"\\]|\\.)*"/.exec(text.slice(i))!;
      i += m[0].length;
      return JSON.parse(m[0]) as string;
    }
    const m = /^(true|false|null|-?[0-9.eE+-]+)/.exec(text.slice(i))!;
    i += m[0].length;
    if (m[0] === "true") return true;
    if (m[0] === "false") return false;
    if (m[0] === "null") return null;
    return { num: m[0] };
  };
  const out: Lossless[] = [];
  for (ws(); i < text.length; ws()) out.push(val());
  return out;
}

function get(v: Lossless, key: string): Lossless | undefined {
  return v !== null && typeof v === "object" && "obj" in v ? v.obj.get(key) : undefined;
}

/** Where plumber's value differs from kubectl's, or undefined. */
function differ(p: unknown, k: Lossless | undefined, at: string): string | undefined {
  if (k === undefined) return `${at}: kubectl has nothing, plumber has ${JSON.stringify(p)}`;
  if (k !== null && typeof k === "object" && "num" in k) {
    if (typeof p !== "number") return `${at}: kubectl ${k.num}, plumber ${JSON.stringify(p)}`;
    const int = /^-?[0-9]+$/.test(k.num) ? BigInt(k.num) : undefined;
    // An int64 must arrive exactly; anything kubectl holds as a float64 compares as a double.
    const ok = int !== undefined && int >= -(1n << 63n) && int < 1n << 63n ? Number.isInteger(p) && BigInt(p) === int : Number(k.num) === p;
    return ok ? undefined : `${at}: kubectl ${k.num}, plumber ${p}`;
  }
  if (Array.isArray(k)) {
    if (!Array.isArray(p) || p.length !== k.length) return `${at}: kubectl list of ${k.length}, plumber ${JSON.stringify(p)}`;
    for (let i = 0; i < k.length; i++) {
      const d = differ(p[i], k[i], `${at}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (k !== null && typeof k === "object" && "obj" in k) {
    if (p === null || typeof p !== "object" || Array.isArray(p)) return `${at}: kubectl a map, plumber ${JSON.stringify(p)}`;
    const pk = Object.keys(p).sort();
    const kk = [...k.obj.keys()].sort();
    if (JSON.stringify(pk) !== JSON.stringify(kk)) return `${at}: kubectl keys ${JSON.stringify(kk)}, plumber keys ${JSON.stringify(pk)}`;
    for (const key of kk) {
      const d = differ((p as Record<string, unknown>)[key], k.obj.get(key), `${at}.${key}`);
      if (d) return d;
    }
    return undefined;
  }
  return p === k ? undefined : `${at}: kubectl ${JSON.stringify(k)}, plumber ${JSON.stringify(p)}`;
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(join(env.binDir, "kubectl"), args, { maxBuffer: 256 << 20 }, (err, stdout, stderr) =>
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

interface Verdict {
  accepted: boolean;
  /** spec of the Pipeline, lossless (kubectl) */
  spec?: Lossless;
  error?: string;
}

describe("YAML is read as kubectl reads it", () => {
  const cases = generate();
  const kubectl = new Map<string, Verdict>();
  const plumber = new Map<string, { spec?: unknown; problems?: FileProblemError }>();
  let dir = "";

  const kubectlCreate = async (files: string[]) => {
    const cacheDir = join(dir, "kube-cache");
    return run([
      "--kubeconfig", env.kubeconfigPath, "--cache-dir", cacheDir,
      "create", "--dry-run=client", "-o", "json", ...files.flatMap((f) => ["-f", f]),
    ]);
  };

  beforeAll(async () => {
    dir = await tempDir("yaml-kubectl");
    await mkdir(join(dir, "cases"));
    const file = (i: number) => join(dir, "cases", `c${i}.yaml`);
    await Promise.all(cases.map((c, i) => writeFile(file(i), manifestOf(c, `c${i}`))));
    cases.forEach((c, i) => {
      try {
        const ms = parseManifests([{ path: `cases/c${i}.yaml`, content: manifestOf(c, `c${i}`) }]);
        plumber.set(c.name, { spec: ms[0]?.object.spec });
      } catch (err) {
        if (!(err instanceof FileProblemError)) throw err;
        plumber.set(c.name, { problems: err });
      }
    });
    // kubectl reads each file on its own, so one batch answers for many cases; a batch it refuses
    // is split until the refused cases stand alone.
    const judge = async (idx: number[]): Promise<void> => {
      const r = await kubectlCreate(idx.map(file));
      if (r.code === 0) {
        for (const item of parseLossless(r.stdout)) {
          const name = get(get(item, "metadata")!, "name") as string;
          // Only the first object of a case is compared (c<i>; a second one is c<i>-b).
          if (!/^c[0-9]+$/.test(name)) continue;
          const i = Number(name.slice(1));
          kubectl.set(cases[i]!.name, { accepted: true, spec: get(item, "spec") ?? null });
        }
        return;
      }
      if (idx.length === 1) {
        kubectl.set(cases[idx[0]!]!.name, { accepted: false, error: r.stderr.trim() });
        return;
      }
      const mid = Math.ceil(idx.length / 2);
      await judge(idx.slice(0, mid));
      await judge(idx.slice(mid));
    };
    const all = cases.map((_, i) => i);
    // Warm the discovery cache once, then judge in batches two at a time.
    await kubectlCreate([file(0)]);
    const batches: number[][] = [];
    for (let i = 0; i < all.length; i += 60) batches.push(all.slice(i, i + 60));
    for (let b = 0; b < batches.length; b += 2) await Promise.all(batches.slice(b, b + 2).map(judge));
  }, 600_000);

  it("generates a corpus of a thousand-odd cases", () => {
    expect(cases.length).toBeGreaterThan(1000);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(kubectl.size).toBe(cases.length);
    // Both sides of the comparison are exercised: many documents kubectl refuses, most it accepts.
    const refused = [...kubectl.values()].filter((v) => !v.accepted).length;
    expect(refused).toBeGreaterThan(50);
    expect(cases.length - refused).toBeGreaterThan(1000);
  });

  it("gives the same JSON as kubectl for every case kubectl accepts, and refuses what kubectl refuses", () => {
    const diverged: string[] = [];
    for (const c of cases) {
      const k = kubectl.get(c.name)!;
      const p = plumber.get(c.name)!;
      if (PLUMBER_REFUSES.has(c.name)) continue;
      if (!k.accepted) {
        if (!p.problems) diverged.push(`${c.name}: kubectl refuses (${k.error?.split("\n")[0]}), plumber accepts ${JSON.stringify(p.spec)}`);
        continue;
      }
      if (p.problems) {
        diverged.push(`${c.name}: kubectl accepts ${JSON.stringify(k.spec, (_, v) => (v instanceof Map ? Object.fromEntries(v) : v))}, plumber refuses: ${p.problems.problems.map((x) => x.message).join("; ")}`);
        continue;
      }
      const d = differ(p.spec ?? null, k.spec, "spec");
      if (d) diverged.push(`${c.name}: ${d}`);
    }
    expect(diverged).toEqual([]);
  });

  it("refuses the deliberate exceptions where kubectl accepts them, naming file, line and field", () => {
    for (const [name, why] of PLUMBER_REFUSES) {
      const c = cases.findIndex((x) => x.name === name);
      expect(c, name).toBeGreaterThanOrEqual(0);
      expect(kubectl.get(name)?.accepted, `kubectl accepts ${name}`).toBe(true);
      const p = plumber.get(name)!;
      expect(p.problems, `plumber refuses ${name}`).toBeDefined();
      const problem = p.problems!.problems[0]!;
      expect(problem.file).toBe(`cases/c${c}.yaml`);
      expect(problem.line).toBeGreaterThanOrEqual(cases[c]!.doc ? 1 : 5);
      expect(problem.message).toMatch(why);
      if (!/directly followed|sufficiently indented/.test(problem.message)) expect(problem.field).toMatch(/^spec\./);
    }
  });

  it("reads a Tekton path param `default: .` as the string '.'", () => {
    const k = kubectl.get("tekton path param")!;
    expect(k.accepted).toBe(true);
    const p = plumber.get("tekton path param")!;
    expect((p.spec as { params: { default: unknown }[] }).params.map((x) => x.default)).toEqual([".", 420]);
  });
});
