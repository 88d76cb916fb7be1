import type { Logger } from "../log.js";
import { resolveBranch } from "../branches/resolve.js";
import { sleep } from "../util/pool.js";
import type { AppReconciler, CycleResult } from "./app.js";
import type { RepoConnection } from "./runtime.js";

export interface PollResult {
  repo: string;
  /** The ref listing failed: nothing was fetched and no app moved. */
  error?: string;
  apps: { app: string; result: CycleResult }[];
}

const MAX_BACKOFF_FACTOR = 10;
const MAX_BACKOFF_MS = 10 * 60_000;

/**
 * One repo's loop: a single ref listing per interval, however many apps and branches use the
 * repo; apps whose branch did not move only check for drift.
 */
export class RepoPoller {
  private failures = 0;

  constructor(
    private readonly conn: RepoConnection,
    private readonly apps: AppReconciler[],
    private readonly log: Logger,
  ) {}

  async cycle(signal?: AbortSignal): Promise<PollResult> {
    const repo = this.conn.config.name;
    let heads: Map<string, string>;
    try {
      heads = await this.conn.repo.listHeads();
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      this.failures++;
      this.log.warn({ repo, err: error, failures: this.failures }, "listing refs failed; clusters keep their current revision");
      return { repo, error, apps: [] };
    }
    const results: PollResult["apps"] = [];
    let failed = false;
    for (const app of this.apps) {
      let result: CycleResult;
      // A branch pattern picks its branch from this same listing.
      const followed = resolveBranch(app.app, heads);
      try {
        result = await app.reconcile(followed.head, signal, followed.branch);
      } catch (e) {
        if (signal?.aborted) break;
        // Reaching the cluster failed (state load, drift LIST): transient by nature.
        const message = e instanceof Error ? e.message : String(e);
        this.log.error({ app: app.app.name, err: message }, "reconcile failed");
        result = { kind: "failed", revision: followed.head ?? "", message, permanent: false };
      }
      if (result.kind === "failed" && !result.permanent) failed = true;
      results.push({ app: app.app.name, result });
    }
    this.failures = failed ? this.failures + 1 : 0;
    return { repo, apps: results };
  }

  /** The wait before the next cycle: the interval with ±10% jitter, backing off after failures. */
  nextDelay(random: () => number = Math.random): number {
    const interval = this.conn.config.intervalMs;
    const factor = Math.min(2 ** this.failures, MAX_BACKOFF_FACTOR);
    const base = this.failures > 0 ? Math.min(interval * factor, Math.max(MAX_BACKOFF_MS, interval)) : interval;
    return Math.round(base * (0.9 + 0.2 * random()));
  }

  async run(signal: AbortSignal): Promise<void> {
    // Spread repos out at start so they do not all poll at once.
    await sleep(Math.round(Math.random() * Math.min(this.conn.config.intervalMs, 5000) * 0.2), signal);
    while (!signal.aborted) {
      await this.cycle(signal);
      await sleep(this.nextDelay(), signal);
    }
  }
}
