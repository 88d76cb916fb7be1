import type { AppConfig } from "../config/types.js";
import { ContestTracker } from "./contested.js";
import type { DriftReport, Engine, Plan, SyncRequest } from "../engine/engine.js";
import type { InventoryEntry } from "../engine/inventory.js";
import type { DependencyStatus } from "../deps/graph.js";
import { GitSourceError, type GitRepo } from "../git/repo.js";
import type { KubeClient } from "../kube/client.js";
import type { Discovery } from "../kube/discovery.js";
import { renderApp, type KustomizeOptions } from "../kustomize/render.js";
import { ManifestCache } from "../manifests/read.js";
import type { Logger } from "../log.js";
import type { DeployOutcome, ObservedEvent, Observer } from "../observe/events.js";
import type { AppControl, ControlStore } from "../state/control.js";
import { emptyState, type AppState, type StateStore } from "../state/store.js";
import { hashKeyId } from "../state/hashkey.js";
import type { ObjectIdentity } from "../state/guard.js";
import type { PromotionTarget } from "../promote/source.js";
import type { Manifest } from "../types.js";
import { evaluateWindows } from "../windows/windows.js";
import { isoNow, systemClock, type Clock } from "./clock.js";
import { msSince, type Cycle, type CycleResult } from "./cycle.js";
import { evaluateGates, type GateContext, type GateOutcome } from "./gates.js";
import { advance } from "./phases/advance.js";
import { repairDrift, settled } from "./phases/drift.js";
import { errorMessage, reasonOf, recordFailure } from "./phases/failure.js";
import { verify } from "./phases/verify.js";
import { appSpec, type AppSpec } from "./spec.js";
import { selectTarget } from "./target.js";
import { nextStep, retried, type Step } from "./transitions.js";

export type { CycleResult } from "./cycle.js";

export interface AppReconcilerDeps {
  app: AppConfig;
  repo: GitRepo;
  /** The app's engine, hashing with this key (EngineDeps.hashKey). */
  engine: (hashKey: Uint8Array | undefined) => Engine;
  /** The installation's hash key (src/state/hashkey.ts): created when missing only if `create`. */
  hashKey?: (create: boolean) => Promise<Uint8Array | undefined>;
  /** Objects no app may deploy (plumber's state namespace and objects, src/state/guard.ts). */
  objectGuard?: (id: ObjectIdentity) => string | undefined;
  client: KubeClient;
  discovery: Discovery;
  store: StateStore;
  control: ControlStore;
  log: Logger;
  /** Refuses to go on when the cluster is not the one the config names (wrong-cluster guard). */
  guard?: () => Promise<void>;
  /** Hears a "deploy" event per transition and one "cycle" event per reconcile() (src/observe/events.ts). */
  observer?: Observer;
  /** The status of an app this one dependsOn (its state, and the revision it should be at). */
  dependency?: (name: string) => Promise<DependencyStatus>;
  /** Signed commits (repos[].verify): why a commit may not be deployed, undefined when it may. */
  verifyCommit?: (sha: string) => Promise<string | undefined>;
  /** How an app path holding a kustomization file is rendered (config `kustomize`). */
  kustomize?: Partial<KustomizeOptions>;
  /** Every timestamp written, sync windows and gate decisions read this clock (default: the system's). */
  clock?: Clock;
  /**
   * apps[].promote: the revision to follow comes from the source app's state (src/promote), not
   * from a branch head; the head a poller passes is ignored.
   */
  promotion?: () => Promise<PromotionTarget>;
}

/** Where commits older than the heads' cache holds are fetched, as release templates are (depths of branch history). */
const HISTORY_DEPTHS = [64, 1024];

/** What applying a revision would do, and what the gates say about applying it now. */
export interface PlanReport extends Plan {
  /** What a cycle would do with this revision: advance (the gates decide), verify, halted, settle (already there). */
  step: Step["step"];
  /** Every gate's verdict, in order (only for step "advance"; a cycle stops at the first that does not pass). */
  gates: GateOutcome[];
  /** A pin (plumber rollback/pin) keeps the app at this revision instead. */
  pinnedAt?: string;
}

/**
 * One app's deploy state machine. Each reconcile() is one resumable step from the state stored in
 * the target cluster: pick the target (pin, retry), decide the step (verify, halted, advance,
 * settle), run the gates for a new revision, then the phase (apply, verify, rollback, hold, drift
 * repair) whose transition is persisted before the next one starts, so a restart resumes, never
 * repeats. `plan()` runs the same gates and the same sync request with writes off.
 */
export class AppReconciler {
  readonly app: AppConfig;
  /** Per-object backoff for fields another manager contests; drained into each "cycle" event. */
  readonly contest: ContestTracker;
  private readonly spec: AppSpec;
  private readonly clock: Clock;
  private state?: AppState;
  private readonly rendered = new Map<string, Manifest[]>();
  /** Parsed manifests per file of the last render: a one-file commit parses one file. */
  private readonly parsed = new ManifestCache();
  private keyed?: { engine: Engine; keyId: string };
  /** The branch followed this cycle (a branchPattern picks one from each listing). */
  private followed?: string;
  /** The revision this app should be at, as of its last cycle (branch head or pin): for dependents. */
  lastTarget?: string;
  /** A promoted app: what its source offered at the last cycle (status shows it). */
  lastPromotion?: PromotionTarget;
  /** Commits the heads' cache no longer holds (a promoted revision older than the head), fetched with history. */
  private history?: GitRepo;
  /** The repo holding the commit last rendered: where the checks of that revision read their files. */
  private readRepo?: GitRepo;
  /** Commits found only in the history mirror (a few: promoted revisions older than the head). */
  private readonly fromHistory = new Set<string>();

  /** The revision the cluster follows, as this process last knew it (nothing read): undefined before the first cycle. */
  get appliedRevision(): string | undefined {
    return this.state?.revision;
  }

  constructor(private readonly d: AppReconcilerDeps) {
    this.app = d.app;
    this.spec = appSpec(d.app);
    this.clock = d.clock ?? systemClock;
    this.contest = new ContestTracker({ now: () => this.clock.now().getTime() });
  }

  /**
   * The engine hashing with the installation's key. A writer creates the key when it is missing;
   * a reader (plan, status) does not, and hashes unkeyed until one exists.
   */
  private async engine(write = true): Promise<{ engine: Engine; keyId: string }> {
    if (this.keyed) return this.keyed;
    const key = await this.d.hashKey?.(write);
    const e = { engine: this.d.engine(key), keyId: hashKeyId(key) };
    if (key || !this.d.hashKey) this.keyed = e;
    return e;
  }

  async currentState(): Promise<AppState> {
    this.state ??= (await this.d.store.load(this.app.name)) ?? emptyState(this.app.name);
    return this.state;
  }

  /**
   * The state as stored now, for a reader that never reconciles (the dashboard's runtime): the
   * cached state of a reconciler is its own, but a reader's goes stale as another process moves the app.
   */
  async reloadState(): Promise<AppState> {
    this.state = undefined;
    return this.currentState();
  }

  /** `deferWaits`: pre-checks, verify and a rollback's health look once and leave the app waiting (Cycle.deferWaits) instead of blocking. */
  async reconcile(head: string | undefined, signal?: AbortSignal, branch?: string, opts: { deferWaits?: boolean } = {}): Promise<CycleResult> {
    const started = performance.now();
    let result: CycleResult;
    try {
      result = await this.step(head, started, signal, branch, opts.deferWaits ?? false);
    } catch (e) {
      const aborted = signal?.aborted ?? false;
      this.observeCycle(started, aborted ? { outcome: "aborted" } : { outcome: "failed", message: errorMessage(e), ...reasonOf(e) });
      throw e;
    }
    this.observeCycle(started, cycleFields(result));
    return result;
  }

  private async step(head: string | undefined, started: number, signal: AbortSignal | undefined, branch: string | undefined, deferWaits: boolean): Promise<CycleResult> {
    this.followed = branch ?? (this.app.branchPattern ? undefined : this.app.branch);
    await this.d.guard?.();
    const state = await this.currentState();
    const promoted = await this.promotionTarget();
    if (promoted) {
      // Nothing qualifies on the source: what is deployed stays (drift still repaired).
      head = promoted.revision ?? state.revision;
      this.followed = promoted.branch ?? this.app.branch;
    }
    const control = await this.d.control.load(this.app.name);
    const target = selectTarget(head, control, state);
    if (promoted && !target.revision) return { kind: "held", revision: "", message: promoted.note };
    this.lastTarget = target.revision;
    const c = this.cycle({ writes: true, started, signal, pinned: target.pinned, deferWaits, actor: actorOf(control, target) });
    if (!target.revision) {
      const message = this.app.branchPattern
        ? `no branch matches "${this.app.branchPattern}" in repo ${this.app.repo}`
        : `branch "${this.app.branch}" not found in repo ${this.app.repo}`;
      await recordFailure(c, "", message, false);
      return { kind: "failed", revision: "", message, permanent: false };
    }
    const rev = target.revision;
    // A verify (or a rollback's health wait) that waits across cycles finishes first, as an inline
    // wait would have: a newer commit, or a `plumber retry`, is taken up by the round after the verdict.
    if (deferWaits && c.state.phase === "Verifying") return verify(c, c.state);
    if (target.retryAt !== undefined) c.state = retried(c.state, target.retryAt);
    const next = nextStep(c.state, rev, this.spec.hash);
    // Settled or halted, nothing is applied from the cache: a fleet of settled apps would hold
    // every app's parsed manifests (~0.8 KiB an object). A drift repair reads its revision again.
    if (next.step === "settle" || next.step === "halted") this.rendered.clear();
    switch (next.step) {
      case "verify":
        return verify(c, next.state);
      case "halted":
        return { kind: "held", revision: rev, message: next.state.message };
      case "settle":
        return evaluateWindows(this.app.windows, this.clock.now()).driftRepair ? repairDrift(c) : settled(c);
      case "advance":
        return advance(c, this.gateContext(c.state, control, rev, target.pinned));
    }
  }

  /** A promoted app: the source's revision to follow now (one read of its record); undefined for an app that follows a branch. */
  async promotionTarget(): Promise<PromotionTarget | undefined> {
    if (!this.d.promotion) return undefined;
    this.lastPromotion = await this.d.promotion();
    return this.lastPromotion;
  }

  private gateContext(state: AppState, control: AppControl, target: string, pinned: boolean, branch?: string): GateContext {
    const verify = this.d.verifyCommit;
    return {
      spec: this.spec,
      state,
      control,
      target,
      pinned,
      now: this.clock.now(),
      ...(this.lastPromotion?.revision === target ? { provenance: this.lastPromotion.note } : {}),
      dependency: this.d.dependency,
      verifyCommit: verify
        ? async (sha) => {
            await this.commitRepo(branch ?? this.followed ?? this.app.branch, sha);
            return verify(sha);
          }
        : undefined,
    };
  }

  /**
   * What applying `sha` would do, from the very request an apply sends (namespace policy, reserved
   * objects, the self-config check in the engine), and what the gates say about applying it now,
   * with nothing written: `plumber plan`.
   */
  async plan(sha: string, branch?: string): Promise<PlanReport> {
    const state = await this.currentState();
    const control = await this.d.control.load(this.app.name);
    const pinnedAt = control.pinRevision && control.pinRevision !== sha ? control.pinRevision : undefined;
    const pinned = control.pinRevision === sha;
    const step = nextStep(retriedIfAsked(state, control), sha, this.spec.hash).step;
    // Every gate, not only the first that blocks: the plan shows all that stands in the way.
    const gates = step === "advance" ? await evaluateGates(this.gateContext(state, control, sha, pinned, branch), { all: true }) : [];
    const objects = await this.planObjects(sha, branch);
    return { ...objects, step, gates, ...(pinnedAt ? { pinnedAt } : {}) };
  }

  /** The engine's plan of `sha` from a writes-off cycle: engine.plan, no intent record, nothing saved. */
  private async planObjects(sha: string, branch?: string): Promise<Plan> {
    const state = await this.currentState();
    const c = this.cycle({ writes: false, started: performance.now(), pinned: false, state });
    const { engine } = await c.engine(false);
    return engine.plan(c.syncRequest(await this.render(sha, branch)));
  }

  /** Drift of what is applied, for status; undefined when the stored hashes were made with another key and cannot tell. */
  async drift(): Promise<DriftReport | undefined> {
    const state = await this.currentState();
    const { engine, keyId } = await this.engine(false);
    if ((state.hashKeyId ?? "") !== keyId) return undefined;
    return engine.detectDrift(this.app.name, state.inventory);
  }

  /** Reads (or, for a kustomization, builds) the manifests at a commit; cached, since a commit never changes. */
  async render(sha: string, branch: string = this.followed ?? this.app.branch): Promise<Manifest[]> {
    const hit = this.rendered.get(sha);
    if (hit) {
      this.readRepo = this.fromHistory.has(sha) && this.history ? this.history : this.d.repo;
      return hit;
    }
    const repo = await this.commitRepo(branch, sha);
    this.readRepo = repo;
    const manifests = await renderApp(repo, sha, this.app.path, this.d.kustomize, this.parsed);
    this.rendered.set(sha, manifests);
    return manifests;
  }

  /**
   * The repo holding commit `sha`: the heads' cache, or, for a promoted revision the branch has
   * moved past (the source deployed it, the head is newer now), the history mirror beside it.
   */
  private async commitRepo(branch: string, sha: string): Promise<GitRepo> {
    try {
      await this.d.repo.ensureCommit(branch, sha);
      return this.d.repo;
    } catch (e) {
      if (!(this.app.promote && e instanceof GitSourceError && e.code === "moved")) throw e;
    }
    this.history ??= this.d.repo.historyMirror();
    await this.history.ensureHistory(branch, sha, HISTORY_DEPTHS);
    if (this.fromHistory.size >= 16) this.fromHistory.clear();
    this.fromHistory.add(sha);
    return this.history;
  }

  /**
   * The phases' view of this cycle. With writes on, the state it moves is the reconciler's own and
   * every transition is saved; with writes off (plan) it works on a copy, saves nothing, records
   * no intent and tells no one.
   */
  private cycle(o: { writes: boolean; started: number; signal?: AbortSignal; pinned: boolean; state?: AppState; deferWaits?: boolean; actor?: string }): Cycle {
    let local = o.state ?? this.state ?? emptyState(this.app.name);
    const read = (): AppState => (o.writes ? (this.state ?? local) : local);
    const write = (s: AppState): void => {
      if (o.writes) this.state = s;
      local = s;
    };
    const readRepo = (): GitRepo => this.readRepo ?? this.d.repo;
    const io = {
      get repo(): GitRepo {
        return readRepo();
      },
      client: this.d.client,
      discovery: this.d.discovery,
      stateNamespace: this.d.store.namespace,
      objectGuard: this.d.objectGuard,
      kustomize: this.d.kustomize,
    };
    const c: Cycle = {
      spec: this.spec,
      clock: this.clock,
      log: this.d.log,
      io,
      contest: this.contest,
      started: o.started,
      signal: o.signal,
      pinned: o.pinned,
      actor: o.actor,
      deferWaits: o.deferWaits ?? false,
      followed: this.followed,
      get state(): AppState {
        return read();
      },
      set state(s: AppState) {
        write(s);
      },
      save: o.writes ? () => this.d.store.save(c.state) : () => Promise.resolve(),
      emit: o.writes ? (outcome, revision, result, reason, message) => this.emit(outcome, revision, result, reason, message) : () => {},
      engine: (write = true) => this.engine(write && o.writes),
      render: (sha) => this.render(sha),
      forgetRenderedExcept: (sha) => {
        for (const k of this.rendered.keys()) if (k !== sha) this.rendered.delete(k);
      },
      syncRequest: (manifests) => this.syncRequest(manifests, c.state.inventory, o.writes ? (inv) => recordIntent(c, inv) : undefined),
      planSummary: (target) => this.planSummary(target),
    };
    return c;
  }

  /**
   * The one request of every sync and plan of this app (apply, rollback, rehash, plan): its
   * namespace policy, the objects no app may deploy, and (writes on) the intent record written
   * before the first write.
   */
  private syncRequest(manifests: Manifest[], previous: InventoryEntry[], recordIntent: SyncRequest["recordIntent"]): SyncRequest {
    return {
      owner: this.app.name,
      manifests,
      defaultNamespace: this.app.namespace,
      previous,
      prune: this.app.prune,
      allowEmpty: this.app.allowEmpty,
      namespacePolicy: this.spec.namespacePolicy,
      guard: this.d.objectGuard,
      ...(recordIntent ? { recordIntent } : {}),
    };
  }

  /** What a waiting revision would change, planned by a dry-run (nothing written), for its status. */
  private async planSummary(target: string): Promise<string> {
    try {
      const plan = await this.planObjects(target);
      const counts = { created: 0, configured: 0, unchanged: 0 };
      for (const p of plan.objects) counts[p.action]++;
      return ` (${counts.created} to create, ${counts.configured} to configure, ${plan.prune.length} to prune)`;
    } catch (e) {
      return ` (its plan fails: ${errorMessage(e).split("\n")[0]})`;
    }
  }

  private emit(outcome: DeployOutcome, revision: string, result: string, reason?: string, message?: string): void {
    const e = { app: this.app.name, cluster: this.app.cluster, revision, result, reason, message };
    this.d.observer?.observe({ type: "deploy", outcome, ...e });
  }

  /** The one "cycle" event of a reconcile(), with what drift review saw. */
  private observeCycle(started: number, f: Omit<Extract<ObservedEvent, { type: "cycle" }>, "type" | "app" | "cluster" | "durationMs" | "contest">): void {
    // Drained every cycle, heard or not, so notices never pile up for a later cycle's event.
    const contest = this.contest.drain();
    this.d.observer?.observe({ type: "cycle", app: this.app.name, cluster: this.app.cluster, ...f, durationMs: msSince(started), contest });
  }
}

/**
 * Persists previous ∪ desired before the first write, so a kill at any later point leaves no
 * object written that the next cycle does not know to prune. Only keys new to the inventory can
 * be orphaned: a sync that adds none costs no extra write.
 */
async function recordIntent(c: Cycle, inventory: InventoryEntry[]): Promise<void> {
  const known = new Set(c.state.inventory.map((e) => e.key));
  if (inventory.every((e) => known.has(e.key))) return;
  c.state = { ...c.state, inventory, updatedAt: isoNow(c.clock) };
  await c.save();
}

/** The state a cycle would step from: a pending `plumber retry` is acted on first. */
/** Who asked for the target: the pin's, the approval's (of this very revision) or the retry's author. */
function actorOf(control: AppControl, target: { revision?: string; pinned: boolean; retryAt?: string }): string | undefined {
  if (target.pinned) return control.pinnedBy;
  if (target.revision && control.approvedRevision === target.revision && control.approvedBy) return control.approvedBy;
  return target.retryAt !== undefined ? control.retryBy : undefined;
}

function retriedIfAsked(state: AppState, control: AppControl): AppState {
  const t = selectTarget(undefined, control, state);
  return t.retryAt !== undefined ? retried(state, t.retryAt) : state;
}

function cycleFields(r: CycleResult): Omit<Extract<ObservedEvent, { type: "cycle" }>, "type" | "app" | "cluster" | "durationMs" | "contest"> {
  switch (r.kind) {
    case "unchanged":
      return { outcome: "unchanged" };
    case "applied":
    case "repaired":
      return { outcome: r.kind, revision: r.revision, changes: r.changeSet.toString() };
    case "rolledBack":
      return { outcome: "rolledBack", revision: r.revision, failedRevision: r.failedRevision, message: r.message };
    case "failed":
      return { outcome: "failed", revision: r.revision, message: r.message, ...(r.errorReason ? { errorReason: r.errorReason } : {}) };
    case "held":
      return { outcome: "held", revision: r.revision, message: r.message };
    case "checking":
      return { outcome: "checking", revision: r.revision, message: r.message };
    case "verifying":
      return { outcome: "verifying", revision: r.revision, message: r.message, ...(r.changeSet ? { changes: r.changeSet.toString() } : {}) };
  }
}

export type { AppControl };
