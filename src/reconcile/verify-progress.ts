// Where a wait across cycles stands — a verify's (state fields healthyAt, verifyChecks), pre-checks'
// (preChecks) — and its deadlines: pure, so the wait's arithmetic is tested without a cluster.
import type { CheckOutcome } from "../checks/run.js";

/** The post-checks of a Verifying app: those that passed, in order, and the one running since startedAt. */
export interface CheckProgress {
  done: CheckOutcome[];
  current?: { name: string; startedAt: string };
}

/** The stored progress; a missing or unreadable one starts over (the check objects' fixed names keep a rerun from starting a second run). */
export function parseProgress(s: string | undefined): CheckProgress {
  if (!s) return { done: [] };
  try {
    const p = JSON.parse(s) as Partial<CheckProgress>;
    return { done: Array.isArray(p.done) ? p.done : [], ...(p.current?.name && p.current.startedAt ? { current: p.current } : {}) };
  } catch {
    return { done: [] };
  }
}

export function formatProgress(p: CheckProgress): string {
  return JSON.stringify(p);
}

/** When a wait that began at `startedAt` (ISO) with `timeoutMs` gives up, in ms since the epoch; an unreadable start counts as long ago. */
export function deadlineOf(startedAt: string, timeoutMs: number): number {
  const t = Date.parse(startedAt);
  return (Number.isNaN(t) ? 0 : t) + timeoutMs;
}

export function deadlinePassed(now: Date, startedAt: string, timeoutMs: number): boolean {
  return now.getTime() >= deadlineOf(startedAt, timeoutMs);
}

/** The pre-checks of a revision waiting across cycles (state field preChecks): nothing is applied until all have passed. */
export interface PreCheckProgress extends CheckProgress {
  /** The revision to apply once they pass. */
  revision: string;
  /** The revision the check objects run for, when a newer commit that renders the same took the progress over. */
  runsFor?: string;
}

/** The stored pre-check progress; undefined when there is none or it is unreadable (the check objects' fixed names find any run already there). */
export function parsePreChecks(s: string | undefined): PreCheckProgress | undefined {
  if (!s) return undefined;
  try {
    const p = JSON.parse(s) as Partial<PreCheckProgress>;
    if (typeof p.revision !== "string" || !p.revision) return undefined;
    return { revision: p.revision, ...(typeof p.runsFor === "string" && p.runsFor ? { runsFor: p.runsFor } : {}), ...parseProgress(s) };
  } catch {
    return undefined;
  }
}

/**
 * The progress the pre-checks of `revision` go on from. The stored one if it is this revision's. A
 * newer commit supersedes a pending revision (its checks start over for the new one), unless it
 * renders the same for this app (`alike`, a commit elsewhere in a monorepo): then the checks under
 * way go on, their runs those of the revision they started for, and the newer commit is what gets
 * applied, so commits elsewhere never keep an app's pre-checks from finishing.
 */
export function preCheckProgress(stored: PreCheckProgress | undefined, revision: string, alike: boolean): PreCheckProgress {
  if (stored?.revision === revision) return stored;
  if (stored && alike) return { ...stored, revision, runsFor: stored.runsFor ?? stored.revision };
  return { revision, done: [] };
}

export function formatPreChecks(p: PreCheckProgress): string {
  return JSON.stringify({ revision: p.revision, ...(p.runsFor ? { runsFor: p.runsFor } : {}), done: p.done, ...(p.current ? { current: p.current } : {}) });
}

/**
 * Where the configured checks stand against the progress, by name (a config change between two
 * looks drops checks no longer configured and adds new ones): the outcomes so far in config
 * order, and the first check without one, which is the next to look at.
 */
export function checksStanding(names: readonly string[], p: CheckProgress): { done: CheckOutcome[]; next?: string } {
  const byName = new Map(p.done.map((o) => [o.name, o]));
  const done: CheckOutcome[] = [];
  for (const name of names) {
    const o = byName.get(name);
    if (!o) return { done, next: name };
    done.push(o);
    if (!o.passed) return { done };
  }
  return { done };
}
