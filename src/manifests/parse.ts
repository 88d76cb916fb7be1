// Manifest files → Manifest[]: multi-document YAML and JSON, with every problem in every file
// reported at once (file:line, field).
//
// Values are read exactly as kubectl reads them (sigs.k8s.io/yaml on go-yaml v2, see yaml-json.ts
// and yaml-resolve.ts): `0644` is octal 420 (volume defaultMode), yes/no/on/off/y/n are booleans,
// `.` and timestamps are strings. The `yaml` package only parses the syntax (failsafe schema).

import { LineCounter, parseAllDocuments, isMap, isScalar, isSeq, type Document, type Node, type YAMLMap } from "yaml";
import { FileProblemError, formatProblem, type FileProblem, type KubeObject, type Manifest } from "../types.js";
import { AliasLimitError, YamlValueError, documentToJson } from "./yaml-json.js";
import { applyRewrites, scanSyntax } from "./yaml-syntax.js";

export interface ParseOptions {
  /** Limit on alias expansion per document (yaml's maxAliasCount); default 100. Stops billion-laughs. */
  maxAliasCount?: number;
}

export const DEFAULT_MAX_ALIAS_COUNT = 100;

/**
 * Nesting limit per document, aliases included (go-yaml allows 10000; no manifest comes near 500,
 * and the `yaml` package's composer runs out of stack near 800).
 */
export const MAX_DEPTH = 500;

/** Extensions read as manifests (case-sensitive, as kubectl). */
export function isManifestFile(path: string): boolean {
  return /\.(ya?ml|json)$/.test(path);
}

/**
 * A Kubernetes object name: at most 253 characters, no "/", "%", whitespace or control characters,
 * not "." or "..". This is the rule every resource's name satisfies (path-segment name); the API
 * server applies the stricter per-kind rules (DNS subdomain etc.).
 */
export function checkObjectName(name: string): string | undefined {
  if (name.length > 253) return "must be at most 253 characters";
  if (name === "." || name === "..") return `must not be "${name}"`;
  if (/[/%]/.test(name)) return 'must not contain "/" or "%"';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\s\u0000-\u001f\u007f]/.test(name)) return "must not contain whitespace or control characters";
  return undefined;
}

/** A namespace name: an RFC 1123 DNS label. */
export function checkNamespaceName(ns: string): string | undefined {
  if (ns.length > 63) return "must be at most 63 characters";
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns)) {
    return "must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit";
  }
  return undefined;
}

interface Ctx {
  file: string;
  lc: LineCounter;
  problems: FileProblem[];
}

function lineOf(ctx: Ctx, node: { range?: [number, number, number] | null } | null | undefined, fallback: number): number {
  const off = node?.range?.[0];
  return off === undefined ? fallback : ctx.lc.linePos(off).line;
}

/** The pair written for `key` in `map`, for its line; undefined when the key came from a merge or an alias. */
function pairOf(map: unknown, key: string): { keyNode: Node | null; valueNode: Node | null } | undefined {
  if (!isMap(map)) return undefined;
  for (const p of (map as YAMLMap).items) {
    const k = p.key as unknown;
    const kv = isScalar(k) ? k.value : k;
    if (kv === key) return { keyNode: (isScalar(k) ? k : null) as Node | null, valueNode: (p.value as Node | null) ?? null };
  }
  return undefined;
}

/**
 * Validates one object (a document's root, or an item of a List) and returns the Manifest(s) it
 * stands for, recording problems in ctx. `value` is the JSON form; `node` is where it was written,
 * used for lines only (values reached through an alias or a merge key fall back to `fallbackLine`).
 */
function checkObject(ctx: Ctx, node: Node | null, value: unknown, where: string, out: Manifest[], depth: number, fallbackLine = 1): void {
  const startLine = lineOf(ctx, node, fallbackLine);
  const problem = (line: number, field: string | undefined, message: string) => {
    ctx.problems.push({ file: ctx.file, line, ...(field !== undefined ? { field: `${where}${field}` } : {}), message });
  };
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    problem(startLine, where === "" ? undefined : where.replace(/\.$/, ""), "a manifest must be a mapping (an object with apiVersion, kind, metadata)");
    return;
  }
  const obj = value as Record<string, unknown>;
  let ok = true;

  const requireString = (key: "apiVersion" | "kind"): string | undefined => {
    const p = pairOf(node, key);
    const v = obj[key];
    if (v === undefined || v === null) {
      problem(startLine, key, "is required");
      ok = false;
      return undefined;
    }
    if (typeof v !== "string" || v.trim() === "") {
      problem(lineOf(ctx, p?.valueNode ?? p?.keyNode, startLine), key, "must be a non-empty string");
      ok = false;
      return undefined;
    }
    if (/\s/.test(v)) {
      problem(lineOf(ctx, p?.valueNode ?? p?.keyNode, startLine), key, "must not contain whitespace");
      ok = false;
      return undefined;
    }
    return v;
  };
  const apiVersion = requireString("apiVersion");
  const kind = requireString("kind");

  // kind: List (apiVersion v1) is a container: its items are the objects.
  if (apiVersion === "v1" && kind === "List") {
    const p = pairOf(node, "items");
    const items = obj.items;
    if (items === undefined || items === null) return; // an empty List
    if (!Array.isArray(items)) {
      problem(lineOf(ctx, p?.keyNode, startLine), "items", "must be a list of objects");
      return;
    }
    if (depth >= 1) {
      problem(startLine, undefined, "a List inside a List is not supported");
      return;
    }
    const seq = p && isSeq(p.valueNode) ? p.valueNode : null;
    const itemsLine = lineOf(ctx, p?.keyNode, startLine);
    items.forEach((item, i) => {
      checkObject(ctx, (seq?.items[i] as Node | undefined) ?? null, item, `${where}items[${i}].`, out, depth + 1, itemsLine);
    });
    return;
  }

  const mp = pairOf(node, "metadata");
  const metadata = obj.metadata;
  let name: string | undefined;
  if (metadata === undefined || metadata === null) {
    problem(startLine, "metadata.name", "is required (metadata is missing)");
    ok = false;
  } else if (typeof metadata !== "object" || Array.isArray(metadata)) {
    problem(lineOf(ctx, mp?.keyNode, startLine), "metadata", "must be a mapping");
    ok = false;
  } else {
    const md = metadata as Record<string, unknown>;
    const mdLine = lineOf(ctx, mp?.keyNode, startLine);
    const np = pairOf(mp?.valueNode, "name");
    const n = md.name;
    if (n === undefined || n === null) {
      const gen = md.generateName !== undefined ? " (generateName is not supported: objects need a stable name)" : "";
      problem(mdLine, "metadata.name", `is required${gen}`);
      ok = false;
    } else if (typeof n !== "string" || n === "") {
      problem(lineOf(ctx, np?.valueNode ?? np?.keyNode, mdLine), "metadata.name", "must be a non-empty string");
      ok = false;
    } else {
      const why = checkObjectName(n);
      if (why) {
        problem(lineOf(ctx, np?.valueNode ?? np?.keyNode, mdLine), "metadata.name", `${JSON.stringify(n)} ${why}`);
        ok = false;
      } else {
        name = n;
      }
    }
    const nsp = pairOf(mp?.valueNode, "namespace");
    const ns = md.namespace;
    if (ns !== undefined && ns !== null) {
      const line = lineOf(ctx, nsp?.valueNode ?? nsp?.keyNode, mdLine);
      if (typeof ns !== "string" || ns === "") {
        problem(line, "metadata.namespace", "must be a non-empty string");
        ok = false;
      } else {
        const why = checkNamespaceName(ns);
        if (why) {
          problem(line, "metadata.namespace", `${JSON.stringify(ns)} ${why}`);
          ok = false;
        }
      }
    } else if (ns === null) {
      // `namespace:` with no value: treat as absent, like kubectl.
      delete md.namespace;
    }
  }

  if (!ok || apiVersion === undefined || kind === undefined || name === undefined) return;
  out.push({ object: obj as KubeObject, source: { file: ctx.file, line: startLine } });
}

/** The documents of `content` (failsafe schema), or undefined after recording the stream's errors. */
function parseDocs(file: string, content: string, lc: LineCounter, problems: FileProblem[]): Document.Parsed[] | undefined {
  try {
    // Failsafe: every scalar stays a string with its tag and style; documentToJson resolves it.
    // Duplicate keys are refused there, after keys are converted the way kubectl converts them.
    const parsed = parseAllDocuments(content, { lineCounter: lc, uniqueKeys: false, version: "1.1", schema: "failsafe" });
    const stray = Array.isArray(parsed) ? [] : (parsed as { errors?: { message: string; linePos?: { line: number; col: number }[] }[] }).errors ?? [];
    // An EmptyStream can still carry errors (e.g. stray directives).
    for (const e of stray) {
      const pos = e.linePos?.[0];
      problems.push({ file, line: pos?.line ?? 1, ...(pos ? { column: pos.col } : {}), message: firstLine(e.message) });
    }
    return Array.isArray(parsed) ? parsed : [];
  } catch (err) {
    problems.push({ file, line: 1, message: `cannot parse: ${(err as Error).message}` });
    return undefined;
  }
}

function parseFile(file: string, content: string, maxAliasCount: number, problems: FileProblem[], out: Manifest[]): void {
  let lc = new LineCounter();
  let docs = parseDocs(file, content, lc, problems);
  if (!docs) return;
  const firstJson = docs[0] !== undefined && isJsonText(content, docs[0]);
  const scan = scanSyntax(content, MAX_DEPTH, firstJson ? docs[0]!.range[1] : 0);
  if (scan.trap) {
    problems.push({ file, line: lc.linePos(scan.trap.offset).line, message: scan.trap.message });
    return;
  }
  if (scan.rewrites.length > 0) {
    lc = new LineCounter();
    docs = parseDocs(file, applyRewrites(content, scan.rewrites), lc, problems);
    if (!docs) return;
  }
  const ctx: Ctx = { file, lc, problems };
  const isJson = file.endsWith(".json");
  let nonEmpty = 0;
  for (const [docIndex, doc] of docs.entries()) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = e.linePos?.[0];
        problems.push({
          file,
          line: pos?.line ?? lineOf(ctx, doc.contents, 1),
          ...(pos?.col !== undefined ? { column: pos.col } : {}),
          message: /Maximum call stack size exceeded/.test(e.message) ? `nested too deeply (at most ${MAX_DEPTH} levels)` : firstLine(e.message),
        });
      }
      continue;
    }
    if (doc.contents === null) continue; // empty document
    let value: unknown;
    try {
      const json = docIndex === 0 && firstJson;
      value = documentToJson(doc, { maxAliasCount, maxDepth: MAX_DEPTH, json }, (off) => lc.linePos(off).line);
    } catch (err) {
      if (err instanceof AliasLimitError) {
        problems.push({ file, line: lineOf(ctx, doc.contents, 1), message: `too many alias expansions (limit ${maxAliasCount}): ${err.message}` });
      } else if (err instanceof YamlValueError) {
        problems.push({
          file,
          line: lineOf(ctx, err.node, lineOf(ctx, doc.contents, 1)),
          ...(err.path !== "" ? { field: err.path } : {}),
          message: err.message,
        });
      } else {
        throw err;
      }
      continue;
    }
    // A document that is only a comment, `~` or `null` is empty, as kubectl skips it.
    if (value === null) continue;
    nonEmpty++;
    if (isJson && nonEmpty > 1) {
      problems.push({ file, line: lineOf(ctx, doc.contents, 1), message: "a JSON file must hold a single object" });
      continue;
    }
    checkObject(ctx, doc.contents as Node, value, "", out, 0, lineOf(ctx, doc.contents, 1));
  }
}

/**
 * Whether kubectl reads this (first) document with encoding/json: its stream starts with "{"
 * (apimachinery's GuessJSONStream) and the document is valid JSON; otherwise it falls back to YAML.
 */
function isJsonText(content: string, doc: Document.Parsed): boolean {
  if (!/^\s*\{/.test(content)) return false;
  const [start, end] = doc.range;
  try {
    JSON.parse(content.slice(start, end));
    return true;
  } catch {
    return false;
  }
}

/** yaml's pretty message without the code excerpt and the position (we report it separately). */
function firstLine(s: string): string {
  const i = s.indexOf("\n");
  return (i < 0 ? s : s.slice(0, i)).replace(/:\s*$/, "").replace(/ at line \d+, column \d+$/, "");
}

/**
 * Parses manifest files (*.yaml, *.yml, *.json; other files are ignored) into Manifests, in file
 * order then document order. Empty documents are skipped; `kind: List` (apiVersion v1) is expanded
 * into its items. Every problem in every file is collected, then thrown as one FileProblemError.
 * Each Manifest's source is {file, line of the document's (or List item's) first line}.
 */
export function parseManifests(files: { path: string; content: string }[], opts?: ParseOptions): Manifest[] {
  const maxAliasCount = opts?.maxAliasCount ?? DEFAULT_MAX_ALIAS_COUNT;
  const problems: FileProblem[] = [];
  const out: Manifest[] = [];
  for (const f of files) {
    if (!isManifestFile(f.path)) continue;
    parseFile(f.path, f.content, maxAliasCount, problems, out);
  }
  if (problems.length > 0) {
    const files = new Set(problems.map((p) => p.file)).size;
    const summary = `${problems.length} manifest problem${problems.length === 1 ? "" : "s"} in ${files} file${files === 1 ? "" : "s"}:\n`;
    throw new FileProblemError(problems, summary + problems.map(formatProblem).join("\n"));
  }
  return out;
}
