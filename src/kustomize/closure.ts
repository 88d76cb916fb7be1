// The closure of a kustomization: every file `kustomize build` reads for it, found by reading the
// kustomization files themselves (one directory listing and one blob at a time), so what else the
// repository holds — symlinked kodata, binaries, a 5 MiB SVG, 20,000 vendored files — never
// matters and is never read. Mirrors kustomize v5's loader: files must be in or below the root of
// the kustomization naming them (LoadRestrictionsRootOnly); bases and components are directories
// with a kustomization file, anywhere in the repository but not at or above a root that leads to
// them (kustomize's cycle rule). Anything that would make kustomize reach the network is refused.
import { posix } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document } from "yaml";
import { GitSourceError, type TreeEntryInfo } from "../git/repo.js";
import type { FileProblem } from "../types.js";
import { FileProblemError } from "../types.js";
import { fileSourcePath, isRemoteEntry, isRemoteFileSource } from "./remote.js";

/** The kustomization file names kustomize itself looks for, in its order. */
export const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"] as const;

/** What the closure is read through: one directory level, one blob (GitRepo implements both). */
export interface TreeSource {
  listDir(sha: string, dir: string): Promise<TreeEntryInfo[]>;
  readFileBytes(sha: string, path: string, maxBytes: number): Promise<Buffer>;
}

export interface ClosureLimits {
  /** Largest single file, bytes. */
  maxFileBytes: number;
  /** Sum of the closure, bytes. */
  maxTotalBytes: number;
  /** Files in the closure. */
  maxFiles: number;
}

export const DEFAULT_CLOSURE_LIMITS: ClosureLimits = { maxFileBytes: 1024 * 1024, maxTotalBytes: 64 * 1024 * 1024, maxFiles: 20_000 };

export interface ClosureOptions {
  limits?: ClosureLimits;
  /** Leave remote entries of resources/bases/components to kustomize (config kustomize.allowRemoteBases). */
  allowRemoteBases?: boolean;
}

export interface Closure {
  /** Repo-root-relative path → bytes: exactly what is materialised for kustomize. */
  files: Map<string, Buffer>;
  /** Every kustomization file reached, in visiting order. */
  kustomizations: string[];
  /** Sum of files' sizes. */
  bytes: number;
}

/** Where a value sits, for messages: `file:line: field: …`. */
interface Ref {
  file: string;
  line: number;
  field: string;
}

type Key = string | number;

/** A parsed YAML document (or an inline string holding one) and how to name places in it. */
interface Located {
  value: unknown;
  ref(path: Key[]): Ref;
}

type Stat =
  | { type: "tree" | "blob" | "symlink" | "submodule" }
  | { type: "missing" }
  | { type: "blocked"; at: string; what: string };

const REFUSE_SYMLINK = "plumber refuses symlinks in what kustomize reads";

/**
 * Computes the closure of the kustomization in `dir` (repo-root-relative, "" or "." for the root)
 * of commit `sha`. Every problem found (remote references, symlinks, escapes, missing or over-size
 * files, bases without a kustomization file…) is collected and thrown at once as a
 * FileProblemError naming the kustomization file and line of the entry responsible.
 */
export async function computeClosure(src: TreeSource, sha: string, dir: string, options: ClosureOptions = {}): Promise<Closure> {
  const w = new Walker(src, sha, options.limits ?? DEFAULT_CLOSURE_LIMITS, options.allowRemoteBases ?? false);
  const root = dir === "." ? "" : dir.replace(/\/+$/, "");
  await w.kustomizationDir(root, undefined, []);
  if (w.problems.length) throw new FileProblemError(w.problems);
  return { files: w.files, kustomizations: w.kustomizations, bytes: w.total };
}

class Walker {
  readonly problems: FileProblem[] = [];
  readonly files = new Map<string, Buffer>();
  readonly kustomizations: string[] = [];
  total = 0;
  private readonly visited = new Set<string>();
  private readonly stats = new Map<string, Promise<Stat>>();
  private readonly listings = new Map<string, Promise<Map<string, TreeEntryInfo>>>();

  constructor(
    private readonly src: TreeSource,
    private readonly sha: string,
    private readonly limits: ClosureLimits,
    private readonly allowRemoteBases: boolean,
  ) {}

  problem(ref: Ref, message: string): void {
    this.problems.push({ file: ref.file, line: ref.line, field: ref.field, message });
  }

  // ---- the tree ----

  private list(dir: string): Promise<Map<string, TreeEntryInfo>> {
    let p = this.listings.get(dir);
    if (!p) {
      p = this.src.listDir(this.sha, dir).then((es) => new Map(es.map((e) => [e.name, e])));
      this.listings.set(dir, p);
    }
    return p;
  }

  /** What `path` is in the commit; a non-directory on the way makes it "blocked" there. */
  stat(path: string): Promise<Stat> {
    let p = this.stats.get(path);
    if (!p) {
      p = this.statUncached(path);
      this.stats.set(path, p);
    }
    return p;
  }

  private async statUncached(path: string): Promise<Stat> {
    if (path === "") return { type: "tree" };
    const parent = posix.dirname(path) === "." ? "" : posix.dirname(path);
    const ps = await this.stat(parent);
    if (ps.type === "missing" || ps.type === "blocked") return ps;
    if (ps.type !== "tree") return { type: "blocked", at: parent, what: ps.type === "blob" ? "a file" : `a ${ps.type}` };
    const e = (await this.list(parent)).get(posix.basename(path));
    return e ? { type: e.type } : { type: "missing" };
  }

  /** Adds a blob to the closure (at most once), within the limits. */
  private async addFile(path: string, ref: Ref): Promise<Buffer | undefined> {
    const have = this.files.get(path);
    if (have) return have;
    if (this.files.size + 1 > this.limits.maxFiles) {
      this.problem(ref, `"${path}": the kustomization reads more than ${this.limits.maxFiles} files`);
      return undefined;
    }
    let bytes: Buffer;
    try {
      bytes = await this.src.readFileBytes(this.sha, path, this.limits.maxFileBytes);
    } catch (err) {
      if (err instanceof GitSourceError && err.code === "limit") {
        this.problem(ref, `"${path}" is over the limit of ${this.limits.maxFileBytes} bytes per file kustomize reads`);
        return undefined;
      }
      if (err instanceof GitSourceError && err.code === "unsupported-entry") {
        this.problem(ref, `"${path}" is a symlink or submodule; ${REFUSE_SYMLINK}`);
        return undefined;
      }
      throw err;
    }
    this.total += bytes.byteLength;
    if (this.total > this.limits.maxTotalBytes) {
      this.problem(ref, `"${path}": the files the kustomization reads total more than ${this.limits.maxTotalBytes} bytes`);
      return undefined;
    }
    this.files.set(path, bytes);
    return bytes;
  }

  /** The repo path an entry names, relative to `dir`; undefined (and a problem) if it cannot be one. */
  private resolve(dir: string, entry: string, ref: Ref): string | undefined {
    if (entry.trim() === "") {
      this.problem(ref, "empty path");
      return undefined;
    }
    if (posix.isAbsolute(entry) || /^[a-zA-Z]:[\\/]/.test(entry)) {
      this.problem(ref, `"${entry}" is an absolute path; paths in a kustomization are relative to its directory`);
      return undefined;
    }
    if (entry.includes("\0") || entry.includes("\\")) {
      this.problem(ref, `"${entry}" contains NUL or a backslash`);
      return undefined;
    }
    const p = posix.normalize(posix.join(dir === "" ? "." : dir, entry)).replace(/\/+$/, "");
    if (p === ".." || p.startsWith("../")) {
      this.problem(ref, `"${entry}" is outside the repository`);
      return undefined;
    }
    return p === "." ? "" : p;
  }

  /** A problem for anything but a plain file or directory at `path`, else its type. */
  private async statEntry(path: string, entry: string, ref: Ref): Promise<"blob" | "tree" | undefined> {
    const st = await this.stat(path);
    switch (st.type) {
      case "blob":
      case "tree":
        return st.type;
      case "missing":
        this.problem(ref, `"${entry}" does not exist in the commit (looked for ${path === "" ? "the repository root" : `"${path}"`})`);
        return undefined;
      case "blocked":
        this.problem(ref, `"${entry}": "${st.at}" is ${st.what}, not a directory${st.what === "a symlink" ? `; ${REFUSE_SYMLINK}` : ""}`);
        return undefined;
      case "symlink":
        this.problem(ref, `"${entry}" is a symlink; ${REFUSE_SYMLINK}`);
        return undefined;
      case "submodule":
        this.problem(ref, `"${entry}" is a git submodule, which plumber does not read`);
        return undefined;
    }
  }

  // ---- entries ----

  /** A file a kustomization reads (patch, generator source, CRD, openapi schema…): under its root. */
  async file(root: string, entry: unknown, ref: Ref): Promise<Buffer | undefined> {
    if (typeof entry !== "string") {
      this.problem(ref, "must be a string (a path)");
      return undefined;
    }
    if (isRemoteEntry(entry)) {
      this.problem(ref, `remote file "${entry}" is refused (plumber runs kustomize offline)`);
      return undefined;
    }
    const p = this.resolve(root, entry, ref);
    if (p === undefined) return undefined;
    if (!within(p, root)) {
      this.problem(ref, `"${entry}" is outside the kustomization's directory ${show(root)}: kustomize's load restrictor (LoadRestrictionsRootOnly) only reads files in or below it`);
      return undefined;
    }
    const t = await this.statEntry(p, entry, ref);
    if (t === "tree") {
      this.problem(ref, `"${entry}" is a directory, not a file`);
      return undefined;
    }
    return t === "blob" ? this.addFile(p, ref) : undefined;
  }

  /**
   * A resources/bases entry (or a generators/transformers/validators path): a file under the root,
   * or a directory holding a kustomization anywhere in the repository. kind "plugin": a file holds
   * plugin configurations, and a directory's output does (kustomize loads a generators entry like a
   * resources entry, then configures plugins from what it produced); the paths those configurations
   * name are read relative to `pluginRoot`, the root of the kustomization listing the plugin.
   */
  async resource(root: string, entry: unknown, ref: Ref, chain: string[], kind: "base" | "component" | "plugin", pluginRoot?: string): Promise<void> {
    if (kind === "plugin") pluginRoot = root;
    if (typeof entry !== "string") {
      this.problem(ref, "must be a string (a path)");
      return;
    }
    if (isRemoteEntry(entry)) {
      if (this.allowRemoteBases && kind !== "plugin") return; // kustomize fetches it: allowed by config
      this.problem(ref, `remote base "${entry}" is refused (plumber renders offline; set kustomize.allowRemoteBases: true to allow remote bases)`);
      return;
    }
    const p = this.resolve(root, entry, ref);
    if (p === undefined) return;
    const t = await this.statEntry(p, entry, ref);
    if (t === "blob") {
      if (kind === "component") {
        this.problem(ref, `"${entry}" is a file; a component is a directory holding a kustomization of kind Component`);
        return;
      }
      if (!within(p, root)) {
        this.problem(ref, `"${entry}" is a file outside the kustomization's directory ${show(root)}: kustomize's load restrictor (LoadRestrictionsRootOnly) only reads files in or below it (a directory with a kustomization may be anywhere)`);
        return;
      }
      const bytes = await this.addFile(p, ref);
      if (bytes && pluginRoot !== undefined) {
        const text = this.decode(bytes, ref, p);
        if (text !== undefined) for (const doc of this.parse(text, p)) await this.pluginConfig(pluginRoot, doc);
      }
      return;
    }
    if (t !== "tree") return;
    const ancestor = [...chain, root].find((r) => within(r, p));
    if (ancestor !== undefined) {
      this.problem(ref, `"${entry}" (${show(p)}) is at or above ${show(ancestor)}, which leads to it: kustomize refuses such a cycle`);
      return;
    }
    await this.kustomizationDir(p, ref, [...chain, root], pluginRoot);
  }

  /** A directory kustomize builds as a kustomization; `ref` names the entry that led here. */
  async kustomizationDir(dir: string, ref: Ref | undefined, chain: string[], pluginRoot?: string): Promise<void> {
    const key = pluginRoot === undefined ? dir : `${dir}\0plugins of ${pluginRoot}`;
    if (this.visited.has(key)) return;
    this.visited.add(key);
    const listing = await this.list(dir);
    const present = KUSTOMIZATION_FILES.filter((n) => listing.has(n));
    const here: Ref = ref ?? { file: dir === "" ? "." : dir, line: 1, field: "path" };
    if (present.length === 0) {
      this.problem(here, `directory ${show(dir)} has no kustomization file (${KUSTOMIZATION_FILES.join(", ")}); kustomize v5 builds a directory only through one`);
      return;
    }
    if (present.length > 1) {
      this.problem(here, `directory ${show(dir)} holds more than one kustomization file (${present.join(", ")}); kustomize refuses that`);
      return;
    }
    const kfile = dir === "" ? (present[0] as string) : `${dir}/${present[0]}`;
    if (listing.get(present[0] as string)?.type !== "blob") {
      this.problem(ref ?? { file: kfile, line: 1, field: "" }, `${kfile} is a ${listing.get(present[0] as string)?.type}; ${REFUSE_SYMLINK}`);
      return;
    }
    if (!this.kustomizations.includes(kfile)) this.kustomizations.push(kfile);
    const bytes = await this.addFile(kfile, here);
    if (!bytes) return;
    const text = this.decode(bytes, here, kfile);
    if (text === undefined) return;
    const [doc] = this.parse(text, kfile);
    if (doc) await this.kustomization(dir, doc, chain, pluginRoot);
  }

  // ---- YAML ----

  private decode(bytes: Buffer, ref: Ref, path: string): string | undefined {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      this.problem(ref, `${path} is not valid UTF-8 YAML`);
      return undefined;
    }
  }

  /**
   * The documents of a YAML file, each with file:line lookups. Aliases and `<<` merges resolve as
   * kustomize (go-yaml) resolves them; a path whose node cannot be found (it came from a merge)
   * is reported at its nearest ancestor that can. Within an inline string, everything is
   * reported at the line of the string (`at`).
   */
  parse(text: string, file: string, at?: Ref): Located[] {
    const lc = new LineCounter();
    const docs = parseAllDocuments(text, { lineCounter: lc, merge: true, uniqueKeys: true, prettyErrors: false });
    const out: Located[] = [];
    for (const doc of Array.isArray(docs) ? docs : [docs]) {
      const err = doc.errors[0];
      if (err) {
        this.problem(at ?? { file, line: lc.linePos(err.pos[0]).line, field: "" }, `cannot parse ${at ? "inline YAML" : "YAML"}: ${err.message.split("\n")[0]}`);
        return [];
      }
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: 1000 });
      } catch (e) {
        this.problem(at ?? { file, line: 1, field: "" }, `cannot read YAML: ${(e as Error).message}`);
        return [];
      }
      if (value === null || value === undefined) continue;
      out.push({ value, ref: at ? (path) => ({ ...at, field: at.field + fieldName(path, true) }) : (path) => ({ file, line: lineOf(doc, lc, path), field: fieldName(path) }) });
    }
    return out;
  }

  // ---- kustomization fields (api/types/kustomization.go) ----

  private async kustomization(root: string, k: Located, chain: string[], pluginRoot?: string): Promise<void> {
    if (!isRecord(k.value)) {
      this.problem(k.ref([]), "a kustomization must be a mapping");
      return;
    }
    const v = k.value;
    for (const field of ["resources", "bases"] as const) {
      for (const [i, e] of this.items(v, field, k)) await this.resource(root, e, k.ref([field, i]), chain, "base", pluginRoot);
    }
    for (const [i, e] of this.items(v, "components", k)) await this.resource(root, e, k.ref(["components", i]), chain, "component", pluginRoot);
    for (const field of ["crds", "configurations"] as const) {
      for (const [i, e] of this.items(v, field, k)) await this.file(root, e, k.ref([field, i]));
    }
    if (v.openapi !== undefined && v.openapi !== null) {
      if (!isRecord(v.openapi)) this.problem(k.ref(["openapi"]), "must be a mapping");
      else if (v.openapi.path !== undefined) await this.file(root, v.openapi.path, k.ref(["openapi", "path"]));
    }
    for (const [i, e] of this.items(v, "patchesStrategicMerge", k)) await this.patchOrPath(root, e, k.ref(["patchesStrategicMerge", i]));
    for (const field of ["patches", "patchesJson6902", "replacements"] as const) {
      for (const [i, e] of this.items(v, field, k)) {
        if (!isRecord(e)) {
          this.problem(k.ref([field, i]), "must be a mapping");
          continue;
        }
        if (e.path !== undefined) await this.file(root, e.path, k.ref([field, i, "path"]));
      }
    }
    for (const field of ["configMapGenerator", "secretGenerator"] as const) {
      for (const [i, e] of this.items(v, field, k)) await this.generatorArgs(root, e, k, [field, i]);
    }
    await this.helm(v, k);
    for (const field of ["generators", "transformers", "validators"] as const) {
      for (const [i, e] of this.items(v, field, k)) {
        const ref = k.ref([field, i]);
        if (typeof e === "string" && isInlineYaml(e)) {
          for (const doc of this.parse(e, ref.file, { ...ref, field: `${ref.field} (inline)` })) await this.pluginConfig(root, doc);
        } else {
          await this.resource(root, e, ref, chain, "plugin");
        }
      }
    }
  }

  /** The items of a list field, with a problem when it is not a list. */
  private items(v: Record<string, unknown>, field: string, k: Located): [number, unknown][] {
    const x = v[field];
    if (x === undefined || x === null) return [];
    if (!Array.isArray(x)) {
      this.problem(k.ref([field]), "must be a list");
      return [];
    }
    return x.map((e, i) => [i, e]);
  }

  /** patchesStrategicMerge / PatchStrategicMergeTransformer paths: inline YAML first, else a file (as kustomize tries them). */
  private async patchOrPath(root: string, e: unknown, ref: Ref): Promise<void> {
    if (typeof e === "string" && isInlineYaml(e)) return;
    await this.file(root, e, ref);
  }

  /** configMapGenerator / secretGenerator arguments: files (`[key=]path`), envs, env. */
  private async generatorArgs(root: string, e: unknown, k: Located, at: Key[]): Promise<void> {
    if (!isRecord(e)) {
      this.problem(k.ref(at), "must be a mapping");
      return;
    }
    for (const [i, f] of this.items(e, "files", { value: e, ref: (p) => k.ref([...at, ...p]) })) {
      const ref = k.ref([...at, "files", i]);
      if (typeof f === "string" && isRemoteFileSource(f)) this.problem(ref, `remote file "${f}" is refused (plumber runs kustomize offline)`);
      else await this.file(root, typeof f === "string" ? fileSourcePath(f) : f, ref);
    }
    for (const [i, f] of this.items(e, "envs", { value: e, ref: (p) => k.ref([...at, ...p]) })) await this.file(root, f, k.ref([...at, "envs", i]));
    if (e.env !== undefined && e.env !== null && e.env !== "") await this.file(root, e.env, k.ref([...at, "env"]));
  }

  /** Helm needs `--enable-helm` and a helm binary; plumber gives kustomize neither. */
  private async helm(v: Record<string, unknown>, k: Located): Promise<void> {
    for (const field of ["helmCharts", "helmChartInflationGenerator"] as const) {
      const items = this.items(v, field, k);
      if (!items.length) continue;
      for (const [i, c] of items) {
        if (!isRecord(c)) continue;
        for (const key of ["repo", "chartRepoUrl", "valuesFile", "values", "chartHome"]) {
          const s = c[key];
          if (typeof s === "string" && isRemoteEntry(s)) this.problem(k.ref([field, i, key]), `remote reference "${s}" is refused (plumber runs kustomize offline)`);
        }
        const extra = c.additionalValuesFiles;
        if (Array.isArray(extra)) {
          extra.forEach((s, j) => {
            if (typeof s === "string" && isRemoteEntry(s)) this.problem(k.ref([field, i, "additionalValuesFiles", j]), `remote reference "${s}" is refused (plumber runs kustomize offline)`);
          });
        }
      }
      this.problem(k.ref([field]), "helm charts are not rendered: plumber runs kustomize without helm (--enable-helm off); commit the rendered manifests instead");
    }
  }

  /**
   * A generator/transformer/validator configuration (a builtin plugin's config, kustomize's
   * api/internal/builtins): the files it names are read relative to the kustomization's root.
   */
  private async pluginConfig(root: string, doc: Located): Promise<void> {
    const c = doc.value;
    if (Array.isArray(c)) {
      // a YAML list of configs
      for (let i = 0; i < c.length; i++) await this.pluginConfig(root, { value: c[i], ref: (p) => doc.ref([i, ...p]) });
      return;
    }
    if (!isRecord(c)) return;
    switch (c.kind) {
      case "ConfigMapGenerator":
      case "SecretGenerator":
        await this.generatorArgs(root, c, doc, []);
        break;
      case "PatchTransformer":
      case "PatchJson6902Transformer":
        if (c.path !== undefined) await this.file(root, c.path, doc.ref(["path"]));
        break;
      case "PatchStrategicMergeTransformer":
        if (Array.isArray(c.paths)) for (let i = 0; i < c.paths.length; i++) await this.patchOrPath(root, c.paths[i], doc.ref(["paths", i]));
        break;
      case "ReplacementTransformer":
        if (Array.isArray(c.replacements)) {
          for (let i = 0; i < c.replacements.length; i++) {
            const r: unknown = c.replacements[i];
            if (isRecord(r) && r.path !== undefined) await this.file(root, r.path, doc.ref(["replacements", i, "path"]));
          }
        }
        break;
      case "HelmChartInflationGenerator":
        this.problem(doc.ref(["kind"]), "helm charts are not rendered: plumber runs kustomize without helm (--enable-helm off)");
        break;
      default:
        // Other builtins read no files; anything else is an external plugin or KRM function,
        // which kustomize refuses without --enable-alpha-plugins / --enable-exec (never passed).
        break;
    }
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Is `path` equal to or below `dir` (repo-relative, "" = root)? */
export function within(path: string, dir: string): boolean {
  return dir === "" || path === dir || path.startsWith(`${dir}/`);
}

function show(dir: string): string {
  return dir === "" ? "the repository root" : `"${dir}"`;
}

/** An entry kustomize would take as inline YAML (a patch or plugin config), not as a path. */
export function isInlineYaml(s: string): boolean {
  if (!s.includes(":")) return false;
  const docs = parseAllDocuments(s);
  return (Array.isArray(docs) ? docs : [docs]).some((d) => isMap(d.contents) || isSeq(d.contents));
}

/** `resources[2]`, `configMapGenerator[0].files[1]`. */
function fieldName(path: Key[], nested = false): string {
  let s = "";
  for (const k of path) s += typeof k === "number" ? `[${k}]` : s === "" && !nested ? k : `.${k}`;
  return s;
}

/** The line of the node at `path`, or of its nearest ancestor that exists as a node. */
function lineOf(doc: Document, lc: LineCounter, path: Key[]): number {
  const last = path[path.length - 1];
  if (typeof last === "string") {
    // a field: the line naming its key
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === last);
      const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
      if (range) return lc.linePos(range[0]).line;
    }
  }
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range) return lc.linePos(range[0]).line;
  }
  return 1;
}
