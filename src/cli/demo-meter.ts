// What each step of the demo cost, from plumber's own counters: the API requests of its client per
// cluster (RequestStats: writes and dry-runs apart) and its ref listings (RepoConnection.requests),
// plus what the git server saw (fetches run by the git CLI included). Only plumber's work is
// measured — the demo's own requests, playing Tekton or a user, go through clients of their own.
import type { RequestStats } from "../kube/client.js";

export interface MeterSources {
  clusters: { name: string; stats: RequestStats }[];
  /** Ref listings plumber sent itself. */
  listings: () => number;
  /** Every request the git server answered. */
  gitServer: () => number;
}

interface Counts {
  api: Map<string, { total: number; writes: number; dryRuns: number }>;
  listings: number;
  git: number;
}

export interface StepCost {
  rounds: number;
  api: Map<string, { total: number; writes: number; dryRuns: number }>;
  listings: number;
  git: number;
}

export class Meter {
  private cost: StepCost = emptyCost();

  constructor(private readonly src: MeterSources) {}

  private read(): Counts {
    const api = new Map(this.src.clusters.map((c) => [c.name, { total: c.stats.total, writes: c.stats.writes, dryRuns: c.stats.dryRuns }]));
    return { api, listings: this.src.listings(), git: this.src.gitServer() };
  }

  /** Runs one round of plumber's work and adds what it cost to the current step. */
  async measure<T>(work: () => Promise<T>): Promise<T> {
    const before = this.read();
    try {
      return await work();
    } finally {
      const after = this.read();
      this.cost.rounds++;
      for (const [name, a] of after.api) {
        const b = before.api.get(name) ?? { total: 0, writes: 0, dryRuns: 0 };
        const c = this.cost.api.get(name) ?? { total: 0, writes: 0, dryRuns: 0 };
        this.cost.api.set(name, { total: c.total + a.total - b.total, writes: c.writes + a.writes - b.writes, dryRuns: c.dryRuns + a.dryRuns - b.dryRuns });
      }
      this.cost.listings += after.listings - before.listings;
      this.cost.git += after.git - before.git;
    }
  }

  /** The step's cost so far, and a fresh count for the next step. */
  take(): StepCost {
    const c = this.cost;
    this.cost = emptyCost();
    return c;
  }
}

function emptyCost(): StepCost {
  return { rounds: 0, api: new Map(), listings: 0, git: 0 };
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** "cost: 3 rounds · nightly 21 API requests (0 writes, 0 dry-runs) · prod … · git 3 requests (3 ref listings)" */
export function formatCost(c: StepCost): string {
  const api = [...c.api].map(([name, a]) => `${name} ${plural(a.total, "API request")} (${plural(a.writes, "write")}, ${plural(a.dryRuns, "dry-run")})`);
  return ["cost: " + plural(c.rounds, "round"), ...api, `git ${plural(c.git, "request")} (${plural(c.listings, "ref listing")} by plumber)`].join(" · ");
}

/** Writes and dry-runs over every cluster: what steady state must keep at zero. */
export function writesOf(c: StepCost): { writes: number; dryRuns: number } {
  let writes = 0;
  let dryRuns = 0;
  for (const a of c.api.values()) {
    writes += a.writes;
    dryRuns += a.dryRuns;
  }
  return { writes, dryRuns };
}
