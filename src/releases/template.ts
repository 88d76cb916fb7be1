// Release run templates: a PipelineRun, TaskRun or Job manifest (from the repo at the chosen
// revision, or inline in the config) with plumber's placeholders substituted.
//
// The placeholders (`$(plumber.revision)`, `$(plumber.params.NAME)`…) and the run kinds are the
// config's grammar: src/config/run-template.ts, which validates them when the config is loaded.
//
// `$$(plumber.` stands for a literal `$(plumber.`. Substitution happens in string values only
// (never in keys), after YAML parsing, so a value can never change the manifest's structure.
//
// A template file is read exactly as kubectl reads a manifest (the manifest reader's YAML→JSON
// path: go-yaml v2 scalars, libyaml syntax), so the same text means the same in both places:
// `defaultMode: 0644` is 420, `enabled: yes` is true, `version: 1.10` is the number 1.1.

import { LineCounter, parseAllDocuments, type Document } from "yaml";
import { DEFAULT_MAX_ALIAS_COUNT, MAX_DEPTH } from "../manifests/parse.js";
import { AliasLimitError, YamlValueError, documentToJson } from "../manifests/yaml-json.js";
import { applyRewrites, scanSyntax } from "../manifests/yaml-syntax.js";
import { FileProblemError, type FileProblem } from "../types.js";
import type { KubeObject } from "../types.js";
import { checkPlaceholders, checkRunObject, PLACEHOLDER, placeholderProblem } from "../config/run-template.js";
import { zonedFields } from "./slots.js";

export interface TemplateContext {
  release: string;
  revision: string;
  slot: Date;
  timezone: string;
  trigger: "scheduled" | "manual";
  runName: string;
  /** Raw params from the config; resolved against the other placeholders. */
  params: Record<string, string>;
}

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

const FORMAT_TOKENS = /YYYY|MM|DD|HH|mm|ss/g;

export function formatDate(slot: Date, timezone: string, format: string): string {
  const f = zonedFields(slot, timezone);
  const map: Record<string, string> = { YYYY: f.year, MM: f.month, DD: f.day, HH: f.hour, mm: f.minute, ss: f.second };
  return format.replace(FORMAT_TOKENS, (t) => map[t] ?? t);
}

/** The values of the built-in placeholders and resolved params for one run. */
export class Substitution {
  private readonly values: Record<string, string>;
  private readonly params: Record<string, string> = {};

  constructor(private readonly ctx: TemplateContext) {
    const shortRevision = ctx.revision.slice(0, 10);
    const date = formatDate(ctx.slot, ctx.timezone, "YYYYMMDD");
    this.values = {
      revision: ctx.revision,
      shortRevision,
      date,
      scheduledTime: ctx.slot.toISOString().replace(/\.\d{3}Z$/, "Z"),
      versionTag: `v${date}-${shortRevision}`,
      release: ctx.release,
      runName: ctx.runName,
      trigger: ctx.trigger,
    };
    const names = Object.keys(ctx.params);
    for (const [k, v] of Object.entries(ctx.params)) {
      const bad = checkPlaceholders(v, names, true);
      if (bad.length) throw new TemplateError(`params.${k}: ${bad.join("; ")}`);
      this.params[k] = this.text(v, true);
    }
  }

  /** Substitutes every placeholder in one string. */
  text(s: string, inParam = false): string {
    return s.replace(PLACEHOLDER, (whole: string, name: string) => {
      if (whole.startsWith("$$")) return whole.slice(1);
      if (name.startsWith("params.") && !inParam) {
        const v = this.params[name.slice("params.".length)];
        if (v !== undefined) return v;
      } else if (name.startsWith("date:") && name.length > 5) {
        return formatDate(this.ctx.slot, this.ctx.timezone, name.slice(5));
      } else {
        const v = this.values[name];
        if (v !== undefined) return v;
      }
      throw new TemplateError(placeholderProblem(name, Object.keys(this.ctx.params), inParam) ?? `cannot substitute $(plumber.${name})`);
    });
  }

  /** A deep copy of `value` with every string substituted. */
  deep<T>(value: T): T {
    if (typeof value === "string") return this.text(value) as T;
    if (Array.isArray(value)) return value.map((v) => this.deep(v)) as T;
    if (value !== null && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.deep(v);
      return out as T;
    }
    return value;
  }
}

export function parseTemplateFile(file: string, content: string): Record<string, unknown> {
  const objects = kubectlDocuments(file, content);
  if (objects.length !== 1) {
    throw new FileProblemError([{ file, line: 1, message: `a release template must hold exactly one object (found ${objects.length})` }]);
  }
  const obj = objects[0];
  const bad = checkRunObject(obj);
  if (bad) throw new FileProblemError([{ file, line: 1, message: bad }]);
  return obj as Record<string, unknown>;
}

/**
 * The non-empty documents of `content` as kubectl decodes them, the way parseManifests reads a
 * manifest file (failsafe syntax parse, libyaml's syntax checks and rewrites, go-yaml scalars, a
 * leading JSON text read as encoding/json). Every problem is thrown at once.
 */
function kubectlDocuments(file: string, content: string): unknown[] {
  const problems: FileProblem[] = [];
  let lc = new LineCounter();
  let docs = syntaxDocuments(file, content, lc, problems);
  const firstJson = docs[0] !== undefined && isJsonText(content, docs[0]);
  const scan = scanSyntax(content, MAX_DEPTH, firstJson ? docs[0]!.range[1] : 0);
  if (scan.trap) throw new FileProblemError([{ file, line: lc.linePos(scan.trap.offset).line, message: scan.trap.message }]);
  if (scan.rewrites.length > 0) {
    lc = new LineCounter();
    problems.length = 0;
    docs = syntaxDocuments(file, applyRewrites(content, scan.rewrites), lc, problems);
  }
  const lineOf = (off: number | undefined): number => (off === undefined ? 1 : lc.linePos(off).line);
  const out: unknown[] = [];
  for (const [i, doc] of docs.entries()) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = e.linePos?.[0];
        problems.push({ file, line: pos?.line ?? lineOf(doc.range[0]), ...(pos ? { column: pos.col } : {}), message: firstLine(e.message) });
      }
      continue;
    }
    if (doc.contents === null) continue;
    try {
      const value = documentToJson(doc, { maxAliasCount: DEFAULT_MAX_ALIAS_COUNT, maxDepth: MAX_DEPTH, json: i === 0 && firstJson }, (off) => lineOf(off));
      if (value !== null) out.push(value);
    } catch (err) {
      const docLine = lineOf(doc.contents.range?.[0]);
      if (err instanceof AliasLimitError) {
        problems.push({ file, line: docLine, message: `too many alias expansions (limit ${DEFAULT_MAX_ALIAS_COUNT}): ${err.message}` });
      } else if (err instanceof YamlValueError) {
        const off = err.node?.range?.[0];
        problems.push({ file, line: off === undefined ? docLine : lineOf(off), ...(err.path !== "" ? { field: err.path } : {}), message: err.message });
      } else {
        throw err;
      }
    }
  }
  if (problems.length > 0) throw new FileProblemError(problems);
  return out;
}

/** The documents with every scalar a string (failsafe, YAML 1.1 syntax): documentToJson resolves them. */
function syntaxDocuments(file: string, content: string, lc: LineCounter, problems: FileProblem[]): Document.Parsed[] {
  try {
    const parsed = parseAllDocuments(content, { lineCounter: lc, uniqueKeys: false, version: "1.1", schema: "failsafe" });
    if (Array.isArray(parsed)) return parsed;
    // An empty stream can still carry errors (stray directives).
    for (const e of (parsed as { errors?: { message: string; linePos?: { line: number; col: number }[] }[] }).errors ?? []) {
      const pos = e.linePos?.[0];
      problems.push({ file, line: pos?.line ?? 1, ...(pos ? { column: pos.col } : {}), message: firstLine(e.message) });
    }
    return [];
  } catch (err) {
    throw new FileProblemError([{ file, line: 1, message: `cannot parse: ${(err as Error).message}` }]);
  }
}

/** kubectl reads a stream starting with "{" with encoding/json when its first document is valid JSON. */
function isJsonText(content: string, doc: Document.Parsed): boolean {
  if (!/^\s*\{/.test(content)) return false;
  try {
    JSON.parse(content.slice(doc.range[0], doc.range[1]));
    return true;
  } catch {
    return false;
  }
}

function firstLine(s: string): string {
  const i = s.indexOf("\n");
  return (i < 0 ? s : s.slice(0, i)).replace(/:\s*$/, "").replace(/ at line \d+, column \d+$/, "");
}

export const RELEASE_LABEL = "plumber.dev/release";
export const SLOT_LABEL = "plumber.dev/release-slot";
export const TRIGGER_LABEL = "plumber.dev/release-trigger";
export const SCHEDULED_TIME_ANNOTATION = "plumber.dev/scheduled-time";
export const REVISION_ANNOTATION = "plumber.dev/revision";

/**
 * The run plumber creates: the template with placeholders substituted, named `ctx.runName` in
 * `namespace`, labelled with the release and slot. A template namespace other than the release's
 * is refused; generateName, resourceVersion, uid and status are dropped.
 */
export function renderRun(template: Record<string, unknown>, ctx: TemplateContext, namespace: string, slotLabel: string): KubeObject {
  const bad = checkRunObject(template);
  if (bad) throw new TemplateError(bad);
  const sub = new Substitution(ctx);
  const obj = sub.deep(template) as Record<string, unknown>;
  const meta = { ...((obj.metadata as Record<string, unknown> | undefined) ?? {}) };
  if (meta.namespace !== undefined && meta.namespace !== namespace) {
    throw new TemplateError(`the template's metadata.namespace is "${String(meta.namespace)}", but the release creates its runs in "${namespace}"`);
  }
  for (const k of ["generateName", "resourceVersion", "uid", "creationTimestamp", "managedFields", "selfLink"]) delete meta[k];
  const labels = { ...((meta.labels as Record<string, string> | undefined) ?? {}) };
  labels["app.kubernetes.io/managed-by"] = "plumber";
  labels[RELEASE_LABEL] = ctx.release;
  labels[SLOT_LABEL] = slotLabel;
  labels[TRIGGER_LABEL] = ctx.trigger;
  const annotations = { ...((meta.annotations as Record<string, string> | undefined) ?? {}) };
  annotations[SCHEDULED_TIME_ANNOTATION] = ctx.slot.toISOString();
  annotations[REVISION_ANNOTATION] = ctx.revision;
  const out = { ...obj, metadata: { ...meta, name: ctx.runName, namespace, labels, annotations } } as KubeObject;
  delete (out as Record<string, unknown>).status;
  return out;
}
