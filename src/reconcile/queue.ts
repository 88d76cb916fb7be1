// The daemon's work queue (RepoPoller.run): apps wait for one of a bounded pool of workers; those
// whose rendered input changed go ahead of drift looks, dependencies still before dependents.
import type { GitRepo } from "../git/repo.js";
import { pickNext, raiseDependencies, type Queued } from "./schedule.js";

export interface WorkQueueOptions<T, W> {
  concurrency: number;
  signal: AbortSignal;
  name: (t: T) => string;
  dependsOn: (t: T) => string[];
  /** Whether an app may run now (not backing off; under sharding, still this replica's): asked as it is queued and as it would start. */
  due: (t: T) => boolean;
  /** One app's turn with the newest work handed to it (its branch and head as last listed). */
  run: (t: T, work: W) => Promise<void>;
}

/** One app as a listing saw it: `moved(w)`: this listing's work differs from `w` (its branch moved). */
export interface Listed<T, W> {
  item: T;
  work: W;
  moved: (before: W) => boolean;
  /** Its input changed: it goes ahead of the rest. */
  first: boolean;
}

/**
 * Each listing queues every app that is due: one already queued keeps its place (and is raised
 * when its input changed) and takes the newest work when it starts; one running is queued again
 * as it ends when the listing moved its branch meanwhile, so a commit that lands during a long
 * turn is not left for the listing after. Workers take apps as they free up (pickNext).
 */
export class WorkQueue<T, W> {
  private readonly queue: Queued<T>[] = [];
  private readonly running = new Map<T, { work: W; done: Promise<void> }>();
  private readonly latest = new Map<T, W>();
  /** Running apps a listing moved: queued again when they end (true: ahead of the rest). */
  private readonly again = new Map<T, boolean>();

  constructor(private readonly o: WorkQueueOptions<T, W>) {}

  listed(apps: Listed<T, W>[]): void {
    for (const a of apps) {
      this.latest.set(a.item, a.work);
      if (!this.o.due(a.item)) continue;
      const running = this.running.get(a.item);
      if (running) {
        if (a.moved(running.work)) this.again.set(a.item, a.first || (this.again.get(a.item) ?? false));
        continue;
      }
      const q = this.queue.find((x) => x.item === a.item);
      if (q) q.first ||= a.first;
      else this.queue.push({ item: a.item, first: a.first });
    }
    this.pump();
  }

  /** Resolves once nothing runs (after an abort nothing new starts). */
  async drained(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map((r) => r.done));
  }

  private pump(): void {
    const { name, dependsOn } = this.o;
    // What stopped being due since it was queued (sharding: handed to another replica) does not
    // start: a turn of an app this replica gave away would hold that app's Lease here.
    for (let i = this.queue.length - 1; i >= 0; i--) if (!this.o.due((this.queue[i] as Queued<T>).item)) this.queue.splice(i, 1);
    raiseDependencies(this.queue, name, dependsOn);
    while (!this.o.signal.aborted && this.running.size < this.o.concurrency) {
      const busy = new Set([...this.queue.map((q) => name(q.item)), ...[...this.running.keys()].map(name)]);
      const i = pickNext(this.queue, this.running.size, (t) => dependsOn(t).some((d) => busy.has(d)));
      if (i < 0) return;
      const item = (this.queue.splice(i, 1)[0] as Queued<T>).item;
      this.start(item, this.latest.get(item) as W);
    }
  }

  private start(item: T, work: W): void {
    const done = (async () => {
      try {
        await this.o.run(item, work);
      } finally {
        this.running.delete(item);
        const first = this.again.get(item);
        this.again.delete(item);
        if (first !== undefined && !this.o.signal.aborted && this.o.due(item)) this.queue.push({ item, first });
        this.pump();
      }
    })();
    this.running.set(item, { work, done });
  }
}

const TREE_MEMO_ENTRIES = 4096;

type Tree = { oid: string; names: string[] } | undefined;

/** Tree ids of app paths by commit (a commit never changes), bounded; misses are read in one go. */
export class PathTrees {
  private readonly memo = new Map<string, Tree>();

  async of(repo: Pick<GitRepo, "treesOf">, sha: string, paths: string[]): Promise<Map<string, Tree>> {
    const key = (p: string) => `${sha}\0${p}`;
    const missing = [...new Set(paths.filter((p) => !this.memo.has(key(p))))];
    if (missing.length > 0) {
      for (const [p, t] of await repo.treesOf(sha, missing)) {
        // Only what was found: a commit not cached yet may be fetched later.
        if (t) this.memo.set(key(p), t);
      }
      while (this.memo.size > TREE_MEMO_ENTRIES) this.memo.delete(this.memo.keys().next().value as string);
    }
    return new Map(paths.map((p) => [p, this.memo.get(key(p))]));
  }
}
