// The tour's working parts: plumber's runtime on the demo's config (with a clock the demo can move
// past a soak instead of sleeping through it), rounds of the repo poller as `plumber run` makes
// them (waits deferred: one look per round), what each round cost, and the demo's own hands on
// both clusters. A step that finds plumber did not do its part throws DemoFailure.
import { loadConfig } from "../config/load.js";
import type { PlumberConfig } from "../config/types.js";
import { createLogger, type Logger } from "../log.js";
import type { CycleResult } from "../reconcile/cycle.js";
import type { AppReconciler } from "../reconcile/app.js";
import type { Clock } from "../reconcile/clock.js";
import { repoPoller, type RepoPoller } from "../reconcile/poller.js";
import { buildRuntime, type Runtime } from "../reconcile/runtime.js";
import type { AppState } from "../state/store.js";
import type { CommandContext } from "./context.js";
import { DemoActor } from "./demo-actors.js";
import { DEMO } from "./demo-config.js";
import { formatCost, Meter, type StepCost } from "./demo-meter.js";
import type { DemoWorld } from "./demo-world.js";

type Out = (line: string) => void;

/** plumber did not do what the step shows: the demo stops with exit 1 and says what was expected. */
export class DemoFailure extends Error {
  override name = "DemoFailure";
}

/** The wall clock, plus whatever the demo skipped ahead (a soak it did not sit through). */
export class DemoClock implements Clock {
  private skippedMs = 0;
  now(): Date {
    return new Date(Date.now() + this.skippedMs);
  }
  skip(ms: number): void {
    this.skippedMs += ms;
  }
}

export type AppResults = Map<string, CycleResult>;

export class Tour {
  private stepNo = 0;

  private constructor(
    readonly world: DemoWorld,
    readonly out: Out,
    readonly config: PlumberConfig,
    readonly log: Logger,
    readonly clock: DemoClock,
    readonly rt: Runtime,
    readonly poller: RepoPoller,
    readonly meter: Meter,
    readonly actors: { nightly: DemoActor; prod: DemoActor },
    readonly steps: number,
  ) {}

  static async open(world: DemoWorld, out: Out, steps: number): Promise<Tour> {
    const config = await loadConfig(world.configFile);
    // The demo prints its own summary; plumber's own log (warnings: a rollback, say) is there with PLUMBER_LOG_LEVEL=warn, per object with info.
    const log = createLogger({ level: process.env.PLUMBER_LOG_LEVEL ?? "error" });
    const clock = new DemoClock();
    const rt = await buildRuntime(config, { log, cacheDir: `${world.work}/cache`, clock });
    try {
      const poller = repoPoller(rt, DEMO.repo, log);
      const repo = rt.repos.get(DEMO.repo);
      const meter = new Meter({
        clusters: [...rt.clusters].map(([name, c]) => ({ name, stats: c.client.stats })),
        listings: () => repo?.requests.total ?? 0,
        gitServer: () => world.git.requests.total,
      });
      const actors = { nightly: await DemoActor.connect(world.nightly.kubeconfigPath), prod: await DemoActor.connect(world.prod.kubeconfigPath) };
      return new Tour(world, out, config, log, clock, rt, poller, meter, actors, steps);
    } catch (e) {
      rt.close();
      throw e;
    }
  }

  /** The CLI's own context on the demo's config: status, history, approve run as the commands do. */
  cli(): CommandContext {
    return {
      config: this.config,
      log: this.log,
      runtime: (only) => buildRuntime(this.config, { log: this.log, cacheDir: `${this.world.work}/cache-cli`, clock: this.clock, only: only && only.length ? only : undefined }),
    };
  }

  app(name: string): AppReconciler {
    const a = this.rt.apps.find((x) => x.app.name === name);
    if (!a) throw new DemoFailure(`no app ${name} in the demo's config`);
    return a;
  }

  state(name: string): Promise<AppState> {
    return this.app(name).currentState();
  }

  step(title: string): void {
    this.stepNo++;
    this.out(`▸ ${this.stepNo}/${this.steps} ${title}`);
  }

  say(line: string): void {
    this.out(`  ${line}`);
  }

  /** What the demo itself does (plays Tekton or a user): said as such, never counted as plumber's. */
  demoDoes(line: string): void {
    this.out(`  [demo] ${line}`);
  }

  /** One round as `plumber run` makes it: one ref listing, every app looked at once. Prints what each app did. */
  async round(): Promise<AppResults> {
    const res = await this.meter.measure(() => this.poller.cycle(undefined, { deferWaits: true }));
    if (res.error) throw new DemoFailure(`the ref listing failed: ${res.error}`);
    const results: AppResults = new Map();
    for (const { app, result: r } of res.apps) {
      results.set(app, r);
      const rev = "revision" in r && r.revision ? ` ${r.revision.slice(0, 12)}` : "";
      const msg = "message" in r && r.message ? `: ${r.message.split("\n")[0]}` : "";
      this.say(`${app}: ${r.kind}${rev}${msg}`);
      if ("changeSet" in r && r.changeSet) {
        for (const e of r.changeSet.entries) if (e.action !== "unchanged") this.say(`  ${e.action.padEnd(10)} ${e.subject}`);
      }
    }
    return results;
  }

  /** Rounds until `app`'s round ends in `kind` (at most `max`), e.g. while a post-check is looked at once per round. */
  async roundsUntil(app: string, kind: CycleResult["kind"], max: number, what: string): Promise<AppResults> {
    let last: CycleResult | undefined;
    for (let i = 0; i < max; i++) {
      const r = await this.round();
      last = r.get(app);
      if (last?.kind === kind) return r;
    }
    const msg = last && "message" in last ? `: ${last.message.split("\n")[0]}` : "";
    throw new DemoFailure(`${what} did not happen within ${max} rounds; ${app}'s last round: ${last?.kind ?? "not reconciled"}${msg}`);
  }

  cost(): StepCost {
    const c = this.meter.take();
    this.say(formatCost(c));
    return c;
  }

  /** The step's outcome line (what the test of the demo reads), or the failure that stops the demo. */
  ok(ok: boolean, line: string, otherwise: string): void {
    if (!ok) throw new DemoFailure(otherwise);
    this.say(`✓ ${line}`);
  }

  close(): void {
    this.rt.close();
    this.actors.nightly.close();
    this.actors.prod.close();
  }
}
