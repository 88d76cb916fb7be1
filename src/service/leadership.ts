// Loops that run only while this replica leads, beside work that runs on every replica (sharded
// app pollers): the leader term comes from LeaderElector.run and each loop is started in it and
// stopped with it, as many times as this replica becomes leader.
import { asLeaderWork } from "./shard.js";

interface LoopLike {
  name: string;
  run(signal: AbortSignal): Promise<void>;
}

export class Leadership {
  private term?: AbortSignal;
  private waiters: Array<() => void> = [];

  /** The `lead` of LeaderElector.run: holds the term until it ends. */
  async hold(term: AbortSignal): Promise<void> {
    this.term = term;
    this.wake();
    await new Promise<void>((r) => (term.aborted ? r() : term.addEventListener("abort", () => r(), { once: true })));
    this.term = undefined;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The current leader term, once there is one; undefined when `signal` aborts first. */
  private async next(signal: AbortSignal): Promise<AbortSignal | undefined> {
    while (!signal.aborted) {
      if (this.term && !this.term.aborted) return this.term;
      await new Promise<void>((r) => {
        this.waiters.push(r);
        signal.addEventListener("abort", () => r(), { once: true });
      });
    }
    return undefined;
  }

  /** `loop`, run in each leader term (its writes need the leader Lease: asLeaderWork). */
  only(loop: LoopLike): LoopLike {
    return {
      name: loop.name,
      run: async (signal) => {
        for (;;) {
          const term = await this.next(signal);
          if (!term) return;
          const both = AbortSignal.any([signal, term]);
          await asLeaderWork(() => loop.run(both));
          // A loop that returned on its own is not restarted within the same term.
          if (!both.aborted) await new Promise<void>((r) => both.addEventListener("abort", () => r(), { once: true }));
        }
      },
    };
  }
}
