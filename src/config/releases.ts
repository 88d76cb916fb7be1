// releases[] beyond what the schema says: cron expression and time zone, references to repos,
// clusters and apps, the template and its placeholders; and the normalized ReleaseConfig.

import nodePath from "node:path";
import { checkSchedule } from "./schedule.js";
import { checkPlaceholders, checkRunObject } from "./run-template.js";
import { parseDuration } from "./duration.js";
import type { PathSegment } from "./schema.js";
import type { ReleaseConfig } from "./types.js";

export interface ReleaseProblems {
  add(path: PathSegment[], where: "key" | "value", message: string): void;
  /** True where the schema already complained. */
  quiet(path: PathSegment[]): boolean;
  /** Known names per list ("repos", "clusters", "apps"). */
  names: Record<string, Set<string> | undefined>;
}

export interface RawRelease {
  name: string;
  schedule: string;
  timezone: string;
  repo: string;
  branch: string;
  cluster: string;
  namespace: string;
  suspend: boolean;
  template: { path?: string; inline?: Record<string, unknown> };
  params: Record<string, string>;
  revision: "head" | { deployedTo: string; olderThan: string };
  concurrency: ReleaseConfig["concurrency"];
  skipIfUnchanged: boolean;
  catchUp?: string;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** A template path: relative to the repo root, inside it, a file. */
export function normalizeTemplatePath(p: string): { path: string } | { error: string } {
  if (p.includes("\0") || p.includes("\\")) return { error: "must use / as the separator and contain no NUL" };
  if (nodePath.posix.isAbsolute(p)) return { error: "must be relative to the repository root, not absolute" };
  const n = nodePath.posix.normalize(p);
  if (n === "." || n.endsWith("/")) return { error: "must name a file" };
  if (n === ".." || n.startsWith("../")) return { error: "must stay inside the repository (it escapes it with '..')" };
  return { path: n };
}

function strings(value: unknown, path: PathSegment[], out: { path: PathSegment[]; text: string }[]): void {
  if (typeof value === "string") out.push({ path, text: value });
  else if (Array.isArray(value)) value.forEach((v, i) => strings(v, [...path, i], out));
  else if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) strings(v, [...path, k], out);
}

export function checkReleases(data: Record<string, unknown>, problems: ReleaseProblems): void {
  const releases = Array.isArray(data.releases) ? data.releases : [];
  const apps = Array.isArray(data.apps) ? data.apps.filter(isPlainObject) : [];
  releases.forEach((rel: unknown, i) => {
    if (!isPlainObject(rel)) return;
    const at = (...p: PathSegment[]): PathSegment[] => ["releases", i, ...p];

    if (typeof rel.schedule === "string" && !problems.quiet(at("schedule")) && !problems.quiet(at("timezone"))) {
      const tz = typeof rel.timezone === "string" ? rel.timezone : "UTC";
      const bad = checkSchedule(rel.schedule, tz);
      if (bad) problems.add(at(bad.field === "timezone" && rel.timezone !== undefined ? "timezone" : "schedule"), "value", bad.message);
    }

    for (const [field, list] of [
      ["repo", "repos"],
      ["cluster", "clusters"],
    ] as const) {
      const ref = rel[field];
      const known = problems.names[list];
      if (typeof ref !== "string" || known === undefined || problems.quiet(at(field))) continue;
      if (!known.has(ref)) {
        const choices = [...known].map((n) => `"${n}"`).join(", ");
        problems.add(at(field), "value", `no ${field} named "${ref}"${choices ? ` (known: ${choices})` : ""}`);
      }
    }

    const rev = rel.revision;
    if (isPlainObject(rev) && typeof rev.deployedTo === "string" && !problems.quiet(at("revision", "deployedTo"))) {
      const app = followed(apps, rev.deployedTo);
      if (!app) {
        const choices = apps.map((a) => `"${String(a.name)}"`).join(", ");
        problems.add(at("revision", "deployedTo"), "value", `no app named "${rev.deployedTo}"${choices ? ` (known: ${choices})` : ""}`);
      } else {
        // Another repo than the app's: the template comes from the release's repo (at its branch
        // head), the revision from the app's (TEP-0098: release configuration apart from the code).
        if (typeof rel.repo === "string" && app.repo === rel.repo && typeof rel.branch === "string" && app.branch !== rel.branch) {
          problems.add(at("revision", "deployedTo"), "value", `app ${rev.deployedTo} follows branch "${String(app.branch)}", but the release reads branch "${rel.branch}"; they must be the same`);
        }
      }
    }

    const params = isPlainObject(rel.params) ? rel.params : {};
    const paramNames = Object.keys(params);
    for (const [k, v] of Object.entries(params)) {
      if (typeof v !== "string" || problems.quiet(at("params", k))) continue;
      for (const m of checkPlaceholders(v, paramNames, true)) problems.add(at("params", k), "value", m);
    }

    const tpl = rel.template;
    if (isPlainObject(tpl)) {
      if (typeof tpl.path === "string" && !problems.quiet(at("template", "path"))) {
        const r = normalizeTemplatePath(tpl.path);
        if ("error" in r) problems.add(at("template", "path"), "value", r.error);
      }
      if (isPlainObject(tpl.inline) && !problems.quiet(at("template", "inline"))) {
        const bad = checkRunObject(tpl.inline);
        if (bad) problems.add(at("template", "inline"), "value", bad);
        const meta = tpl.inline.metadata;
        if (isPlainObject(meta) && typeof meta.namespace === "string" && typeof rel.namespace === "string" && meta.namespace !== rel.namespace) {
          problems.add(at("template", "inline", "metadata", "namespace"), "value", `runs are created in the release's namespace "${rel.namespace}"; leave metadata.namespace out or make it equal`);
        }
        const found: { path: PathSegment[]; text: string }[] = [];
        strings(tpl.inline, at("template", "inline"), found);
        for (const s of found) for (const m of checkPlaceholders(s.text, paramNames)) problems.add(s.path, "value", m);
      }
    }
  });
}

export function normalizeRelease(r: RawRelease): ReleaseConfig {
  let template: ReleaseConfig["template"];
  if (r.template.inline !== undefined) template = { inline: r.template.inline };
  else {
    const p = normalizeTemplatePath(r.template.path ?? "");
    if ("error" in p) throw new Error(`internal: unchecked template path (${p.error})`);
    template = { path: p.path };
  }
  const out: ReleaseConfig = {
    name: r.name,
    schedule: r.schedule,
    timezone: r.timezone,
    repo: r.repo,
    branch: r.branch,
    cluster: r.cluster,
    namespace: r.namespace,
    suspend: r.suspend,
    template,
    params: { ...r.params },
    revision: r.revision === "head" ? { kind: "head" } : { kind: "deployedTo", app: r.revision.deployedTo, olderThanMs: parseDuration(r.revision.olderThan) },
    concurrency: r.concurrency,
    skipIfUnchanged: r.skipIfUnchanged,
  };
  if (r.catchUp !== undefined) out.catchUpMs = parseDuration(r.catchUp);
  return out;
}

/**
 * The app `name` as far as its repo and branch go: a promoted app (apps[].promote) deploys commits
 * of its chain's first app, from that app's branch, unless it names the repo itself.
 */
function followed(apps: Record<string, unknown>[], name: string): Record<string, unknown> | undefined {
  const app = apps.find((a) => a.name === name);
  if (!app) return undefined;
  let at = app;
  for (let hops = 0; hops <= apps.length; hops++) {
    const from = isPlainObject(at.promote) ? at.promote.from : undefined;
    const next = typeof from === "string" ? apps.find((a) => a.name === from) : undefined;
    if (!next) break;
    at = next;
  }
  return { ...app, repo: app.repo ?? at.repo, branch: at.branch ?? at.branchPattern };
}
