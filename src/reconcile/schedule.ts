// How a repo's round hands its apps to the worker pool, and each app's own backoff: pure, so the
// order and the delays are tested without a cluster.

/**
 * The waves of a round: an app goes in the wave after the last of its dependencies among `items`
 * (dependencies elsewhere, or missing, do not hold it), so dependencies go before dependents while
 * independent apps share a wave. The given order is kept within a wave; a cycle is cut where it
 * closes (config validation refuses cycles anyway).
 */
export function waves<T>(items: readonly T[], name: (t: T) => string, deps: (t: T) => string[]): T[][] {
  const byName = new Map(items.map((t) => [name(t), t]));
  const level = new Map<string, number>();
  const visiting = new Set<string>();
  const levelOf = (t: T): number => {
    const n = name(t);
    const known = level.get(n);
    if (known !== undefined) return known;
    if (visiting.has(n)) return -1;
    visiting.add(n);
    let l = 0;
    for (const d of deps(t)) {
      const dt = byName.get(d);
      if (dt) l = Math.max(l, levelOf(dt) + 1);
    }
    visiting.delete(n);
    level.set(n, l);
    return l;
  };
  const out: T[][] = [];
  for (const t of items) (out[levelOf(t)] ??= []).push(t);
  return out.filter((w) => w !== undefined);
}

const MAX_BACKOFF_FACTOR = 10;
const MAX_BACKOFF_MS = 10 * 60_000;

/** The wait after `failures` failures in a row: the interval doubling, at most 10× and 10 min (never below the interval). */
export function backoffMs(intervalMs: number, failures: number): number {
  if (failures <= 0) return intervalMs;
  return Math.min(intervalMs * Math.min(2 ** failures, MAX_BACKOFF_FACTOR), Math.max(MAX_BACKOFF_MS, intervalMs));
}

/**
 * Per-app backoff within one repo: an app whose reconcile failed transiently sits out rounds
 * until its delay passes; its siblings and the repo's listing keep the interval.
 */
export class AppBackoff {
  private readonly failures = new Map<string, { count: number; until: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  /** Whether the app sits out this round. */
  waiting(app: string): boolean {
    const f = this.failures.get(app);
    return f !== undefined && this.now() < f.until;
  }

  /** The app's round ended; `transientFailure`: it failed in a way a later round may fix. */
  record(app: string, transientFailure: boolean): void {
    if (!transientFailure) {
      this.failures.delete(app);
      return;
    }
    const count = (this.failures.get(app)?.count ?? 0) + 1;
    // Rounds come every interval ±10%: half an interval short of the backoff lands between two
    // rounds, so a backoff of k intervals sits out exactly k-1 rounds.
    this.failures.set(app, { count, until: this.now() + backoffMs(this.intervalMs, count) - this.intervalMs / 2 });
  }

  /** Failures in a row of an app (0: none), for logs. */
  count(app: string): number {
    return this.failures.get(app)?.count ?? 0;
  }
}

/** An app waiting for a worker of the daemon's loop; `first`: its rendered input changed (its commit goes ahead of drift looks). */
export interface Queued<T> {
  item: T;
  first: boolean;
}

/**
 * Which queued app a free worker takes: the oldest of those whose input changed, else the oldest
 * other; never one with a dependency queued or running (dependencies before dependents). When
 * every queued app waits on another and nothing runs (a cycle, which config refuses anyway), the
 * oldest goes. -1: nothing to take now.
 */
export function pickNext<T>(queue: readonly Queued<T>[], running: number, waitsOn: (t: T) => boolean): number {
  let other = -1;
  for (let i = 0; i < queue.length; i++) {
    const q = queue[i] as Queued<T>;
    if (waitsOn(q.item)) continue;
    if (q.first) return i;
    if (other < 0) other = i;
  }
  if (other >= 0) return other;
  return queue.length > 0 && running === 0 ? 0 : -1;
}

/** Dependencies (transitively, among `byName`) of apps whose input changed go first with them, or they would hold them back. */
export function raiseDependencies<T>(queue: Queued<T>[], name: (t: T) => string, deps: (t: T) => string[]): void {
  const byName = new Map(queue.map((q) => [name(q.item), q]));
  const raise = (q: Queued<T>, seen: Set<string>): void => {
    for (const d of deps(q.item)) {
      const dq = byName.get(d);
      if (!dq || seen.has(d)) continue;
      seen.add(d);
      dq.first = true;
      raise(dq, seen);
    }
  };
  for (const q of queue) if (q.first) raise(q, new Set([name(q.item)]));
}
