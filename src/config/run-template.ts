// The grammar of a release's run template, as the config may write it (inline templates and
// params are checked when the config is loaded; template files in the repo when a run is made,
// src/releases/template.ts, with the same checks).
//
// Placeholder syntax — `$(plumber.NAME)`, chosen so it never collides with Tekton's own
// `$(params.x)`, `$(context.x)`, `$(tasks.x)` or `$(workspaces.x)`, which pass through untouched:
//
//   $(plumber.revision)          full commit id of the chosen revision
//   $(plumber.shortRevision)     its first 10 characters
//   $(plumber.date)              the slot's date in the release's time zone, YYYYMMDD
//   $(plumber.date:FORMAT)       the same in FORMAT: YYYY MM DD HH mm ss, anything else literal
//   $(plumber.scheduledTime)     the slot, RFC 3339 in UTC (2026-11-21T02:00:00Z)
//   $(plumber.versionTag)        v$(plumber.date)-$(plumber.shortRevision), e.g. v20261121-1a2b3c4d5e
//   $(plumber.release)           the release name
//   $(plumber.runName)           the name plumber gives the run
//   $(plumber.trigger)           scheduled | manual
//   $(plumber.params.NAME)       the value of params.NAME from the config (which may itself use
//                                the placeholders above, but not other params)
//
// `$$(plumber.` stands for a literal `$(plumber.`.

export const PLACEHOLDER = /\$?\$\(plumber\.([^)]*)\)/g;
const BUILTINS = new Set(["revision", "shortRevision", "date", "scheduledTime", "versionTag", "release", "runName", "trigger"]);

/** Names used by `text` that are not placeholders plumber knows; empty when all are fine. */
export function checkPlaceholders(text: string, params: readonly string[], inParam = false): string[] {
  const bad: string[] = [];
  for (const m of text.matchAll(PLACEHOLDER)) {
    if (m[0].startsWith("$$")) continue;
    const name = m[1] ?? "";
    const problem = placeholderProblem(name, params, inParam);
    if (problem) bad.push(problem);
  }
  return bad;
}

export function placeholderProblem(name: string, params: readonly string[], inParam: boolean): string | undefined {
  if (name.startsWith("params.")) {
    if (inParam) return `$(plumber.${name}): params cannot refer to other params`;
    const p = name.slice("params.".length);
    return params.includes(p) ? undefined : `$(plumber.${name}): no param named "${p}"${params.length ? ` (known: ${params.join(", ")})` : ""}`;
  }
  if (name.startsWith("date:")) return name.length > 5 ? undefined : "$(plumber.date:): empty date format";
  if (BUILTINS.has(name)) return undefined;
  return `unknown placeholder $(plumber.${name}) (known: ${[...BUILTINS].map((b) => `$(plumber.${b})`).join(", ")}, $(plumber.date:FORMAT), $(plumber.params.NAME))`;
}

/** The kinds a release can create, with how to cancel each and read its outcome (src/releases/runs.ts). */
export const RUN_KINDS: readonly { apiVersions: readonly string[]; kind: "PipelineRun" | "TaskRun" | "Job" }[] = [
  { apiVersions: ["tekton.dev/v1", "tekton.dev/v1beta1"], kind: "PipelineRun" },
  { apiVersions: ["tekton.dev/v1", "tekton.dev/v1beta1"], kind: "TaskRun" },
  { apiVersions: ["batch/v1"], kind: "Job" },
];

/** Why a template object is not a usable run, or undefined. */
export function checkRunObject(obj: unknown): string | undefined {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return "the template must be a single Kubernetes object (a mapping)";
  const o = obj as Record<string, unknown>;
  if (typeof o.apiVersion !== "string" || typeof o.kind !== "string") return "the template needs apiVersion and kind";
  const k = RUN_KINDS.find((r) => r.kind === o.kind);
  if (!k || !k.apiVersions.includes(o.apiVersion)) {
    return `the template is ${o.apiVersion} ${o.kind}; a release creates a tekton.dev/v1 (or v1beta1) PipelineRun or TaskRun, or a batch/v1 Job`;
  }
  if (o.metadata !== undefined && (o.metadata === null || typeof o.metadata !== "object" || Array.isArray(o.metadata))) {
    return "metadata must be a mapping";
  }
  return undefined;
}

/** Parses a template file (exactly one YAML or JSON document), as kubectl would. Errors name file:line. */
