// One parsed YAML document → the JSON kubectl would make of it (sigs.k8s.io/yaml.YAMLToJSON over
// go-yaml v2). The `yaml` package is used for syntax only (its failsafe schema leaves every scalar a
// string); values, merge keys, aliases and map keys are decoded here the way go-yaml v2 decodes them
// into interface{}, then converted as sigs.k8s.io/yaml converts them to JSON.

import { isAlias, isMap, isPair, isScalar, isSeq, type Alias, type Document, type Node, type Scalar, type YAMLMap } from "yaml";
import { MERGE_TAG, ScalarError, goFloatKey, resolveScalar, type GoScalar, INT64_LIMITS } from "./yaml-resolve.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface ToJsonOptions {
  /** Alias dereferences allowed per document, nested ones included (stops billion-laughs). */
  maxAliasCount: number;
  /** Nesting allowed, alias expansion included (keeps recursion off the stack limit). */
  maxDepth: number;
  /**
   * The document is a JSON text that kubectl decodes with encoding/json rather than go-yaml (a
   * stream starting with "{"): a number beyond float64 is an error there, not a string, and a
   * lone surrogate escape becomes U+FFFD.
   */
  json?: boolean;
}

/** A value kubectl would not accept, or one plumber cannot carry exactly; `node` locates it. */
export class YamlValueError extends Error {
  constructor(
    message: string,
    readonly node: Node | null,
    /** Field path from the document root, e.g. spec.params[0].default; "" for the root. */
    readonly path: string,
  ) {
    super(message);
  }
}

/** Raised when the document expands more aliases than allowed. */
export class AliasLimitError extends Error {}

interface Walk {
  doc: Document;
  opts: ToJsonOptions;
  aliasUses: number;
  /** Alias nodes being expanded: meeting one again is a cycle (go-yaml: "value contains itself"). */
  active: Set<Alias>;
  lineOf?: (offset: number) => number;
}

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function isPlain(s: Scalar): boolean {
  return s.type === "PLAIN";
}

function tagOf(n: Node): string {
  return n.tag ?? "";
}

/** go-yaml's "implicit" flag: plain and untagged, or the non-specific "!" tag. */
function implicit(s: Scalar): boolean {
  return (isPlain(s) && tagOf(s) === "") || tagOf(s) === "!";
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function scalarOf(w: Walk, s: Scalar, path: string): GoScalar {
  try {
    if (w.opts.json) {
      const text = String(s.value ?? "");
      if (!isPlain(s)) return { kind: "string", value: text.replace(LONE_SURROGATE, "\ufffd") };
      const v = resolveScalar(text, "", true);
      if (v.kind === "string") {
        throw new YamlValueError(`number ${text} is out of range (kubectl refuses it too: cannot unmarshal number into float64)`, s, path);
      }
      return v;
    }
    return resolveScalar(String(s.value ?? ""), tagOf(s), implicit(s));
  } catch (err) {
    if (err instanceof ScalarError) throw new YamlValueError(err.message, s, path);
    throw err;
  }
}

function scalarToJson(v: GoScalar, node: Node, path: string): Json {
  switch (v.kind) {
    case "null":
      return null;
    case "bool":
    case "string":
      return v.value;
    case "float":
      if (!Number.isFinite(v.value)) {
        const name = Number.isNaN(v.value) ? "NaN" : v.value > 0 ? "+Inf" : "-Inf";
        throw new YamlValueError(
          `${name} cannot be represented in JSON (kubectl refuses it too: "json: unsupported value: ${name}"); quote it if it is meant as a string`,
          node,
          path,
        );
      }
      return v.value === 0 ? 0 : v.value; // -0 is 0 once kubectl reads its own JSON back
    case "int": {
      // Beyond int64 go-yaml yields a uint64, which kubectl reads back from JSON as a float64.
      if (v.value > INT64_LIMITS.max) return Number(v.value);
      const n = Number(v.value);
      if ((v.value > MAX_EXACT || v.value < -MAX_EXACT) && BigInt(n) !== v.value) {
        throw new YamlValueError(
          `integer ${v.value} is not exactly representable (beyond 2^53): kubectl would send it exactly, plumber would round it to ${BigInt(n)}; quote it if it is meant as a string`,
          node,
          path,
        );
      }
      return n;
    }
  }
}

function deref(w: Walk, a: Alias, path: string): Node {
  if (w.active.has(a)) throw new YamlValueError(`anchor '${a.source}' value contains itself`, a, path);
  w.aliasUses++;
  if (w.aliasUses > w.opts.maxAliasCount) {
    throw new AliasLimitError(`more than ${w.opts.maxAliasCount} alias expansions in one document`);
  }
  const target = a.resolve(w.doc) as Node | undefined;
  if (!target) throw new YamlValueError(`unknown anchor '${a.source}' referenced`, a, path);
  return target;
}

function value(w: Walk, node: unknown, path: string, depth: number): Json {
  if (depth > w.opts.maxDepth) throw new YamlValueError(`nested deeper than ${w.opts.maxDepth} levels`, node as Node, path);
  if (node === null || node === undefined) return null;
  if (isAlias(node)) {
    const target = deref(w, node, path);
    w.active.add(node);
    try {
      return value(w, target, path, depth + 1);
    } finally {
      w.active.delete(node);
    }
  }
  if (isScalar(node)) return scalarToJson(scalarOf(w, node, path), node, path);
  if (isSeq(node)) return node.items.map((item, i) => value(w, item, `${path}[${i}]`, depth + 1));
  if (isMap(node)) {
    const out: { [key: string]: Json } = {};
    mapping(w, node, path, depth, out);
    return out;
  }
  throw new YamlValueError("unsupported YAML node", node as Node, path);
}

function isMergeKey(k: unknown): boolean {
  return isScalar(k) && String(k.value) === "<<" && (implicit(k) || tagOf(k) === MERGE_TAG);
}

function set(out: { [key: string]: Json }, key: string, v: Json): void {
  // A plain assignment to "__proto__" would change the prototype instead of adding the field.
  if (key === "__proto__") Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  else out[key] = v;
}

/**
 * decode.go mapping(): pairs are applied in order into `out`; a merge key writes the merged
 * mapping's pairs into `out` where it stands, so a later key overrides a merged one and a merge
 * overrides an earlier key (go-yaml v2 behaviour, unlike the YAML merge spec).
 */
function mapping(w: Walk, map: YAMLMap, path: string, depth: number, out: { [key: string]: Json }): void {
  const seen = new Map<string, Node | null>();
  for (const pair of map.items) {
    if (!isPair(pair)) continue;
    if (isMergeKey(pair.key)) {
      merge(w, pair.value as Node | null, path, depth, out);
      continue;
    }
    const key = mapKey(w, pair.key, path);
    const at = join(path, key);
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      // go-yaml v2's strict mode and the YAML spec refuse this; non-strict readers keep one value at
      // random (two keys that only become equal as strings) or the last one.
      const keyNode = (pair.key as Node | null) ?? (pair.value as Node | null);
      throw new YamlValueError(`mapping key ${JSON.stringify(key)} already defined${lineHint(w, earlier)}`, keyNode, at);
    }
    seen.set(key, (pair.key as Node | null) ?? null);
    set(out, key, value(w, pair.value, at, depth + 1));
  }
}

function lineHint(w: Walk, n: Node | null): string {
  const off = n?.range?.[0];
  if (off === undefined) return "";
  return w.lineOf ? ` at line ${w.lineOf(off)}` : "";
}

/** The mapping a merge value (or one item of a merge list) stands for; `at` names it in errors. */
function mergeSource(w: Walk, n: Node | null, at: string): YAMLMap {
  const want = () => new YamlValueError("map merge requires map or sequence of maps as the value", n, at);
  if (n && isAlias(n)) {
    const t = deref(w, n, at);
    if (!isMap(t)) throw want();
    return t;
  }
  if (n && isMap(n)) return n;
  throw want();
}

/** decode.go merge(): `path` is the mapping the merged pairs land in. */
function merge(w: Walk, n: Node | null, path: string, depth: number, out: { [key: string]: Json }): void {
  const at = join(path, "<<");
  if (n && isSeq(n)) {
    // Backwards, so that earlier maps in the list win.
    for (let i = n.items.length - 1; i >= 0; i--) {
      const item = n.items[i] as Node | null;
      if (!item || !(isAlias(item) || isMap(item))) {
        throw new YamlValueError("map merge requires map or sequence of maps as the value", item ?? n, `${at}[${i}]`);
      }
      mergeOne(w, item, `${at}[${i}]`, path, depth, out);
    }
    return;
  }
  mergeOne(w, n, at, path, depth, out);
}

function mergeOne(w: Walk, n: Node | null, at: string, path: string, depth: number, out: { [key: string]: Json }): void {
  const alias = n && isAlias(n) ? n : undefined;
  if (alias && w.active.has(alias)) throw new YamlValueError(`anchor '${alias.source}' value contains itself`, alias, at);
  const src = mergeSource(w, n, at);
  if (alias) w.active.add(alias);
  try {
    if (depth + 1 > w.opts.maxDepth) throw new YamlValueError(`nested deeper than ${w.opts.maxDepth} levels`, src, at);
    mapping(w, src, path, depth + 1, out);
  } finally {
    if (alias) w.active.delete(alias);
  }
}

/** A map key as sigs.k8s.io/yaml makes it a JSON key: ints and bools as text, floats as float32 %g. */
function mapKey(w: Walk, k: unknown, path: string): string {
  let node = k as Node | null | undefined;
  const active: Alias[] = [];
  try {
    while (node && isAlias(node)) {
      const t = deref(w, node, path);
      active.push(node);
      w.active.add(node);
      node = t;
    }
    if (node === null || node === undefined) throw new YamlValueError("a null map key cannot be a JSON key (kubectl refuses it too: unsupported map key)", null, path);
    if (isMap(node) || isSeq(node)) throw new YamlValueError("invalid map key: a mapping or sequence cannot be a key", node, path);
    if (!isScalar(node)) throw new YamlValueError("unsupported map key", node, path);
    const v = scalarOf(w, node, path);
    switch (v.kind) {
      case "string":
        return v.value;
      case "bool":
        return v.value ? "true" : "false";
      case "float":
        return goFloatKey(v.value);
      case "int":
        if (v.value > INT64_LIMITS.max) {
          throw new YamlValueError(`map key ${v.value} is beyond int64 (kubectl refuses it too: unsupported map key of type uint64)`, node, path);
        }
        return v.value.toString();
      case "null":
        throw new YamlValueError(
          `a null map key (${JSON.stringify(String(node.value ?? ""))}) cannot be a JSON key (kubectl refuses it too: unsupported map key)`,
          node,
          path,
        );
    }
    throw new YamlValueError("unsupported map key", node, path);
  } finally {
    for (const a of active) w.active.delete(a);
  }
}

/**
 * The JSON value of a document's contents. Throws YamlValueError (with the node and field path)
 * for what kubectl refuses or plumber cannot carry, AliasLimitError past the alias budget.
 */
export function documentToJson(doc: Document, opts: ToJsonOptions, lineOf?: (offset: number) => number): Json {
  const w: Walk = { doc, opts, aliasUses: 0, active: new Set(), ...(lineOf ? { lineOf } : {}) };
  return value(w, doc.contents, "", 0);
}
