// Where a verify that waits across cycles stands (state fields healthyAt and verifyChecks), and
// its deadlines: pure, so the wait's arithmetic is tested without a cluster.
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
