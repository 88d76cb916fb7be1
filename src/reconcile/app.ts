import type { AppConfig, CheckConfig } from "../config/types.js";
import { checkObject, pruneCheckObjects, runCheck, type CheckOutcome, type CheckPhase } from "../checks/run.js";
import { ChangeSet } from "../engine/changeset.js";
import { ContestTracker } from "./contested.js";
import type { DriftReport, Engine, Plan, SyncRequest } from "../engine/engine.js";
import type { InventoryEntry } from "../engine/inventory.js";
import type { NamespacePolicy } from "../engine/resource.js";
import { dependencyBlocker, type DependencyStatus } from "../deps/graph.js";
import { evaluateWindows } from "../windows/windows.js";
import { PlanError, SyncError } from "../engine/engine.js";
import { canonicalJson, sha256Hex } from "../engine/hash.js";
import { AbortedError, describeHealth, waitHealthy } from "../engine/health.js";
import type { GitRepo } from "../git/repo.js";
import { KubeApiError, type KubeClient } from "../kube/client.js";
import type { Discovery } from "../kube/discovery.js";
import { parseManifests } from "../manifests/parse.js";
import { renderApp, type KustomizeOptions } from "../kustomize/render.js";
import type { Logger } from "../log.js";
import type { AppControl, ControlStore } from "../state/control.js";
import { recordDeploy, type AppState, type DeployRecord, type StateStore } from "../state/store.js";
import { hashKeyId } from "../state/hashkey.js";
import type { ObjectIdentity } from "../state/guard.js";
import type { Manifest } from "../types.js";
import { FileProblemError } from "../types.js";

export type CycleResult =
  | { kind: "unchanged" }
  | { kind: "applied"; revision: string; changeSet: ChangeSet }
  | { kind: "repaired"; revision: string; changeSet: ChangeSet }
  | { kind: "rolledBack"; revision: string; failedRevision: string; message: string }
  | { kind: "failed"; revision: string; message: string; permanent: boolean }
  | { kind: "held"; revision: string; message: string };

/** What the reconciler tells the outside world; notifications, events and metrics hang off it. */
export interface AppEvent {
  event: "deployed" | "failed" | "rolledBack" | "approvalNeeded" | "held" | "driftRepaired";
  app: string;
  cluster: string;
  revision: string;
  result: string;
  reason?: string;
  message?: string;
}

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
  onEvent?: (e: AppEvent) => void;
  /** The status of an app this one dependsOn (its state, and the revision it should be at). */
  dependency?: (name: string) => Promise<DependencyStatus>;
  /** Signed commits (repos[].verify): why a commit may not be deployed, undefined when it may. */
  verifyCommit?: (sha: string) => Promise<string | undefined>;
  /** How an app path holding a kustomization file is rendered (config `kustomize`). */
  kustomize?: Partial<KustomizeOptions>;
}

/** A deploy that went wrong after it was written: the cause, for history and rollback. */
class VerifyFailure extends Error {
  constructor(
    message: string,
    readonly checks: CheckOutcome[],
  ) {
    super(message);
  }
}

/**
 * One app's reconcile: given the branch head from the repo's ref listing, keep the cluster where
 * it is (repairing drift) or move it to the new revision — pre-checks, plan, apply, health
 * gating, post-checks — and roll back to the last known good revision when the new one fails.
 * Every step's outcome is persisted in the target cluster, so a restart resumes, never repeats.
 */
export class AppReconciler {
  readonly app: AppConfig;
  /** Per-object backoff for fields another manager contests; the daemon drains its notices. */
  readonly contest = new ContestTracker();
  private state?: AppState;
  private readonly rendered = new Map<string, Manifest[]>();
  /** What of the app's config shapes a sync: a change to it lets a failed revision be tried again. */
  private readonly specHash: string;

  constructor(private readonly d: AppReconcilerDeps) {
    this.app = d.app;
    const a = d.app;
    // Fields added later appear only when set, so an unchanged config keeps its hash.
    const policy = { ...(a.targetNamespace ? { targetNamespace: a.targetNamespace } : {}), ...(a.allowedNamespaces ? { allowedNamespaces: a.allowedNamespaces } : {}), ...(a.allowClusterScoped ? {} : { allowClusterScoped: false }) };
    const spec = { ...policy, name: a.name, repo: a.repo, branch: a.branch, path: a.path, cluster: a.cluster, namespace: a.namespace, prune: a.prune, allowEmpty: a.allowEmpty, checks: a.checks, approval: a.approval };
    this.specHash = sha256Hex(canonicalJson(spec)).slice(0, 16);
  }

  private keyed?: { engine: Engine; keyId: string };

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
    if (!this.state) this.state = (await this.d.store.load(this.app.name)) ?? { app: this.app.name, inventory: [], history: [] };
    return this.state;
  }

  /** The branch followed this cycle (a branchPattern picks one from each listing). */
  private followed?: string;
  /** The revision this app should be at, as of its last cycle (branch head or pin): for dependents. */
  lastTarget?: string;

  async reconcile(head: string | undefined, signal?: AbortSignal, branch?: string): Promise<CycleResult> {
    const started = Date.now();
    this.followed = branch ?? (this.app.branchPattern ? undefined : this.app.branch);
    await this.d.guard?.();
    const state = await this.currentState();
    const control = await this.d.control.load(this.app.name);
    const pinned = Boolean(control.pinRevision);
    const target = control.pinRevision ?? head;
    this.lastTarget = target;
    if (!target) {
      const message = this.app.branchPattern
        ? `no branch matches "${this.app.branchPattern}" in repo ${this.app.repo}`
        : `branch "${this.app.branch}" not found in repo ${this.app.repo}`;
      await this.recordFailure(state, "", message, false);
      return { kind: "failed", revision: "", message, permanent: false };
    }
    const retry = control.retryAt !== undefined && control.retryAt !== state.retryConsumed;
    if (retry) {
      state.retryConsumed = control.retryAt;
      state.failedRevision = undefined;
      state.failedSpec = undefined;
      if (state.phase === "Halted") state.phase = undefined;
    }

    // A plumber stopped in the middle of health gating or post-checks picks up the wait.
    if (state.phase === "Verifying" && state.revision === target) return this.verify(state, target, started, pinned, signal);
    if (state.phase === "Halted" && target === state.failedRevision) {
      return { kind: "held", revision: target, message: state.message ?? "halted" };
    }
    // A revision that failed for good is not retried until the branch moves, the app's config
    // changes (a new allowEmpty, say), or someone asks with `plumber retry`: no flapping.
    const heldAtFailure = target === state.failedRevision && state.failedSpec === this.specHash;
    if (target !== state.revision && !heldAtFailure) {
      const blocked = await this.dependencyGate();
      if (blocked) return this.hold(state, target, started, `revision ${target.slice(0, 12)} waits: ${blocked}`);
      const win = evaluateWindows(this.app.windows);
      if (!win.sync) return this.hold(state, target, started, `revision ${target.slice(0, 12)} waits for a sync window: ${win.reason}`, win.driftRepair);
      if (this.app.approval === "manual" && !pinned && control.approvedRevision !== target) {
        return this.awaitApproval(state, target, started);
      }
      return this.moveTo(state, target, started, pinned, signal);
    }
    if (!evaluateWindows(this.app.windows).driftRepair) return state.failedRevision ? { kind: "held", revision: state.failedRevision, message: state.message ?? "" } : { kind: "unchanged" };
    return this.repairDrift(state, started);
  }

  /** The first dependency (dependsOn) not healthy at its current revision, as a message. */
  private async dependencyGate(): Promise<string | undefined> {
    if (!this.d.dependency) return undefined;
    for (const name of this.app.dependsOn) {
      const why = dependencyBlocker(name, await this.d.dependency(name));
      if (why) return why;
    }
    return undefined;
  }

  /**
   * What applying `sha` would do, from the very request an apply sends (namespace policy, reserved
   * objects, the self-config check in the engine), with nothing written: `plumber plan` and the
   * status of a waiting revision.
   */
  async plan(sha: string, branch?: string): Promise<Plan> {
    const state = await this.currentState();
    const { engine } = await this.engine(false);
    // A plan writes nothing, not even the intent record.
    const { recordIntent: _, ...req } = this.syncRequest(await this.render(sha, branch), state);
    return engine.plan(req);
  }

  /** Drift of what is applied, for status; undefined when the stored hashes were made with another key and cannot tell. */
  async drift(): Promise<DriftReport | undefined> {
    const state = await this.currentState();
    const { engine, keyId } = await this.engine(false);
    if ((state.hashKeyId ?? "") !== keyId) return undefined;
    return engine.detectDrift(this.app.name, state.inventory);
  }

  /** What a waiting revision would change, planned by a dry-run (nothing written), for its status. */
  private async planSummary(state: AppState, target: string): Promise<string> {
    try {
      const plan = await this.plan(target);
      const counts = { created: 0, configured: 0, unchanged: 0 };
      for (const p of plan.objects) counts[p.action]++;
      return ` (${counts.created} to create, ${counts.configured} to configure, ${plan.prune.length} to prune)`;
    } catch (e) {
      return ` (its plan fails: ${errorMessage(e).split("\n")[0]})`;
    }
  }

  /** A new revision that may not be applied yet: status says why (written once), drift is still repaired. */
  private async hold(state: AppState, target: string, started: number, why: string, driftRepair = true): Promise<CycleResult> {
    let message = why;
    if (state.pendingRevision !== target || !state.message?.startsWith(why)) {
      // Planned once (a dry-run, nothing written), so status shows what the revision would change.
      message += await this.planSummary(state, target);
      Object.assign(state, { pendingRevision: target, message, updatedAt: new Date().toISOString() } satisfies Partial<AppState>);
      await this.d.store.save(state);
      this.emit("held", target, "Held", undefined, message);
      this.d.log.info({ revision: target.slice(0, 12) }, message);
    } else message = state.message;
    const repaired = driftRepair ? await this.repairDrift(state, started) : ({ kind: "unchanged" } as const);
    return repaired.kind === "unchanged" ? { kind: "held", revision: target, message } : repaired;
  }

  /** Plans the revision (nothing written but status), records it as pending, and says so once. */
  private async awaitApproval(state: AppState, target: string, started: number): Promise<CycleResult> {
    if (state.pendingRevision !== target || state.phase !== "WaitingApproval") {
      let message = `revision ${target.slice(0, 12)} waits for approval: plumber approve ${this.app.name} ${target.slice(0, 12)}`;
      message += await this.planSummary(state, target);
      Object.assign(state, { phase: "WaitingApproval", pendingRevision: target, message, updatedAt: new Date().toISOString() } satisfies Partial<AppState>);
      await this.d.store.save(state);
      this.emit("approvalNeeded", target, "WaitingApproval", undefined, message);
      this.d.log.info({ revision: target.slice(0, 12) }, message);
    }
    const repaired = await this.repairDrift(state, started);
    return repaired.kind === "unchanged" ? { kind: "held", revision: target, message: state.message ?? "" } : repaired;
  }

  private async moveTo(state: AppState, head: string, started: number, pinned: boolean, signal?: AbortSignal): Promise<CycleResult> {
    const log = this.d.log.child({ revision: head.slice(0, 12) });
    if (this.d.verifyCommit) {
      await this.d.repo.ensureCommit(this.followed ?? this.app.branch, head);
      const refused = await this.d.verifyCommit(head);
      if (refused) {
        log.error(refused);
        await this.recordFailure(state, head, refused, true);
        this.emit("failed", head, "SignatureInvalid", "SignatureInvalid", refused);
        return { kind: "failed", revision: head, message: refused, permanent: true };
      }
    }
    let manifests: Manifest[];
    try {
      manifests = await this.render(head);
    } catch (e) {
      const permanent = e instanceof FileProblemError;
      const message = errorMessage(e);
      log.error({ err: message }, "revision failed to render; keeping the last good revision");
      await this.recordFailure(state, head, message, permanent);
      this.emit("failed", head, "RenderFailed", "RenderFailed", message);
      return { kind: "failed", revision: head, message, permanent };
    }

    const pre = await this.runChecks("pre", this.app.checks.pre, head, signal);
    const preFailed = pre.find((c) => !c.passed);
    if (preFailed) {
      const message = `pre-check ${preFailed.name} failed (${preFailed.object}): ${preFailed.reason}${preFailed.message ? `: ${preFailed.message}` : ""}; nothing applied`;
      log.error({ checks: pre }, message);
      await this.recordFailure(state, head, message, true, pre);
      this.emit("failed", head, "PreCheckFailed", preFailed.reason, message);
      return { kind: "failed", revision: head, message, permanent: true };
    }

    let changeSet: ChangeSet;
    try {
      const { engine, keyId } = await this.engine();
      const out = await engine.sync(this.syncRequest(manifests, state));
      changeSet = out.changeSet;
      const now = new Date().toISOString();
      Object.assign(state, {
        ...(this.followed && !pinned ? { branch: this.followed } : {}),
        revision: head,
        attemptedRevision: head,
        phase: "Verifying",
        pendingRevision: undefined,
        lastResult: "Applied",
        message: undefined,
        appliedAt: now,
        updatedAt: now,
        inventory: out.inventory,
        hashKeyId: keyId,
        warnings: warningsOf(out.changeSet),
        verifyStartedAt: now,
        lastChanges: JSON.stringify(nonZero(out.changeSet.summary())),
      } satisfies Partial<AppState>);
      // Recorded before the wait, so a restart resumes the wait instead of applying again.
      await this.d.store.save(state);
      log.info({ changes: out.changeSet.summary(), durationMs: Date.now() - started }, `applied: ${out.changeSet.toString()}`);
      if (state.warnings) log.warn({ warnings: state.warnings.split("\n") }, "the apiserver warned about this revision");
    } catch (e) {
      if (e instanceof SyncError || e instanceof PlanError) state.warnings = warningsOf(e.changeSet) ?? state.warnings;
      if (e instanceof SyncError) state.inventory = e.inventory;
      const permanent = isPermanent(e);
      const message = errorMessage(e);
      log.error({ err: message, permanent, durationMs: Date.now() - started }, "reconcile failed");
      await this.recordFailure(state, head, message, permanent, pre);
      this.emit("failed", head, "ApplyFailed", e instanceof PlanError ? "PlanFailed" : "ApplyFailed", message);
      return { kind: "failed", revision: head, message, permanent };
    }
    const verified = await this.verify(state, head, started, pinned, signal, pre);
    return verified.kind === "applied" ? { ...verified, changeSet } : verified;
  }

  /** Health gating and post-checks of the applied revision; rollback when they fail. */
  private async verify(state: AppState, rev: string, started: number, pinned: boolean, signal?: AbortSignal, pre: CheckOutcome[] = []): Promise<CycleResult> {
    const log = this.d.log.child({ revision: rev.slice(0, 12) });
    let checks: CheckOutcome[] = pre;
    try {
      const health = await waitHealthy(this.d.client, this.d.discovery, this.app.name, state.inventory, { timeoutMs: this.app.healthTimeoutMs, signal });
      if (!health.healthy) throw new VerifyFailure(`health: ${describeHealth(health, this.app.healthTimeoutMs)}`, checks);
      const post = await this.runChecks("post", this.app.checks.post, rev, signal);
      checks = [...pre, ...post];
      const failed = post.find((c) => !c.passed);
      if (failed) throw new VerifyFailure(`post-check ${failed.name} failed (${failed.object}): ${failed.reason}${failed.message ? `: ${failed.message}` : ""}`, checks);
    } catch (e) {
      if (e instanceof AbortedError) throw e;
      const cause = e instanceof VerifyFailure ? e : new VerifyFailure(errorMessage(e), checks);
      return this.onVerifyFailure(state, rev, cause, started, pinned, signal);
    }
    const now = new Date().toISOString();
    recordDeploy(state, {
      revision: rev,
      startedAt: state.verifyStartedAt ?? new Date(started).toISOString(),
      finishedAt: now,
      result: "Applied",
      changes: parseChanges(state.lastChanges),
      checks: checks.length ? checks : undefined,
    });
    Object.assign(state, {
      phase: "Ready",
      goodRevision: rev,
      lastResult: "Applied",
      message: undefined,
      failedRevision: undefined,
      failedSpec: undefined,
      verifyStartedAt: undefined,
      updatedAt: now,
    } satisfies Partial<AppState>);
    await this.d.store.save(state);
    this.forgetRenderedExcept(rev);
    log.info({ durationMs: Date.now() - started }, "deployed: healthy" + (checks.length ? " and checks passed" : ""));
    this.emit("deployed", rev, "Applied");
    return { kind: "applied", revision: rev, changeSet: emptyChangeSet() };
  }

  private async onVerifyFailure(state: AppState, rev: string, cause: VerifyFailure, started: number, pinned: boolean, signal?: AbortSignal): Promise<CycleResult> {
    const log = this.d.log.child({ revision: rev.slice(0, 12) });
    const now = () => new Date().toISOString();
    const failedRecord: DeployRecord = {
      revision: rev,
      startedAt: state.verifyStartedAt ?? new Date(started).toISOString(),
      finishedAt: now(),
      result: "Failed",
      changes: parseChanges(state.lastChanges),
      message: cause.message.slice(0, 1000),
      checks: cause.checks.length ? cause.checks : undefined,
    };
    recordDeploy(state, failedRecord);
    const good = state.goodRevision;
    if (this.app.rollback === "off" || !good || good === rev || pinned) {
      const why = this.app.rollback === "off" ? "rollback is off" : pinned ? "the app is pinned" : "there is no earlier good revision";
      const message = `${cause.message}; ${why}: revision ${rev.slice(0, 12)} stays applied and the app is held`;
      Object.assign(state, { phase: "Halted", lastResult: "Failed", message, failedRevision: rev, failedSpec: this.specHash, verifyStartedAt: undefined, updatedAt: now() } satisfies Partial<AppState>);
      await this.d.store.save(state);
      log.error(message);
      this.emit("failed", rev, "Failed", "VerifyFailed", message);
      return { kind: "failed", revision: rev, message, permanent: true };
    }

    log.warn({ cause: cause.message, to: good.slice(0, 12) }, "deploy failed; rolling back to the last known good revision");
    const rollbackStarted = now();
    try {
      const manifests = await this.render(good);
      // Previous inventory = what the failed revision applied: syncing the good set prunes what it added.
      const { engine, keyId } = await this.engine();
      const out = await engine.sync(this.syncRequest(manifests, state));
      state.inventory = out.inventory;
      state.hashKeyId = keyId;
      state.warnings = warningsOf(out.changeSet);
      const health = await waitHealthy(this.d.client, this.d.discovery, this.app.name, state.inventory, { timeoutMs: this.app.healthTimeoutMs, signal });
      if (!health.healthy) throw new Error(`health: ${describeHealth(health, this.app.healthTimeoutMs)}`);
      const message = `revision ${rev.slice(0, 12)} failed (${cause.message}); rolled back to ${good.slice(0, 12)}`;
      recordDeploy(state, {
        revision: good,
        startedAt: rollbackStarted,
        finishedAt: now(),
        result: "RolledBack",
        changes: nonZero(out.changeSet.summary()),
        cause: `${rev}: ${cause.message}`.slice(0, 1000),
      });
      Object.assign(state, {
        revision: good,
        phase: "Ready",
        lastResult: "RolledBack",
        message,
        failedRevision: rev,
        failedSpec: this.specHash,
        verifyStartedAt: undefined,
        updatedAt: now(),
      } satisfies Partial<AppState>);
      await this.d.store.save(state);
      log.warn({ changes: out.changeSet.summary() }, message);
      this.emit("rolledBack", good, "RolledBack", "VerifyFailed", message);
      return { kind: "rolledBack", revision: good, failedRevision: rev, message };
    } catch (e) {
      if (e instanceof AbortedError) throw e;
      if (e instanceof SyncError) state.inventory = e.inventory;
      const message = `revision ${rev.slice(0, 12)} failed (${cause.message}); rollback to ${good.slice(0, 12)} failed too: ${errorMessage(e)}; the app is halted until the branch moves or plumber retry ${this.app.name}`;
      recordDeploy(state, { revision: good, startedAt: rollbackStarted, finishedAt: now(), result: "Failed", cause: `rollback after ${rev}`, message: errorMessage(e).slice(0, 1000) });
      Object.assign(state, { phase: "Halted", lastResult: "Failed", message, failedRevision: rev, failedSpec: this.specHash, verifyStartedAt: undefined, updatedAt: now() } satisfies Partial<AppState>);
      await this.d.store.save(state);
      log.error(message);
      this.emit("failed", rev, "Halted", "RollbackFailed", message);
      return { kind: "failed", revision: rev, message, permanent: true };
    }
  }

  private async runChecks(phase: CheckPhase, checks: CheckConfig[], rev: string, signal?: AbortSignal): Promise<CheckOutcome[]> {
    const out: CheckOutcome[] = [];
    for (const check of checks) {
      const manifest = check.manifest ?? (await this.readCheckFile(check, rev));
      const obj = checkObject(check, manifest, { namespace: this.app.namespace, phase, ctx: { revision: rev, app: this.app.name, cluster: this.app.cluster } });
      const outcome = await runCheck(check, obj, { client: this.d.client, discovery: this.d.discovery, namespace: this.app.namespace, phase, ctx: { revision: rev, app: this.app.name, cluster: this.app.cluster }, signal });
      out.push(outcome);
      if (!outcome.passed) break;
    }
    if (checks.length) {
      try {
        await pruneCheckObjects(this.d.client, this.d.discovery, this.app.name, this.app.namespace, this.app.checks.keep);
      } catch (e) {
        this.d.log.warn({ err: errorMessage(e) }, "could not clean up old check objects");
      }
    }
    return out;
  }

  private async readCheckFile(check: CheckConfig, rev: string): Promise<Record<string, unknown>> {
    const file = check.file as string;
    const slash = file.lastIndexOf("/");
    const dir = slash < 0 ? "." : file.slice(0, slash);
    const files = await this.d.repo.readFiles(rev, dir, (p) => p === file, { maxFileBytes: 1 << 20, maxTotalBytes: 1 << 20, maxFiles: 1 });
    if (files.length === 0) throw new FileProblemError([{ file, line: 1, message: `check ${check.name}: no such file at ${rev.slice(0, 12)}` }]);
    const docs = parseManifests(files);
    if (docs.length !== 1) throw new FileProblemError([{ file, line: 1, message: `check ${check.name}: the file must hold exactly one manifest, found ${docs.length}` }]);
    return (docs[0] as Manifest).object;
  }

  private async repairDrift(state: AppState, started: number): Promise<CycleResult> {
    const held = (): CycleResult =>
      state.failedRevision ? { kind: "held", revision: state.failedRevision, message: state.message ?? "" } : { kind: "unchanged" };
    if (!state.revision || state.inventory.length === 0) return held();
    const { engine, keyId } = await this.engine();
    if ((state.hashKeyId ?? "") !== keyId) return this.rehash(state, state.revision, engine, keyId, started, held);
    // Objects another field manager keeps taking back are repaired with backoff (contested.ts).
    const drift = await this.contest.review(await engine.detectDrift(this.app.name, state.inventory), state.inventory, { app: this.app.name, client: this.d.client, namespace: this.d.store.namespace, log: this.d.log });
    if (drift.drifted.length + drift.missing.length === 0) return held();
    const log = this.d.log.child({ revision: state.revision.slice(0, 12) });
    log.info({ drifted: drift.drifted.length, missing: drift.missing.length }, "drift detected; restoring");
    try {
      const manifests = await this.render(state.revision);
      const out = await engine.repair(this.app.name, manifests, this.app.namespace, drift, state.inventory, this.namespacePolicy(), { guard: this.d.objectGuard });
      state.inventory = out.inventory;
      state.updatedAt = new Date().toISOString();
      if (!state.failedRevision && state.phase !== "WaitingApproval") {
        state.lastResult = "DriftRepaired";
        state.message = undefined;
      }
      await this.d.store.save(state);
      log.info({ changes: out.changeSet.summary(), durationMs: Date.now() - started }, `drift repaired: ${out.changeSet.toString()}`);
      this.emit("driftRepaired", state.revision, "DriftRepaired", undefined, out.changeSet.toString());
      return { kind: "repaired", revision: state.revision, changeSet: out.changeSet };
    } catch (e) {
      if (e instanceof SyncError) state.inventory = e.inventory;
      const message = `drift repair failed: ${errorMessage(e)}`;
      log.error({ err: message }, "drift repair failed");
      return { kind: "failed", revision: state.revision, message, permanent: false };
    }
  }

  /**
   * The inventory's hashes were made with another key, or none (state of a plumber from before
   * keyed hashes): they cannot be compared with what the engine computes now, and drift repair
   * would take every object for drifted and rewrite it. Instead the applied revision is synced
   * once: every object is dry-run, only those that really differ are written (genuine drift), and
   * the inventory is stored with hashes under the current key.
   */
  private async rehash(state: AppState, revision: string, engine: Engine, keyId: string, started: number, held: () => CycleResult): Promise<CycleResult> {
    const log = this.d.log.child({ revision: revision.slice(0, 12) });
    try {
      const out = await engine.sync(this.syncRequest(await this.render(revision), state));
      Object.assign(state, { inventory: out.inventory, hashKeyId: keyId, updatedAt: new Date().toISOString() } satisfies Partial<AppState>);
      await this.d.store.save(state);
      log.info({ changes: out.changeSet.summary(), durationMs: Date.now() - started }, `stored hashes recomputed under this installation's key: ${out.changeSet.toString()}`);
      if (!out.changeSet.changed) return held();
      this.emit("driftRepaired", revision, "DriftRepaired", undefined, out.changeSet.toString());
      return { kind: "repaired", revision, changeSet: out.changeSet };
    } catch (e) {
      if (e instanceof SyncError) state.inventory = e.inventory;
      const message = `recomputing stored hashes failed: ${errorMessage(e)}`;
      log.error({ err: message }, "recomputing stored hashes failed");
      return { kind: "failed", revision, message, permanent: false };
    }
  }

  /**
   * The one request of every sync and plan of this app (apply, rollback, rehash, plan): its
   * namespace policy, the objects no app may deploy, and the intent record written before the
   * first write.
   */
  private syncRequest(manifests: Manifest[], state: AppState): SyncRequest {
    return {
      owner: this.app.name,
      manifests,
      defaultNamespace: this.app.namespace,
      previous: state.inventory,
      prune: this.app.prune,
      allowEmpty: this.app.allowEmpty,
      namespacePolicy: this.namespacePolicy(),
      guard: this.d.objectGuard,
      recordIntent: (inventory) => this.recordIntent(state, inventory),
    };
  }

  /**
   * Persists previous ∪ desired before the first write, so a kill at any later point leaves no
   * object written that the next cycle does not know to prune. Only keys new to the inventory can
   * be orphaned: a sync that adds none costs no extra write.
   */
  private async recordIntent(state: AppState, inventory: InventoryEntry[]): Promise<void> {
    const known = new Set(state.inventory.map((e) => e.key));
    if (inventory.every((e) => known.has(e.key))) return;
    state.inventory = inventory;
    state.updatedAt = new Date().toISOString();
    await this.d.store.save(state);
  }

  private namespacePolicy(): NamespacePolicy {
    return { targetNamespace: this.app.targetNamespace, allowedNamespaces: this.app.allowedNamespaces, allowClusterScoped: this.app.allowClusterScoped };
  }

  /** Reads (or, for a kustomization, builds) the manifests at a commit; cached, since a commit never changes. */
  async render(sha: string, branch: string = this.followed ?? this.app.branch): Promise<Manifest[]> {
    const hit = this.rendered.get(sha);
    if (hit) return hit;
    await this.d.repo.ensureCommit(branch, sha);
    const manifests = await renderApp(this.d.repo, sha, this.app.path, this.d.kustomize);
    this.rendered.set(sha, manifests);
    return manifests;
  }

  /** Keeps the current revision's manifests (drift repair, rollback target), drops the rest. */
  private forgetRenderedExcept(sha: string): void {
    for (const k of this.rendered.keys()) if (k !== sha) this.rendered.delete(k);
  }

  private emit(event: AppEvent["event"], revision: string, result: string, reason?: string, message?: string): void {
    this.d.onEvent?.({ event, app: this.app.name, cluster: this.app.cluster, revision, result, reason, message });
  }

  /** Status is written only when it changes, so a failing revision costs no write per cycle. */
  private async recordFailure(state: AppState, revision: string, message: string, permanent: boolean, checks?: CheckOutcome[]): Promise<void> {
    const failedRevision = permanent ? revision : state.failedRevision;
    const failedSpec = permanent ? this.specHash : state.failedSpec;
    if (
      state.lastResult === "Failed" &&
      state.attemptedRevision === revision &&
      state.message === message &&
      state.failedRevision === failedRevision &&
      state.failedSpec === failedSpec
    )
      return;
    Object.assign(state, {
      lastResult: "Failed",
      attemptedRevision: revision,
      message,
      failedRevision,
      failedSpec,
      updatedAt: new Date().toISOString(),
    } satisfies Partial<AppState>);
    if (revision) {
      recordDeploy(state, {
        revision,
        startedAt: state.updatedAt ?? "",
        finishedAt: state.updatedAt ?? "",
        result: "Failed",
        message: message.slice(0, 1000),
        checks: checks?.length ? checks : undefined,
      });
    }
    try {
      await this.d.store.save(state);
    } catch (e) {
      this.d.log.warn({ err: errorMessage(e) }, "could not record status");
    }
  }
}

/** Retrying the same revision cannot help: the manifests or the server's verdict on them are at fault. */
function isPermanent(e: unknown): boolean {
  if (e instanceof FileProblemError) return true;
  if (e instanceof PlanError) {
    return e.changeSet.entries.every((x) => x.action !== "failed" || !/^(InternalError|ServiceUnavailable|Timeout|ConnectionFailed|TooManyRequests)/.test(x.message ?? ""));
  }
  if (e instanceof KubeApiError) return !e.transient;
  return false;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const MAX_WARNINGS = 50;

/** Server warnings of a change set, one line per warning ("Kind/ns/name: text"), bounded; undefined when none. */
export function warningsOf(cs: ChangeSet): string | undefined {
  const lines = cs.entries.flatMap((e) => (e.warnings ?? []).map((w) => `${e.subject}: ${w}`));
  if (lines.length === 0) return undefined;
  const kept = lines.slice(0, MAX_WARNINGS).map((l) => l.slice(0, 500));
  if (lines.length > MAX_WARNINGS) kept.push(`... and ${lines.length - MAX_WARNINGS} more`);
  return kept.join("\n");
}

function nonZero(s: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(s).filter(([, n]) => n > 0));
}

function parseChanges(s: string | undefined): Record<string, number> | undefined {
  if (!s) return undefined;
  try {
    return JSON.parse(s) as Record<string, number>;
  } catch {
    return undefined;
  }
}

function emptyChangeSet(): ChangeSet {
  // verify() on resume has no change set of its own; moveTo() puts the real one in.
  return new ChangeSet();
}

export type { AppControl };
