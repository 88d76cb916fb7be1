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
