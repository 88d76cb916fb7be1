// managedFields (FieldsV1) projection, for cheap drift detection.
//
// Server-side apply records in metadata.managedFields[], per manager, the set of fields the
// manager owns as a FieldsV1 trie (see sigs.k8s.io/structured-merge-diff, fieldpath/serialize.go):
//   f:<name>        a field of a map (struct)
//   k:<json object> an element of an associative list, by its key fields: k:{"name":"main"}
//   v:<json value>  an element of a set-list of scalars: v:"foo"
//   i:<index>       an element of an atomic list by position (rare)
//   .               the node itself: {".": {}, "f:a": {}} = the node exists and owns child a
// A child `{}` is a leaf: that field and its whole value are owned. The root is the set
// itself: a root `{}` is the empty set.
//
// Projecting an object through the fields a manager owns and hashing the result gives a
// fingerprint that changes iff the owned field set or any owned value changes.

import type { KubeObject } from "../types.js";
import { canonicalJson, sha256Hex } from "./hash.js";

/** A FieldsV1 trie as found in metadata.managedFields[].fieldsV1. */
export interface FieldsV1 {
  [key: string]: FieldsV1;
}

export type ManagedFieldsOperation = "Apply" | "Update";

type Rec = Record<string, unknown>;

function isRec(v: unknown): v is Rec {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** Sets an own property, even for "__proto__". */
function setOwn(o: Rec, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Deep copy of a JSON-like value; cycles are cut (become null). */
function deepCopy(v: unknown, seen: Set<object> = new Set()): unknown {
  if (v === null || typeof v !== "object") return v;
  if (seen.has(v)) return null;
  seen.add(v);
  let out: unknown;
  if (Array.isArray(v)) {
    out = v.map((e: unknown) => deepCopy(e, seen));
  } else {
    const r: Rec = {};
    for (const k of Object.keys(v)) setOwn(r, k, deepCopy((v as Rec)[k], seen));
    out = r;
  }
  seen.delete(v);
  return out;
}

/** canonicalJson that never throws: a value it cannot write matches nothing. */
function safeCanon(v: unknown): string | undefined {
  try {
    return canonicalJson(v);
  } catch {
    return undefined;
  }
}

/**
 * A well-formed copy of a FieldsV1 trie: every node is a plain object; a child that is not an
 * object (malformed) is taken as a leaf `{}`; cycles are cut. Keys are kept as they are.
 */
function sanitize(v: unknown, seen: Set<object> = new Set()): FieldsV1 {
  const out: FieldsV1 = {};
  if (!isRec(v) || seen.has(v)) return out;
  seen.add(v);
  for (const k of Object.keys(v)) setOwn(out, k, sanitize(v[k], seen));
  seen.delete(v);
  return out;
}

/** Union of two tries (new object; inputs untouched). */
export function mergeFields(a: FieldsV1, b: FieldsV1): FieldsV1 {
  const out: FieldsV1 = {};
  for (const k of Object.keys(a)) setOwn(out, k, a[k] ?? {});
  for (const k of Object.keys(b)) {
    const bk = b[k] ?? {};
    const ak = hasOwn(out, k) ? out[k] : undefined;
    setOwn(out, k, ak === undefined ? bk : mergeFields(ak, bk));
  }
  return out;
}

type PathElement =
  | { t: "f"; name: string }
  | { t: "k"; keys: [string, string][] } // [field, canonical JSON of its value]
  | { t: "v"; canon: string }
  | { t: "i"; index: number }
  | { t: "." }
  | { t: "unknown" };

function parseKey(key: string): PathElement {
  if (key === ".") return { t: "." };
  const prefix = key.slice(0, 2);
  const rest = key.slice(2);
  switch (prefix) {
    case "f:":
      return { t: "f", name: rest };
    case "k:": {
      const parsed = tryParse(rest);
      if (!parsed.ok || !isRec(parsed.value)) return { t: "unknown" };
      const entries = Object.keys(parsed.value).map((f): [string, string] => [f, canonicalJson((parsed.value as Rec)[f])]);
      return entries.length > 0 ? { t: "k", keys: entries } : { t: "unknown" };
    }
    case "v:": {
      const parsed = tryParse(rest);
      return parsed.ok ? { t: "v", canon: canonicalJson(parsed.value) } : { t: "unknown" };
    }
    case "i:":
      return /^(0|[1-9][0-9]*)$/.test(rest) ? { t: "i", index: Number(rest) } : { t: "unknown" };
    default:
      return { t: "unknown" };
  }
}

function tryParse(s: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(s) as unknown };
  } catch {
    return { ok: false };
  }
}

/**
 * The trie with k:/v:/i: keys rewritten in canonical form (k: and v: payloads as canonicalJson,
 * i: without leading zeros), merging keys that turn out equal. Unknown or unparseable keys are
 * kept verbatim, so two tries that differ only there still differ. Malformed nodes become `{}`.
 */
export function canonicalFields(fields: unknown): FieldsV1 {
  return canon(sanitize(fields));
}

function canon(f: FieldsV1): FieldsV1 {
  let out: FieldsV1 = {};
  for (const k of Object.keys(f)) {
    const child = canon(f[k] ?? {});
    const ck = canonicalKey(k);
    if (hasOwn(out, ck)) out = mergeFields(out, { [ck]: child });
    else setOwn(out, ck, child);
  }
  return out;
}

function canonicalKey(key: string): string {
  const prefix = key.slice(0, 2);
  if (prefix === "k:" || prefix === "v:") {
    const parsed = tryParse(key.slice(2));
    if (parsed.ok && (prefix === "v:" || isRec(parsed.value))) return prefix + canonicalJson(parsed.value);
    return key;
  }
  if (prefix === "i:") {
    const rest = key.slice(2);
    return /^[0-9]+$/.test(rest) && Number.isSafeInteger(Number(rest)) ? "i:" + String(Number(rest)) : key;
  }
  return key;
}

/**
 * The FieldsV1 trie of `manager`'s managedFields entry for `operation` and `subresource` ("" is
 * the main resource; entries for "status" etc. are ignored). Update entries of one manager may
 * exist once per apiVersion: they are merged. Undefined if there is no such entry or its
 * fieldsV1 is missing. The result is a sanitized copy (malformed nodes become leaves).
 */
export function managerFields(
  obj: KubeObject | Record<string, unknown>,
  manager: string,
  operation: ManagedFieldsOperation = "Apply",
  subresource = "",
): FieldsV1 | undefined {
  const metadata = isRec(obj) ? obj["metadata"] : undefined;
  const entries = isRec(metadata) ? metadata["managedFields"] : undefined;
  if (!Array.isArray(entries)) return undefined;
  let result: FieldsV1 | undefined;
  for (const e of entries as unknown[]) {
    if (!isRec(e)) continue;
    if (e["manager"] !== manager || e["operation"] !== operation) continue;
    const sub = e["subresource"] ?? "";
    if (sub !== subresource) continue;
    if (e["fieldsType"] !== undefined && e["fieldsType"] !== "FieldsV1") continue;
    let raw = e["fieldsV1"];
    if (typeof raw === "string") {
      const parsed = tryParse(raw);
      raw = parsed.ok ? parsed.value : undefined;
    }
    if (!isRec(raw)) continue;
    const f = sanitize(raw);
    result = result === undefined ? f : mergeFields(result, f);
  }
  return result;
}

/**
 * A new value holding only the parts of `obj` named by `fields`: maps keep the `f:` children
 * listed; lists keep, in the object's order, the elements matched by a `k:` (every key field
 * present and equal as a JSON value), `v:` (equal as a JSON value) or `i:` (position) entry; a
 * leaf `{}` keeps the whole value (deep copy); `.` only says the node exists. Fields absent from
 * `obj` are absent from the result. Where `obj` is a scalar but `fields` expects structure, the
 * scalar is kept, so a change of shape shows. `fields` itself is the root set: `{}` keeps nothing
 * (an empty object/list, or undefined for a scalar). Never throws on malformed input.
 * @internal Exported for its unit tests: the engine uses it through driftPayload.
 */
export function projectFields(obj: unknown, fields: FieldsV1): unknown {
  return projectRoot(obj, sanitize(fields));
}

function projectRoot(obj: unknown, fields: FieldsV1): unknown {
  if (Object.keys(fields).length === 0) {
    return Array.isArray(obj) ? [] : isRec(obj) ? {} : undefined;
  }
  return project(obj, fields);
}

function project(obj: unknown, node: FieldsV1): unknown {
  const keys = Object.keys(node);
  if (keys.length === 0) return deepCopy(obj);
  if (Array.isArray(obj)) return projectList(obj as unknown[], node, keys);
  if (isRec(obj)) return projectMap(obj, node, keys);
  return deepCopy(obj);
}

function projectMap(obj: Rec, node: FieldsV1, keys: string[]): Rec {
  const out: Rec = {};
  for (const key of keys) {
    if (!key.startsWith("f:")) continue;
    const name = key.slice(2);
    if (!hasOwn(obj, name)) continue;
    setOwn(out, name, project(obj[name], node[key] ?? {}));
  }
  return out;
}

function projectList(list: unknown[], node: FieldsV1, keys: string[]): unknown[] {
  const matchers: { el: PathElement; child: FieldsV1 }[] = [];
  let needCanon = false;
  for (const key of keys) {
    let el: PathElement;
    try {
      el = parseKey(key);
    } catch {
      continue;
    }
    if (el.t === "k" || el.t === "v" || el.t === "i") {
      matchers.push({ el, child: node[key] ?? {} });
      if (el.t === "v") needCanon = true;
    }
  }
  const out: unknown[] = [];
  if (matchers.length === 0) return out;
  list.forEach((item, index) => {
    const itemCanon = needCanon ? safeCanon(item) : undefined;
    let child: FieldsV1 | undefined;
    for (const m of matchers) {
      if (!matches(m.el, item, index, itemCanon)) continue;
      child = child === undefined ? m.child : mergeFields(child, m.child);
    }
    if (child !== undefined) out.push(project(item, child));
  });
  return out;
}

function matches(el: PathElement, item: unknown, index: number, itemCanon: string | undefined): boolean {
  switch (el.t) {
    case "i":
      return el.index === index;
    case "v":
      return itemCanon !== undefined && itemCanon === el.canon;
    case "k":
      if (!isRec(item)) return false;
      return el.keys.every(([f, c]) => hasOwn(item, f) && safeCanon(item[f]) === c);
    default:
      return false;
  }
}

/**
 * sha256 hex of canonicalJson({fields, values}): `fields` is `manager`'s Apply entry (main
 * resource) in canonical form, `values` the object projected through it. Without such an entry,
 * the hash of {fields: null}. Equal for two snapshots iff the manager owns the same fields with
 * the same values, whatever resourceVersion, managedFields times, status or other managers' fields.
 * @internal Exported for its unit tests: the engine stores it keyed (hash.ts), never bare.
 */
export function driftFingerprint(obj: KubeObject | Record<string, unknown>, manager: string): string {
  return sha256Hex(driftPayload(obj, manager));
}

/** The text driftFingerprint hashes; callers that store it hash it keyed (hash.ts keyedHex). */
export function driftPayload(obj: KubeObject | Record<string, unknown>, manager: string): string {
  const raw = managerFields(obj, manager, "Apply", "");
  if (raw === undefined) return canonicalJson({ fields: null });
  const fields = canon(raw);
  return canonicalJson({ fields, values: projectRoot(obj, fields) });
}

/** Every FieldsV1 path (keys joined with "\u0000") in the trie, leaves and inner nodes alike. */
function fieldPaths(f: FieldsV1, prefix = "", out = new Set<string>()): Set<string> {
  for (const k of Object.keys(f)) {
    if (k === ".") continue;
    const p = prefix ? `${prefix}\u0000${k}` : k;
    const child = f[k] ?? {};
    if (Object.keys(child).filter((c) => c !== ".").length === 0) out.add(p);
    fieldPaths(child, p, out);
  }
  return out;
}

interface EntryView {
  manager: string;
  operation: string;
  time: number;
  fields: FieldsV1;
}

function mainEntries(obj: KubeObject | Record<string, unknown>): EntryView[] {
  const metadata = isRec(obj) ? obj["metadata"] : undefined;
  const entries = isRec(metadata) ? metadata["managedFields"] : undefined;
  if (!Array.isArray(entries)) return [];
  const out: EntryView[] = [];
  for (const e of entries as unknown[]) {
    if (!isRec(e) || (e["subresource"] ?? "") !== "" || typeof e["manager"] !== "string") continue;
    const t = typeof e["time"] === "string" ? Date.parse(e["time"]) : NaN;
    out.push({ manager: e["manager"], operation: String(e["operation"] ?? ""), time: Number.isNaN(t) ? 0 : t, fields: canonicalFields(e["fieldsV1"]) });
  }
  return out;
}

/**
 * Field managers other than `manager` that contest what it applied: those that share a leaf field
 * with its Apply entry (the same value set by both), or that wrote the object after its last
 * apply, in the same second or later (a field taken by an Update leaves the applier's set, so
 * timing is what is left to see).
 * Status subresource writers are not counted: they never touch applied fields.
 */
export function contestingManagers(obj: KubeObject | Record<string, unknown>, manager: string): string[] {
  const entries = mainEntries(obj);
  const mine = entries.filter((e) => e.manager === manager && e.operation === "Apply");
  const myTime = Math.max(0, ...mine.map((e) => e.time));
  const myLeaves = new Set<string>();
  for (const e of mine) for (const p of fieldPaths(e.fields)) myLeaves.add(p);
  const out = new Set<string>();
  for (const e of entries) {
    if (e.manager === manager) continue;
    // Same second counts: managedFields times have one-second resolution, and a manager writing
    // in the very second of plumber's apply is what a fight over a field looks like.
    if (mine.length > 0 && e.time >= myTime) {
      out.add(e.manager);
      continue;
    }
    for (const p of fieldPaths(e.fields)) {
      if (myLeaves.has(p)) {
        out.add(e.manager);
        break;
      }
    }
  }
  return [...out].sort();
}

/**
 * The parts of `from` that `keep` does not hold, cut at the first key `keep` lacks (that whole
 * subtree goes). Used to foresee what an apply removes once plumber owns `from` (a takeover).
 */
export function fieldsMissingFrom(from: FieldsV1, keep: FieldsV1): FieldsV1 {
  const out: FieldsV1 = {};
  for (const k of Object.keys(from)) {
    if (k === ".") continue;
    if (!hasOwn(keep, k)) setOwn(out, k, {});
    else {
      const sub = fieldsMissingFrom(from[k] ?? {}, keep[k] ?? {});
      if (Object.keys(sub).length > 0) setOwn(out, k, sub);
    }
  }
  return out;
}

/** A copy of `obj` without the fields named by `fields`: a leaf `{}` removes the whole value. */
export function removeFields(obj: unknown, fields: FieldsV1): unknown {
  const f = sanitize(fields);
  if (Object.keys(f).length === 0) return deepCopy(obj);
  if (Array.isArray(obj)) {
    const matchers = Object.keys(f).map((k) => ({ el: parseKey(k), child: f[k] ?? {} })).filter((m) => m.el.t === "k" || m.el.t === "v" || m.el.t === "i");
    const out: unknown[] = [];
    obj.forEach((item, index) => {
      const itemCanon = safeCanon(item);
      const hit = matchers.find((m) => matches(m.el, item, index, itemCanon));
      if (!hit) out.push(deepCopy(item));
      else if (Object.keys(hit.child).length > 0) out.push(removeFields(item, hit.child));
    });
    return out;
  }
  if (!isRec(obj)) return deepCopy(obj);
  const out: Rec = {};
  for (const name of Object.keys(obj)) {
    const key = `f:${name}`;
    if (!hasOwn(f, key)) setOwn(out, name, deepCopy(obj[name]));
    else if (Object.keys(f[key] ?? {}).length > 0) setOwn(out, name, removeFields(obj[name], f[key] ?? {}));
  }
  return out;
}

/**
 * `target` with the map fields named by `fields` copied back from `source` where `source` has
 * them: after removeFields, puts back what the server would default again (list elements are not
 * restored; a default never adds one).
 */
export function restoreFields(target: unknown, source: unknown, fields: FieldsV1): unknown {
  const f = sanitize(fields);
  if (Array.isArray(target) && Array.isArray(source)) {
    return target.map((item, index) => {
      for (const k of Object.keys(f)) {
        const el = parseKey(k);
        if (el.t !== "k" && el.t !== "v" && el.t !== "i") continue;
        if (!matches(el, item, index, safeCanon(item))) continue;
        const twin = source.find((s, i) => matches(el, s, i, safeCanon(s)));
        if (twin !== undefined && Object.keys(f[k] ?? {}).length > 0) return restoreFields(item, twin, f[k] ?? {});
      }
      return item;
    });
  }
  if (!isRec(target) || !isRec(source)) return target;
  const out: Rec = { ...target };
  for (const k of Object.keys(f)) {
    if (!k.startsWith("f:")) continue;
    const name = k.slice(2);
    if (!hasOwn(source, name)) continue;
    const child = f[k] ?? {};
    if (Object.keys(child).length === 0 || !hasOwn(out, name)) setOwn(out, name, deepCopy(source[name]));
    else setOwn(out, name, restoreFields(out[name], source[name], child));
  }
  return out;
}
