// The dashboard's view models: what each page shows, computed from what was read (an AppState per
// app, its drift and objects' health, commit metadata, release states). Pure: no I/O, the time is
// passed in, so ordering, filters and wording are unit-tested (test/unit/dashboard-model.test.ts).
import type { AppConfig, ReleaseConfig } from "../config/types.js";
import type { HealthStatus } from "../health/rules.js";
import { laggedRevision } from "../releases/revision.js";
import { formatInZone } from "../releases/slots.js";
import type { ReleaseRecord, ReleaseState } from "../state/release.js";
import type { AppState, DeployRecord } from "../state/store.js";
import type { CommitInfo } from "./commit.js";

/** The fleet's states, problems first: the order rows are listed in and the filter's choices. */
export const FLEET_PHASES = ["Halted", "Failed", "WaitingApproval", "Verifying", "Unknown", "Ready"] as const;
export type FleetPhase = (typeof FLEET_PHASES)[number];

/** One object of an app as last seen live. */
export interface ObjectView {
  key: string;
  health: HealthStatus | "Missing";
  reason: string;
  message: string;
}

/** What was read of one app this round (src/dashboard/collect.ts). */
export interface AppReading {
  config: AppConfig;
  state?: AppState;
  /** Undefined: no inventory, or not looked at; `unknown`: hashes made with another key. */
  drift?: { drifted: string[]; missing: string[]; contested: Record<string, string[]> } | "unknown";
  objects?: ObjectView[];
  /** The cluster could not be read. */
  error?: string;
}

export interface FleetRow {
  app: string;
  cluster: string;
  /** The branch followed (the one a branchPattern picked), the pattern while none is, or "promoted from APP". */
  source: string;
  revision?: string;
  short: string;
  commit?: CommitInfo;
  /** "3h" since the commit. */
  commitAge?: string;
  phase: FleetPhase;
  health: "Healthy" | "Progressing" | "Degraded" | "Missing" | "-";
  drift: string;
  pending?: string;
  lastResult: string;
  updatedAt?: string;
  updatedAgo?: string;
  /** The status message in one line (why it waits, what failed and where): summaryOf. */
  message: string;
}

export function fleetPhaseOf(r: AppReading): FleetPhase {
  const s = r.state;
  if (r.error || !s) return "Unknown";
  if (s.phase === "Halted") return "Halted";
  if (s.lastResult === "Failed" && s.phase !== "Verifying") return "Failed";
  if (s.phase === "WaitingApproval") return "WaitingApproval";
  if (s.phase === "Verifying") return "Verifying";
  if (s.phase === "Ready") return "Ready";
  return "Unknown";
}

/** "45s", "12m", "5h", "3d" from `from` to `now`; "" for an unreadable time. */
export function ago(from: string | undefined, now: Date): string {
  const t = from ? Date.parse(from) : NaN;
  if (!Number.isFinite(t)) return "";
  const s = Math.max(0, Math.round((now.getTime() - t) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function healthOfObjects(objects: ObjectView[] | undefined): FleetRow["health"] {
  if (!objects || objects.length === 0) return "-";
  if (objects.some((o) => o.health === "Failed")) return "Degraded";
  if (objects.some((o) => o.health === "Missing")) return "Missing";
  if (objects.some((o) => o.health === "InProgress")) return "Progressing";
  return "Healthy";
}

function driftText(r: AppReading): string {
  if (r.drift === undefined) return "-";
  if (r.drift === "unknown") return "unknown";
  const { drifted, missing } = r.drift;
  if (drifted.length + missing.length === 0) return "none";
  return [drifted.length ? `${drifted.length} drifted` : "", missing.length ? `${missing.length} missing` : ""].filter(Boolean).join(", ");
}

/** A promoted app (#13, `apps[].promote`) follows another app, not a branch: said as its source. */
function sourceOf(r: AppReading): string {
  const promote = (r.config as AppConfig & { promote?: { from: string } }).promote;
  if (promote) return `promoted from ${promote.from}`;
  return r.state?.branch ?? r.config.branchPattern ?? r.config.branch;
}

export function fleetRow(r: AppReading, commits: ReadonlyMap<string, CommitInfo>, now: Date): FleetRow {
  const s = r.state;
  const commit = s?.revision ? commits.get(s.revision) : undefined;
  return {
    app: r.config.name,
    cluster: r.config.cluster,
    source: sourceOf(r),
    ...(s?.revision ? { revision: s.revision } : {}),
    short: s?.revision?.slice(0, 12) ?? "-",
    ...(commit ? { commit, commitAge: ago(commit.committedAt, now) } : {}),
    phase: fleetPhaseOf(r),
    health: healthOfObjects(r.objects),
    drift: driftText(r),
    ...(s?.pendingRevision ? { pending: s.pendingRevision.slice(0, 12) } : {}),
    lastResult: s?.lastResult ?? "-",
    ...(s?.updatedAt ? { updatedAt: s.updatedAt, updatedAgo: ago(s.updatedAt, now) } : {}),
    message: summaryOf(r.error ?? s?.message ?? ""),
  };
}

const SUMMARY_CHARS = 200;

/**
 * A status message in one line for the fleet: its first line, and when that only announces what
 * follows ("1 object(s) failed:"), the first line it announces (which object, file:line, why).
 */
export function summaryOf(message: string): string {
  const lines = message
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  let out = lines[0] ?? "";
  if (out.endsWith(":") && lines[1]) out = `${out} ${lines[1]}`;
  return out.length > SUMMARY_CHARS ? `${out.slice(0, SUMMARY_CHARS - 1)}…` : out;
}

export interface FleetFilter {
  cluster?: string;
  phase?: FleetPhase;
}

/** Rows problems first (FLEET_PHASES order), then by app and cluster; then the filter. */
export function fleetRows(readings: AppReading[], commits: ReadonlyMap<string, CommitInfo>, now: Date, filter: FleetFilter = {}): FleetRow[] {
  const rank = (p: FleetPhase): number => FLEET_PHASES.indexOf(p);
  return readings
    .map((r) => fleetRow(r, commits, now))
    .filter((row) => (!filter.cluster || row.cluster === filter.cluster) && (!filter.phase || row.phase === filter.phase))
    .sort((a, b) => rank(a.phase) - rank(b.phase) || a.app.localeCompare(b.app) || a.cluster.localeCompare(b.cluster));
}

/** A filter from query parameters: unknown values are ignored, not errors (a stale bookmark still shows the fleet). */
export function parseFilter(q: URLSearchParams, clusters: readonly string[]): FleetFilter {
  const cluster = q.get("cluster") ?? "";
  const state = q.get("state") ?? "";
  return {
    ...(clusters.includes(cluster) ? { cluster } : {}),
    ...((FLEET_PHASES as readonly string[]).includes(state) ? { phase: state as FleetPhase } : {}),
  };
}

export interface HistoryItem {
  revision: string;
  short: string;
  result: DeployRecord["result"];
  startedAt: string;
  finishedAt: string;
  /** "2 created, 1 configured". */
  changes: string;
  checks: { name: string; phase: string; passed: boolean; object: string; reason: string }[];
  cause?: string;
  message?: string;
  by?: string;
}

export function historyItems(history: readonly DeployRecord[]): HistoryItem[] {
  return history.map((h) => ({
    revision: h.revision,
    short: h.revision.slice(0, 12),
    result: h.result,
    startedAt: h.startedAt,
    finishedAt: h.finishedAt,
    changes: Object.entries(h.changes ?? {})
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${n} ${k}`)
      .join(", "),
    checks: (h.checks ?? []).map((c) => ({ name: c.name, phase: c.phase, passed: c.passed, object: c.object, reason: c.reason })),
    ...(h.cause ? { cause: h.cause } : {}),
    ...(h.message ? { message: h.message } : {}),
    ...(h.by ? { by: h.by } : {}),
  }));
}

/** What the app page's buttons may offer, from its state (the server checks again on POST). */
export interface AppActions {
  approve?: string;
  /** The revision a rollback without one goes to (the CLI's default). */
  rollback?: string;
  resume: boolean;
  retry: boolean;
}

export function appActions(s: AppState | undefined, pinned: boolean): AppActions {
  const rollback = s?.history.find((h) => h.result !== "Failed" && h.revision !== s.revision)?.revision;
  return {
    ...(s?.phase === "WaitingApproval" ? { approve: s.pendingRevision } : {}),
    ...(rollback ? { rollback } : {}),
    resume: pinned,
    retry: Boolean(s && (s.phase === "Halted" || s.lastResult === "Failed" || s.failedRevision)),
  };
}

export interface ReleaseRunView {
  slot: string;
  trigger: string;
  result: string;
  run: string;
  /** The version tag: the revision the run was made from. */
  revision: string;
  finishedAt: string;
  message: string;
  by?: string;
}

export interface ReleaseView {
  name: string;
  schedule: string;
  timezone: string;
  suspend: boolean;
  target: string;
  next: { local: string; utc: string }[];
  /** What the next run would take: a revision (and, lagged, from where), or why none. */
  nextRevision: { revision: string; from: string } | { none: string };
  runs: ReleaseRunView[];
}

function runView(h: ReleaseRecord): ReleaseRunView {
  return {
    slot: h.slot,
    trigger: h.trigger,
    result: h.result + (h.count && h.count > 1 ? ` ×${h.count}` : ""),
    run: h.run ?? "",
    revision: h.revision?.slice(0, 12) ?? "",
    finishedAt: h.finishedAt ?? "",
    message: (h.reason && h.reason !== h.result ? `${h.reason}: ` : "") + (h.message?.split("\n")[0] ?? ""),
    ...(h.by ? { by: h.by } : {}),
  };
}

export interface ReleaseReading {
  config: ReleaseConfig;
  state?: ReleaseState;
  upcoming: Date[];
  /** The head of the release's branch now (revision: head). */
  head?: string;
  /** The lagged app's deploy history (revision: deployedTo). */
  laggedHistory?: DeployRecord[];
  error?: string;
}

/** The revision the next slot would take, as src/releases/revision.ts chooses it. */
export function nextRevisionOf(r: ReleaseReading): ReleaseView["nextRevision"] {
  const rev = r.config.revision;
  if (r.error) return { none: r.error };
  if (rev.kind === "head") return r.head ? { revision: r.head, from: `head of ${r.config.repo}/${r.config.branch}` } : { none: `branch ${r.config.branch} not found` };
  const slot = r.upcoming[0];
  if (!slot) return { none: "no upcoming slot" };
  const rec = laggedRevision(r.laggedHistory ?? [], new Date(slot.getTime() - rev.olderThanMs));
  return rec ? { revision: rec.revision, from: `deployed to ${rev.app} at ${rec.finishedAt}` } : { none: `${rev.app} has no revision deployed long enough before ${slot.toISOString()}` };
}

export function releaseView(r: ReleaseReading, shownRuns = 10): ReleaseView {
  const c = r.config;
  return {
    name: c.name,
    schedule: c.schedule,
    timezone: c.timezone,
    suspend: c.suspend,
    target: `${c.cluster}/${c.namespace}`,
    next: c.suspend ? [] : r.upcoming.map((d) => ({ local: formatInZone(d, c.timezone), utc: d.toISOString().replace(/\.000Z$/, "Z") })),
    nextRevision: nextRevisionOf(r),
    runs: (r.state?.history ?? []).slice(0, shownRuns).map(runView),
  };
}

export type EventKind = "deploy" | "failure" | "rollback" | "approval" | "release";

export interface EventView {
  at: string;
  kind: EventKind;
  /** The app or release. */
  subject: string;
  cluster: string;
  revision: string;
  text: string;
}

/** Recent deploy, rollback, approval and release events across the fleet, newest first, from the records plumber keeps. */
export function fleetEvents(apps: AppReading[], releases: ReleaseReading[], limit = 100): EventView[] {
  const out: EventView[] = [];
  for (const a of apps) {
    const s = a.state;
    if (!s) continue;
    for (const h of s.history) {
      const kind: EventKind = h.result === "RolledBack" ? "rollback" : h.result === "Failed" ? "failure" : "deploy";
      const text =
        h.result === "RolledBack" ? `rolled back to ${h.revision.slice(0, 12)}: ${h.cause ?? ""}` : h.result === "Failed" ? `failed: ${(h.message ?? "").split("\n")[0]}` : `deployed ${h.revision.slice(0, 12)}`;
      out.push({ at: h.finishedAt, kind, subject: a.config.name, cluster: a.config.cluster, revision: h.revision.slice(0, 12), text: text + (h.by ? ` (by ${h.by})` : "") });
    }
    if (s.phase === "WaitingApproval") {
      out.push({ at: s.updatedAt ?? "", kind: "approval", subject: a.config.name, cluster: a.config.cluster, revision: s.pendingRevision.slice(0, 12), text: `waits for approval of ${s.pendingRevision.slice(0, 12)}` });
    }
  }
  for (const r of releases) {
    for (const h of r.state?.history ?? []) {
      out.push({
        at: h.finishedAt ?? h.firedAt ?? h.slot,
        kind: "release",
        subject: r.config.name,
        cluster: r.config.cluster,
        revision: h.revision?.slice(0, 12) ?? "",
        text: `${h.trigger} run ${h.run ?? ""} ${h.result}${h.by ? ` (by ${h.by})` : ""}`.replace(/\s+/g, " "),
      });
    }
  }
  return out.sort((a, b) => (Date.parse(b.at) || 0) - (Date.parse(a.at) || 0)).slice(0, limit);
}
