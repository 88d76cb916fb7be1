// Which revision a promoted app (apps[].promote) deploys: from the source app's state alone, the
// clock and the soak, with nothing read or written. The newest revision the source deployed and
// kept healthy, post-checks passed, for at least the soak; never one that failed on the source or
// was rolled back from there.
import { formatDuration } from "../config/duration.js";
import type { AppState, DeployRecord } from "../state/store.js";

/** A newer revision of the source that was not promoted, and why. */
export interface SkippedCandidate {
  revision: string;
  why: string;
  /** Still soaking on the source: when it will have soaked. */
  soakedAt?: string;
}

export interface Selection {
  /** The revision to deploy; undefined when the source has none that qualifies yet. */
  revision?: string;
  /** The branch the source deployed it from (what a fetch of the commit asks for). */
  branch?: string;
  /** When the revision became good on the source (its Applied record's finishedAt). */
  goodAt?: string;
  /** When it had soaked (goodAt + soak). */
  soakedAt?: string;
  /** How long it ran good there, up to now (or until the next revision replaced it). */
  soakedMs?: number;
  /** Newer revisions passed over, newest first. */
  skipped: SkippedCandidate[];
  /** Without a revision: why none. */
  reason?: string;
}

/** A stretch of time a revision ran good on the source: from a good record's finishedAt until the next record started (or now). */
interface GoodPeriod {
  from: number;
  to: number;
  current: boolean;
}

const ms = (iso: string | undefined): number => (iso === undefined ? Number.NaN : Date.parse(iso));

/**
 * Revisions that failed on the source (a Failed record: pre-check, apply, health or post-check)
 * or were rolled back from there (a RolledBack record's cause names the revision it left), with why.
 */
function badRevisions(source: string, history: readonly DeployRecord[]): Map<string, string> {
  const bad = new Map<string, string>();
  // Oldest first, so the newest failure of a revision is the reason given.
  for (const rec of [...history].reverse()) {
    if (rec.result === "Failed") bad.set(rec.revision, failureReason(source, rec));
    if (rec.result === "RolledBack" && rec.cause) {
      const from = rec.cause.split(":")[0]?.trim();
      // Its Failed record (if history still has it) says more than that it was left.
      if (from && !bad.has(from)) bad.set(from, `rolled back on ${source}`);
    }
  }
  return bad;
}

function failureReason(source: string, rec: DeployRecord): string {
  const check = rec.checks?.find((c) => !c.passed);
  if (check) return `failed ${check.phase}-check ${check.name} on ${source}`;
  const first = (rec.message ?? "").split("\n")[0]?.slice(0, 200);
  return `failed on ${source}${first ? `: ${first}` : ""}`;
}

/**
 * When each good record's revision ran there. A good record is Applied (health and post-checks
 * passed) or RolledBack (a good revision restored and healthy). A period ends when the next,
 * newer record started, or, for the newest, when a newer revision was applied and is being
 * verified (no record yet); otherwise it runs until now.
 */
function goodPeriods(state: AppState, now: number): Map<string, GoodPeriod[]> {
  const out = new Map<string, GoodPeriod[]>();
  const h = state.history;
  h.forEach((rec, k) => {
    if (rec.result === "Failed") return;
    const from = ms(rec.finishedAt);
    if (!Number.isFinite(from)) return;
    let to = now;
    let current = false;
    if (k > 0) to = ms(h[k - 1]?.startedAt);
    else if (state.revision !== rec.revision) to = ms(state.verifyStartedAt ?? state.appliedAt ?? state.updatedAt);
    else current = true;
    if (!Number.isFinite(to)) to = from;
    const list = out.get(rec.revision) ?? [];
    list.push({ from, to: Math.max(from, Math.min(to, now)), current });
    out.set(rec.revision, list);
  });
  return out;
}

/**
 * The source's revisions, newest first by when they were deployed: a RolledBack record restores
 * an older revision and does not make it newer (it counts only when nothing else names it).
 */
function newestFirst(history: readonly DeployRecord[]): string[] {
  const rank = new Map<string, number>();
  history.forEach((rec, k) => {
    const r = rec.result === "RolledBack" ? k + history.length : k;
    if (r < (rank.get(rec.revision) ?? Infinity)) rank.set(rec.revision, r);
  });
  return [...rank.entries()].sort((a, b) => a[1] - b[1]).map(([rev]) => rev);
}

/** The revision a promoted app deploys, from its source's state (`undefined`: nothing stored yet). */
export function selectCandidate(source: string, state: AppState | undefined, now: Date, soakMs: number): Selection {
  if (!state) return { skipped: [], reason: `${source} has no state in its cluster yet (never deployed)` };
  const t = now.getTime();
  const bad = badRevisions(source, state.history);
  const periods = goodPeriods(state, t);
  const skipped: SkippedCandidate[] = [];
  // The revision being verified on the source right now has no record yet.
  if (state.phase === "Verifying" && !state.rollbackFrom && !state.history.some((r) => r.revision === state.revision)) {
    skipped.push({ revision: state.revision, why: `being verified on ${source} since ${state.verifyStartedAt}` });
  }
  for (const rev of newestFirst(state.history)) {
    const why = bad.get(rev);
    if (why) {
      skipped.push({ revision: rev, why });
      continue;
    }
    const list = periods.get(rev);
    if (!list?.length) continue;
    const best = list.reduce((a, b) => (b.to - b.from > a.to - a.from ? b : a));
    const soaked = best.to - best.from;
    if (soaked >= soakMs) {
      // The first good record of the longest period is when it became good.
      return {
        revision: rev,
        ...(state.branch ? { branch: state.branch } : {}),
        goodAt: new Date(best.from).toISOString(),
        soakedAt: new Date(best.from + soakMs).toISOString(),
        soakedMs: soaked,
        skipped,
      };
    }
    const current = list.find((p) => p.current);
    if (current) {
      const soakedAt = new Date(current.from + soakMs).toISOString();
      skipped.push({ revision: rev, why: `soaked ${formatDuration(current.to - current.from)} of ${formatDuration(soakMs)} on ${source} (until ${soakedAt})`, soakedAt });
    } else {
      skipped.push({ revision: rev, why: `soaked ${formatDuration(soaked)} of ${formatDuration(soakMs)} on ${source} before a newer revision replaced it` });
    }
  }
  const reason =
    state.history.length === 0
      ? `${source} has deployed nothing yet`
      : `no revision in ${source}'s last ${state.history.length} deploys has run good there for ${formatDuration(soakMs)}`;
  return { skipped, reason };
}

/** One line for status and the approval message: which revision, since when good, why newer ones were passed over. */
export function describeSelection(source: string, s: Selection, soakMs: number): string {
  const skipped = s.skipped.length ? `; skipped newer: ${s.skipped.map((k) => `${k.revision.slice(0, 12)} (${k.why})`).join(", ")}` : "";
  if (!s.revision) return `promotion from ${source}: nothing to promote yet: ${s.reason ?? ""}${skipped}`;
  const soak = soakMs > 0 ? `, soaked ${formatDuration(soakMs)} at ${s.soakedAt}` : "";
  return `promoted from ${source}: ${s.revision.slice(0, 12)} good there since ${s.goodAt}${soak}${skipped}`;
}
