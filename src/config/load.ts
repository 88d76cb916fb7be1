// Reads config/plumber.yaml: YAML -> JSON Schema validation (config/plumber.schema.json, with its
// defaults) -> feature gates -> checks the schema cannot express -> normalized PlumberConfig.
// Every problem is reported with file:line:column and the field, all of them at once.

import { checkWindowSchedule } from "./schedule.js";
import { findCycle } from "../util/graph.js";
import { stat, readFile } from "node:fs/promises";
import nodePath from "node:path";
import type { ErrorObject } from "ajv/dist/2020.js";
import {
  LineCounter,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  visit,
  type Document,
  type Pair,
} from "yaml";
import { FileProblemError, type FileProblem } from "../types.js";
import { parseDuration } from "./duration.js";
import { rememberConfigField } from "./secrets.js";
import { repoUrlProblem } from "../git/url.js";
import { checkReleases, normalizeRelease, type RawRelease } from "./releases.js";
import { findGatedFields, isApiFieldsGate } from "./gates.js";
import { configSchema, configValidator, walkSchema, type PathSegment, type SchemaNode } from "./schema.js";
import type { AppConfig, CheckConfig, ClusterConfig, NotificationSinkConfig, PlumberConfig, ReleaseConfig, RepoAuthConfig, RepoConfig, SyncWindow } from "./types.js";

/** Config files larger than this are refused. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Passed to yaml's toJS: alias expansion beyond this fails (alias bombs). */
export const MAX_ALIAS_COUNT = 100;

/** Reads, validates and normalizes the config file. Throws FileProblemError listing every problem. */
export async function loadConfig(path: string): Promise<PlumberConfig> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw Object.assign(new Error("not a file"), { code: "ENOTFILE" });
    size = st.size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "ENOTFILE" ? "not a regular file" : code ?? String(err);
    throw new Error(`cannot read config file ${path}: ${why}`, { cause: err });
  }
  if (size > MAX_CONFIG_BYTES) throw tooLarge(path, size);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  return parseConfig(text, path);
}

function tooLarge(file: string, size: number): FileProblemError {
  return new FileProblemError([
    { file, line: 1, column: 1, message: `config file is ${size} bytes; the limit is ${MAX_CONFIG_BYTES} (1 MiB)` },
  ]);
}

/**
 * Parses and validates config text. Pure but for reading the schema: relative paths are resolved
 * against the directory of `file`, but no file named by the config is looked at.
 */
export function parseConfig(text: string, file: string): PlumberConfig {
  const size = Buffer.byteLength(text, "utf8");
  if (size > MAX_CONFIG_BYTES) throw tooLarge(file, size);

  // Editors do not count a byte order mark as a column; neither do we.
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems = new Problems(file, doc, lineCounter);

  // 1. YAML syntax (and warnings such as unknown tags: a config file has no use for them).
  for (const e of [...doc.errors, ...doc.warnings]) {
    problems.addAt(e.pos[0], undefined, e.message);
  }
  if (problems.list.length > 0) throw problems.error();

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    let aliasAt: number | undefined;
    visit(doc, {
      Alias(_key, node) {
        aliasAt = node.range?.[0];
        return visit.BREAK;
      },
    });
    const msg =
      err instanceof ReferenceError
        ? `YAML aliases expand to too much data (more than ${MAX_ALIAS_COUNT} alias expansions); refusing a possible alias bomb`
        : `cannot read YAML: ${err instanceof Error ? err.message : String(err)}`;
    problems.addAt(aliasAt ?? 0, undefined, msg);
    throw problems.error();
  }
  if (raw === null || raw === undefined) {
    problems.addAt(0, undefined, "config file is empty");
    throw problems.error();
  }

  // 2. The schema, which also fills in defaults. The gates look at the data as written.
  const asWritten = structuredClone(raw);
  const data = raw;
  const validate = configValidator();
  const schema = configSchema();
  if (!validate(data)) {
    for (const err of validate.errors ?? []) problems.addSchemaError(err);
  }

  // 3. Feature gates.
  const gate = isPlainObject(data) && isPlainObject(data.featureGates) ? data.featureGates.apiFields : undefined;
  if (isApiFieldsGate(gate)) {
    for (const f of findGatedFields(schema, asWritten, gate)) problems.add(f.path, "key", f.message);
  }

  // 4. What the schema does not say.
  checkDurations(schema, asWritten, problems);
  if (isPlainObject(data)) checkSemantics(data, problems);

  if (problems.list.length > 0) throw problems.error();
  const config = normalize(data as RawConfig, file);
  rememberFileFields(config, problems);
  return config;
}

/** Where each file-valued repo field is written, so a failed read later names file:line:col of it. */
function rememberFileFields(config: PlumberConfig, problems: Problems): void {
  config.repos.forEach((r, i) => {
    const fields: [PathSegment[], string | undefined][] = [
      [["auth", "tokenFile"], r.auth?.tokenFile],
      [["auth", "usernameFile"], r.auth?.usernameFile],
      [["auth", "passwordFile"], r.auth?.passwordFile],
      [["caFile"], r.caFile],
      [["verify", "keysFile"], r.verify?.keysFile],
    ];
    for (const [sub, abs] of fields) {
      if (abs === undefined) continue;
      const path: PathSegment[] = ["repos", i, ...sub];
      const { line, col } = problems.lineCounter.linePos(locate(problems.doc, path, "value"));
      rememberConfigField(abs, { file: problems.file, line, column: col, field: formatPath(path) });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Problems and positions

type Where = "key" | "value";

class Problems {
  readonly list: FileProblem[] = [];
  /** Paths (formatted) that the schema already complained about: later checks stay quiet there. */
  readonly schemaErrorFields = new Set<string>();

  constructor(
    readonly file: string,
    readonly doc: Document,
    readonly lineCounter: LineCounter,
  ) {}

  addAt(offset: number, field: string | undefined, message: string): void {
    const { line, col } = this.lineCounter.linePos(offset);
    this.list.push({ file: this.file, line, column: col, ...(field ? { field } : {}), message });
  }

  /** A problem at the key (the field's name) or at the value of the field at `path`. */
  add(path: PathSegment[], where: Where, message: string): void {
    this.addAt(locate(this.doc, path, where), formatPath(path) || undefined, message);
  }

  /** A problem about the field at `path` that is shown at another node, `at`. */
  addShownAt(path: PathSegment[], at: PathSegment[], where: Where, message: string): void {
    this.addAt(locate(this.doc, at, where), formatPath(path) || undefined, message);
  }

  addSchemaError(err: ErrorObject): void {
    const path = decodePointer(err.instancePath);
    const parent = (err.parentSchema ?? {}) as SchemaNode;
    const custom = parent["x-plumber-errors"]?.[err.keyword];
    const params = err.params as Record<string, unknown>;
    this.schemaErrorFields.add(formatPath(path));
    switch (err.keyword) {
      case "additionalProperties": {
        const key = String(params.additionalProperty);
        const known = Object.keys(parent.properties ?? {});
        const guess = closest(key, known);
        this.add([...path, key], "key", guess ? `unknown field (did you mean "${guess}"?)` : "unknown field");
        return;
      }
      case "required": {
        const missing = String(params.missingProperty);
        this.schemaErrorFields.add(formatPath([...path, missing]));
        this.addShownAt([...path, missing], path, "value", "required field is missing");
        return;
      }
      case "dependentRequired": {
        const missing = String(params.missingProperty);
        const property = String(params.property);
        this.addShownAt([...path, missing], [...path, property], "key", `required when ${property} is set`);
        return;
      }
      case "type": {
        const expected = String(params.type);
        const got = describeType(err.data);
        if (path.length === 0) {
          this.add(path, "value", `the config must be a YAML mapping (got ${got})`);
        } else {
          this.add(path, "value", custom ?? `must be ${typeName(expected)} (got ${got})`);
        }
        return;
      }
      case "enum": {
        const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ");
        this.add(path, "value", custom ?? `must be one of ${allowed}`);
        return;
      }
      default:
        this.add(path, "value", custom ?? err.message ?? `fails ${err.keyword}`);
    }
  }

  error(): FileProblemError {
    const seen = new Set<string>();
    const list = this.list
      .filter((p) => {
        const k = `${p.line}:${p.column}:${p.field}:${p.message}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      })
      .sort((a, b) => a.line - b.line || (a.column ?? 0) - (b.column ?? 0));
    return new FileProblemError(list);
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** JSON Schema type names in YAML words: "array" -> "a list", "object" -> "a mapping". */
function typeName(type: string): string {
  if (type === "array") return "a list";
  if (type === "object") return "a mapping";
  if (type === "null") return "null";
  return article(type);
}

function describeType(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "number") return Number.isInteger(v) ? "an integer" : "a number";
  return article(typeof v);
}

/** The closest known name, when the unknown one is plausibly a typo of it. */
function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best !== undefined && bestDist <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function decodePointer(pointer: string): PathSegment[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** ["apps", 1, "branch"] -> "apps[1].branch" */
export function formatPath(path: PathSegment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number" || /^(0|[1-9][0-9]*)$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * The source offset of the key or the value of the node at `path`; as deep as the path exists.
 * Empty values (`key:` with nothing after it) are shown at their key.
 */
function locate(doc: Document, path: PathSegment[], where: Where): number {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    for (let hops = 0; isAlias(node) && hops < 32; hops++) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = (node.items as Pair[]).find((p) => keyString(p.key) === String(seg));
      if (!pair) return offset;
      const keyAt = rangeStart(pair.key) ?? offset;
      if (last && where === "key") return keyAt;
      const value = pair.value;
      if (value === null || value === undefined || isEmptyScalar(value)) return keyAt;
      node = value;
      offset = rangeStart(value) ?? keyAt;
    } else if (isSeq(node)) {
      const item: unknown = node.items[Number(seg)];
      if (item === undefined || item === null) return offset;
      node = item;
      offset = rangeStart(item) ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}

function keyString(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  return String(key);
}

function isEmptyScalar(node: unknown): boolean {
  return isScalar(node) && node.value === null && !!node.range && node.range[0] === node.range[1];
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range?.[0];
}

// ---------------------------------------------------------------------------------------------
// Checks beyond the schema

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** x-plumber-min-duration / x-plumber-max-duration, and durations the pattern lets through. */
function checkDurations(schema: SchemaNode, data: unknown, problems: Problems): void {
  walkSchema(schema, data, (schemas, value, path) => {
    const min = schemas.find((s) => s["x-plumber-min-duration"] !== undefined)?.["x-plumber-min-duration"];
    const max = schemas.find((s) => s["x-plumber-max-duration"] !== undefined)?.["x-plumber-max-duration"];
    if ((min === undefined && max === undefined) || typeof value !== "string") return;
    if (problems.schemaErrorFields.has(formatPath(path))) return;
    let ms: number;
    try {
      ms = parseDuration(value);
    } catch (err) {
      problems.add(path, "value", (err as Error).message);
      return;
    }
    if (min !== undefined && ms < parseDuration(min)) problems.add(path, "value", `must be at least ${min}`);
    if (max !== undefined && ms > parseDuration(max)) problems.add(path, "value", `must be at most ${max}`);
  });
}

function checkSemantics(data: Record<string, unknown>, problems: Problems): void {
  const quiet = (path: PathSegment[]): boolean => problems.schemaErrorFields.has(formatPath(path));

  // Unique names, and the sets of names for references.
  const names: Record<string, Set<string> | undefined> = {};
  for (const [list, what] of [
    ["clusters", "cluster"],
    ["repos", "repo"],
    ["apps", "app"],
    ["releases", "release"],
  ] as const) {
    const items = data[list];
    if (!Array.isArray(items)) continue;
    const seen = new Map<string, number>();
    items.forEach((item: unknown, i) => {
      if (!isPlainObject(item) || typeof item.name !== "string") return;
      const first = seen.get(item.name);
      if (first !== undefined) {
        const firstLine = problems.lineCounter.linePos(locate(problems.doc, [list, first, "name"], "value")).line;
        problems.add([list, i, "name"], "value", `duplicate ${what} name "${item.name}" (first used at line ${firstLine})`);
      } else {
        seen.set(item.name, i);
      }
    });
    names[list] = new Set(seen.keys());
  }

  const repos = Array.isArray(data.repos) ? data.repos : [];
  repos.forEach((repo: unknown, i) => {
    if (!isPlainObject(repo)) return;
    if (typeof repo.url === "string" && !quiet(["repos", i, "url"])) {
      const problem = checkRepoUrl(repo.url, repo.auth !== undefined);
      if (problem) problems.add(["repos", i, "url"], "value", problem);
    }
  });

  const apps = Array.isArray(data.apps) ? data.apps : [];
  apps.forEach((app: unknown, i) => {
    if (!isPlainObject(app)) return;
    if (typeof app.path === "string" && !quiet(["apps", i, "path"])) {
      const r = normalizeAppPath(app.path);
      if ("error" in r) problems.add(["apps", i, "path"], "value", r.error);
    }
    // Exactly one of branch, branchPattern or promote; repo is required unless promote names the source.
    const follows = (["branch", "branchPattern", "promote"] as const).filter((k) => app[k] !== undefined);
    if (follows.length === 0) problems.addShownAt(["apps", i, "branch"], ["apps", i], "value", "required field is missing");
    if (app.branch !== undefined && app.branchPattern !== undefined && app.promote === undefined) problems.add(["apps", i, "branchPattern"], "key", "set exactly one of branch or branchPattern");
    if (app.promote !== undefined && follows.length > 1) problems.add(["apps", i, "promote"], "key", `set exactly one of branch, branchPattern or promote (${follows.join(" and ")} are set)`);
    if (app.repo === undefined && app.promote === undefined) problems.addShownAt(["apps", i, "repo"], ["apps", i], "value", "required field is missing");
    if (typeof app.targetNamespace === "string" && Array.isArray(app.allowedNamespaces) && !app.allowedNamespaces.includes(app.targetNamespace) && !quiet(["apps", i, "targetNamespace"])) {
      problems.add(["apps", i, "targetNamespace"], "value", `"${app.targetNamespace}" is not in allowedNamespaces`);
    }
    for (const [field, list] of [
      ["repo", "repos"],
      ["cluster", "clusters"],
    ] as const) {
      const ref = app[field];
      const known = names[list];
      if (typeof ref !== "string" || known === undefined || quiet(["apps", i, field])) continue;
      if (!known.has(ref)) {
        const choices = [...known].map((n) => `"${n}"`).join(", ");
        problems.add(["apps", i, field], "value", `no ${field} named "${ref}"${choices ? ` (known: ${choices})` : ""}`);
      }
    }
  });

  checkPromote(apps, problems, quiet, names.apps);
  checkDependsOn(apps, problems, quiet, names.apps);
  const checkWindows = (list: unknown, at: PathSegment[]): void => {
    if (!Array.isArray(list)) return;
    list.forEach((w: unknown, j) => {
      if (!isPlainObject(w) || typeof w.schedule !== "string" || quiet([...at, j, "schedule"]) || quiet([...at, j, "timezone"])) return;
      const bad = checkWindowSchedule(w.schedule, typeof w.timezone === "string" ? w.timezone : "UTC");
      if (bad) problems.add([...at, j, "schedule"], "value", bad);
    });
  };
  checkWindows(data.windows, ["windows"]);
  apps.forEach((app: unknown, i) => {
    if (isPlainObject(app)) checkWindows(app.windows, ["apps", i, "windows"]);
  });

  checkReleases(data, { add: (path, where, message) => problems.add(path, where, message), quiet, names });
}

/** The source app a promoted app names, when it names one (the schema checks its type). */
function promoteFrom(app: Record<string, unknown>): string | undefined {
  return isPlainObject(app.promote) && typeof app.promote.from === "string" ? app.promote.from : undefined;
}

/**
 * promote.from names another known app; a promoted app's repo, when set, is its source's (the
 * revision promoted is a commit of that repo). Cycles are checked with dependsOn, in one graph.
 */
function checkPromote(apps: unknown[], problems: Problems, quiet: (p: PathSegment[]) => boolean, known: Set<string> | undefined): void {
  const byName = new Map<string, Record<string, unknown>>();
  for (const app of apps) if (isPlainObject(app) && typeof app.name === "string" && !byName.has(app.name)) byName.set(app.name, app);
  apps.forEach((app, i) => {
    if (!isPlainObject(app)) return;
    const from = promoteFrom(app);
    if (from === undefined || quiet(["apps", i, "promote", "from"])) return;
    if (known && !known.has(from)) {
      const choices = [...known].filter((n) => n !== app.name).map((n) => `"${n}"`).join(", ");
      problems.add(["apps", i, "promote", "from"], "value", `no app named "${from}"${choices ? ` (known: ${choices})` : ""}`);
      return;
    }
    if (typeof app.repo !== "string" || quiet(["apps", i, "repo"])) return;
    const source = sourceRepo(app, byName);
    if (source !== undefined && source.repo !== app.repo) {
      problems.add(["apps", i, "repo"], "value", `must be the repo of app "${source.app}" ("${source.repo}"), which this app is promoted from: a promoted revision is a commit of that repo (or leave repo out)`);
    }
  });
}

/** The repo a promotion chain starts from: the first app up the chain that names one (undefined in a cycle). */
function sourceRepo(app: Record<string, unknown>, byName: Map<string, Record<string, unknown>>): { app: string; repo: string } | undefined {
  const seen = new Set<unknown>([app]);
  let at = byName.get(promoteFrom(app) ?? "");
  while (at && !seen.has(at)) {
    seen.add(at);
    if (typeof at.repo === "string") return { app: String(at.name), repo: at.repo };
    at = byName.get(promoteFrom(at) ?? "");
  }
  return undefined;
}

/** dependsOn names known apps, never the app itself, and makes no cycle (named in full), promote.from counted. */
function checkDependsOn(apps: unknown[], problems: Problems, quiet: (p: PathSegment[]) => boolean, known: Set<string> | undefined): void {
  const graph = new Map<string, string[]>();
  const index = new Map<string, number>();
  apps.forEach((app, i) => {
    if (!isPlainObject(app) || typeof app.name !== "string") return;
    const deps = Array.isArray(app.dependsOn) && !quiet(["apps", i, "dependsOn"]) ? app.dependsOn.filter((d): d is string => typeof d === "string") : [];
    deps.forEach((d, j) => {
      if (known && !known.has(d)) problems.add(["apps", i, "dependsOn", j], "value", `no app named "${d}"`);
    });
    const from = quiet(["apps", i, "promote", "from"]) ? undefined : promoteFrom(app);
    if (deps.length === 0 && from === undefined) return;
    // The promote edge goes last, so a cycle through both is reported at dependsOn first.
    graph.set(app.name, from !== undefined ? [...deps, from] : deps);
    index.set(app.name, i);
  });
  const cycle = findCycle(graph);
  if (!cycle) return;
  const first = cycle[0] as string;
  const i = index.get(first) as number;
  const firstApp = apps[i] as Record<string, unknown>;
  const edges = cycle.slice(0, -1).map((n, k) => {
    const app = apps[index.get(n) as number] as Record<string, unknown>;
    const deps = Array.isArray(app.dependsOn) ? app.dependsOn : [];
    return deps.includes(cycle[k + 1]) ? "dependsOn" : "promote";
  });
  const j = Array.isArray(firstApp.dependsOn) ? firstApp.dependsOn.indexOf(cycle[1]) : -1;
  const at: PathSegment[] = edges[0] === "dependsOn" && j >= 0 ? ["apps", i, "dependsOn", j] : ["apps", i, "promote", "from"];
  const what = edges.every((e) => e === "dependsOn") ? "dependency cycle" : edges.every((e) => e === "promote") ? "promotion cycle" : "cycle through dependsOn and promote.from";
  problems.add(at, "value", `${what}: ${cycle.join(" → ")}`);
}

function isLoopbackHost(hostname: string): boolean {
  // WHATWG URL parsing normalizes IPv4 (127.1 -> 127.0.0.1) and IPv6 ([0:0::1] -> [::1]).
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * Why a repo URL is refused, or undefined when it is fine. The message never repeats the URL,
 * which could hold credentials.
 */
export function checkRepoUrl(url: string, hasAuth: boolean): string | undefined {
  const problem = repoUrlProblem(url);
  if (problem) return problem;
  const u = new URL(url);
  if (u.protocol === "http:" && hasAuth && !isLoopbackHost(u.hostname)) {
    return "plain http:// would send the credentials of auth unencrypted; use https:// (http:// with auth is allowed only for loopback hosts)";
  }
  return undefined;
}

/** Normalizes an app path relative to the repo root ("" and "." are the root, returned as "."). */
export function normalizeAppPath(p: string): { path: string } | { error: string } {
  if (p.includes("\0")) return { error: "must not contain NUL characters" };
  if (p.includes("\\")) return { error: "must use / as the separator" };
  if (nodePath.posix.isAbsolute(p) || /^[A-Za-z]:/.test(p)) {
    return { error: "must be relative to the repository root, not absolute" };
  }
  let n = nodePath.posix.normalize(p === "" ? "." : p);
  if (n.length > 1 && n.endsWith("/")) n = n.slice(0, -1);
  if (n === ".." || n.startsWith("../")) return { error: "must stay inside the repository (it escapes it with '..')" };
  return { path: n };
}

// ---------------------------------------------------------------------------------------------
// Normalization (the data has passed every check; defaults are filled in)

interface RawCheck {
  name: string;
  job?: { file?: string; manifest?: Record<string, unknown> };
  pipelineRun?: { file?: string; manifest?: Record<string, unknown> };
  timeout: string;
}

function normalizeCheck(c: RawCheck): CheckConfig {
  const src = c.job ?? c.pipelineRun ?? {};
  const out: CheckConfig = { name: c.name, kind: c.job ? "job" : "pipelineRun", timeoutMs: parseDuration(c.timeout) };
  if (src.file !== undefined) out.file = nodePath.posix.normalize(src.file).replace(/^\.\//, "");
  if (src.manifest !== undefined) out.manifest = src.manifest;
  return out;
}

interface RawConfig {
  clusters: { name: string; kubeconfig?: string; context?: string; expect?: { kubeSystemUID: string } }[];
  repos: {
    name: string;
    url: string;
    interval: string;
    timeout: string;
    concurrency: number;
    auth?: RepoAuthConfig;
    caFile?: string;
    verify?: { mode: "head"; keysFile: string };
  }[];
  apps: {
    name: string;
    repo?: string;
    branch?: string;
    promote?: { from: string; soak: string };
    branchPattern?: string;
    branchPolicy: "highestSemver";
    path: string;
    cluster: string;
    namespace: string;
    dependsOn?: string[];
    windows?: RawWindow[];
    targetNamespace?: string;
    allowedNamespaces?: string[];
    allowClusterScoped: boolean;
    prune: boolean;
    allowEmpty: boolean;
    applyConcurrency: number;
    checks?: { pre?: RawCheck[]; post?: RawCheck[]; keep?: number };
    health?: { timeout?: string };
    rollback: "auto" | "off";
    approval: "none" | "manual";
  }[];
  notifications: { name: string; type: "slack" | "webhook"; urlFile: string; secretFile?: string; on: string[] }[];
  releases: RawRelease[];
  state: { namespace: string };
  featureGates: { apiFields: PlumberConfig["featureGates"]["apiFields"] };
  kustomize: { binary: string; allowRemoteBases: boolean; timeout: string };
  dashboard: { listen?: string; public: boolean };
  windows: RawWindow[];
}

/** A release whose deployedTo app deploys another repo than the release reads: the revision is that repo's. */
function withRevisionRepo(rel: ReleaseConfig, apps: AppConfig[]): ReleaseConfig {
  if (rel.revision.kind !== "deployedTo") return rel;
  const name = rel.revision.app;
  const repo = apps.find((a) => a.name === name)?.repo;
  return repo && repo !== rel.repo ? { ...rel, revision: { ...rel.revision, repo } } : rel;
}

/** The app a promotion chain starts from (the app itself when it follows a branch): its repo and branch are the chain's. */
function promotionRoot(a: RawConfig["apps"][number], byName: Map<string, RawConfig["apps"][number]>): RawConfig["apps"][number] {
  let at = a;
  for (let hops = 0; at.promote !== undefined && hops <= byName.size; hops++) {
    const next = byName.get(at.promote.from);
    if (!next) break;
    at = next;
  }
  return at;
}

interface RawWindow {
  kind: "allow" | "deny";
  schedule: string;
  duration: string;
  timezone: string;
  allowDriftRepair: boolean;
}

function normalizeWindow(w: RawWindow): SyncWindow {
  return { kind: w.kind, schedule: w.schedule, durationMs: parseDuration(w.duration), timezone: w.timezone, allowDriftRepair: w.allowDriftRepair };
}

function normalize(raw: RawConfig, file: string): PlumberConfig {
  const absFile = nodePath.resolve(file);
  const dir = nodePath.dirname(absFile);
  const abs = (p: string): string => nodePath.resolve(dir, p);

  const clusters = raw.clusters.map((c): ClusterConfig => {
    const out: ClusterConfig = { name: c.name };
    if (c.kubeconfig !== undefined) out.kubeconfig = abs(c.kubeconfig);
    if (c.context !== undefined) out.context = c.context;
    if (c.expect !== undefined) out.expect = { kubeSystemUID: c.expect.kubeSystemUID };
    return out;
  });
  const repos = raw.repos.map((r): RepoConfig => {
    const out: RepoConfig = {
      name: r.name,
      url: r.url,
      intervalMs: parseDuration(r.interval),
      timeoutMs: parseDuration(r.timeout),
      concurrency: r.concurrency,
    };
    if (r.auth !== undefined) {
      const auth: RepoAuthConfig = {};
      if (r.auth.tokenFile !== undefined) auth.tokenFile = abs(r.auth.tokenFile);
      if (r.auth.usernameFile !== undefined) auth.usernameFile = abs(r.auth.usernameFile);
      if (r.auth.passwordFile !== undefined) auth.passwordFile = abs(r.auth.passwordFile);
      out.auth = auth;
    }
    if (r.caFile !== undefined) out.caFile = abs(r.caFile);
    if (r.verify !== undefined) out.verify = { mode: r.verify.mode, keysFile: abs(r.verify.keysFile) };
    return out;
  });
  const rawApps = new Map(raw.apps.map((a) => [a.name, a]));
  const apps = raw.apps.map((a): AppConfig => {
    const p = normalizeAppPath(a.path);
    if ("error" in p) throw new Error(`internal: unchecked app path (${p.error})`);
    const root = promotionRoot(a, rawApps);
    return {
      name: a.name,
      repo: a.repo ?? root.repo ?? "",
      branch: root.branch ?? root.branchPattern ?? "",
      ...(a.branchPattern !== undefined ? { branchPattern: a.branchPattern, branchPolicy: a.branchPolicy } : {}),
      ...(a.promote !== undefined ? { promote: { from: a.promote.from, soakMs: parseDuration(a.promote.soak) } } : {}),
      path: p.path,
      cluster: a.cluster,
      namespace: a.namespace,
      dependsOn: a.dependsOn ?? [],
      windows: [...raw.windows, ...(a.windows ?? [])].map(normalizeWindow),
      ...(a.targetNamespace !== undefined ? { targetNamespace: a.targetNamespace } : {}),
      ...(a.allowedNamespaces !== undefined ? { allowedNamespaces: a.allowedNamespaces } : {}),
      allowClusterScoped: a.allowClusterScoped,
      prune: a.prune,
      allowEmpty: a.allowEmpty,
      applyConcurrency: a.applyConcurrency,
      checks: { pre: (a.checks?.pre ?? []).map(normalizeCheck), post: (a.checks?.post ?? []).map(normalizeCheck), keep: a.checks?.keep ?? 3 },
      healthTimeoutMs: parseDuration(a.health?.timeout ?? "5m"),
      rollback: a.rollback,
      approval: a.approval,
    };
  });
  return {
    file: absFile,
    clusters,
    repos,
    apps,
    state: { namespace: raw.state.namespace },
    notifications: raw.notifications.map((n): NotificationSinkConfig => {
      const out: NotificationSinkConfig = { name: n.name, type: n.type, urlFile: abs(n.urlFile), on: n.on };
      if (n.secretFile !== undefined) out.secretFile = abs(n.secretFile);
      return out;
    }),
    releases: raw.releases.map((r) => withRevisionRepo(normalizeRelease(r), apps)),
    featureGates: { apiFields: raw.featureGates.apiFields },
    kustomize: {
      binary: raw.kustomize.binary.includes("/") ? abs(raw.kustomize.binary) : raw.kustomize.binary,
      allowRemoteBases: raw.kustomize.allowRemoteBases,
      timeoutMs: parseDuration(raw.kustomize.timeout),
    },
    dashboard: { ...(raw.dashboard.listen !== undefined ? { listen: raw.dashboard.listen } : {}), public: raw.dashboard.public },
  };
}
