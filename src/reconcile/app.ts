import type { AppConfig } from "../config/types.js";
import type { Engine } from "../engine/engine.js";
import { canonicalJson, sha256Hex } from "../engine/hash.js";
import { PlanError, SyncError } from "../engine/engine.js";
import type { ChangeSet } from "../engine/changeset.js";
import type { GitRepo } from "../git/repo.js";
import { KubeApiError } from "../kube/client.js";
import { readManifests } from "../manifests/read.js";
import type { Logger } from "../log.js";
import { recordDeploy, type AppState, type StateStore } from "../state/store.js";
import type { Manifest } from "../types.js";
import { FileProblemError } from "../types.js";

export type CycleResult =
  | { kind: "unchanged" }
  | { kind: "applied"; revision: string; changeSet: ChangeSet }
  | { kind: "repaired"; revision: string; changeSet: ChangeSet }
  | { kind: "failed"; revision: string; message: string; permanent: boolean }
  | { kind: "held"; revision: string; message: string };

/**
 * One app's reconcile: given the branch head from the repo's ref listing, either keep the cluster
 * where it is (checking drift) or move it to the new revision. State lives in the cluster.
 */
export class AppReconciler {
  private state?: AppState;
  private readonly rendered = new Map<string, Manifest[]>();
  /** What of the app's config shapes a sync: a change to it lets a failed revision be tried again. */
  private readonly specHash: string;

  constructor(
    readonly app: AppConfig,
    private readonly repo: GitRepo,
    private readonly engine: Engine,
    private readonly store: StateStore,
    private readonly log: Logger,
  ) {
    const spec = { name: app.name, repo: app.repo, branch: app.branch, path: app.path, cluster: app.cluster, namespace: app.namespace, prune: app.prune, allowEmpty: app.allowEmpty };
    this.specHash = sha256Hex(canonicalJson(spec)).slice(0, 16);
  }

  async currentState(): Promise<AppState> {
    if (!this.state) this.state = (await this.store.load(this.app.name)) ?? { app: this.app.name, inventory: [], history: [] };
    return this.state;
  }

  async reconcile(head: string | undefined): Promise<CycleResult> {
    const started = Date.now();
    const state = await this.currentState();
    if (!head) {
      const message = `branch "${this.app.branch}" not found in repo ${this.app.repo}`;
      await this.recordFailure(state, "", message, false);
      return { kind: "failed", revision: "", message, permanent: false };
    }
    // A revision that failed for good is not retried until the branch moves or the app's
    // config changes (a new allowEmpty, say): no flapping, no write per interval.
    const heldAtFailure = head === state.failedRevision && state.failedSpec === this.specHash;
    if (head !== state.revision && !heldAtFailure) {
      return this.moveTo(state, head, started);
    }
    // Held at the last good revision (same head, or a new head known to be bad): repair drift.
    return this.repairDrift(state, started);
  }

  private async moveTo(state: AppState, head: string, started: number): Promise<CycleResult> {
    const log = this.log.child({ revision: head.slice(0, 12) });
    let manifests: Manifest[];
    try {
      manifests = await this.render(head);
    } catch (e) {
      const permanent = e instanceof FileProblemError;
      const message = errorMessage(e);
      log.error({ err: message }, "revision failed to render; keeping the last good revision");
      await this.recordFailure(state, head, message, permanent);
      return { kind: "failed", revision: head, message, permanent };
    }
    try {
      const out = await this.engine.sync({
        owner: this.app.name,
        manifests,
        defaultNamespace: this.app.namespace,
        previous: state.inventory,
        prune: this.app.prune,
        allowEmpty: this.app.allowEmpty,
      });
      const now = new Date().toISOString();
      Object.assign(state, {
        revision: head,
        attemptedRevision: head,
        lastResult: "Applied",
        message: undefined,
        failedRevision: undefined,
        failedSpec: undefined,
        appliedAt: now,
        updatedAt: now,
        inventory: out.inventory,
      } satisfies Partial<AppState>);
      const s = out.changeSet.summary();
      recordDeploy(state, {
        revision: head,
        startedAt: new Date(started).toISOString(),
        finishedAt: now,
        result: "Applied",
        changes: Object.fromEntries(Object.entries(s).filter(([, n]) => n > 0)),
      });
      await this.store.save(state);
      this.forgetRenderedExcept(head);
      log.info({ changes: out.changeSet.summary(), durationMs: Date.now() - started }, `reconciled: ${out.changeSet.toString()}`);
      return { kind: "applied", revision: head, changeSet: out.changeSet };
    } catch (e) {
      if (e instanceof SyncError) state.inventory = e.inventory;
      const permanent = isPermanent(e);
      const message = errorMessage(e);
      log.error({ err: message, permanent, durationMs: Date.now() - started }, "reconcile failed");
      await this.recordFailure(state, head, message, permanent);
      return { kind: "failed", revision: head, message, permanent };
    }
  }

  private async repairDrift(state: AppState, started: number): Promise<CycleResult> {
    if (!state.revision || state.inventory.length === 0) {
      return heldFor(state) ? { kind: "held", revision: state.failedRevision ?? "", message: state.message ?? "" } : { kind: "unchanged" };
    }
    const drift = await this.engine.detectDrift(this.app.name, state.inventory);
    if (drift.drifted.length + drift.missing.length === 0) {
      return heldFor(state) ? { kind: "held", revision: state.failedRevision ?? "", message: state.message ?? "" } : { kind: "unchanged" };
    }
    const log = this.log.child({ revision: state.revision.slice(0, 12) });
    log.info({ drifted: drift.drifted.length, missing: drift.missing.length }, "drift detected; restoring");
    try {
      const manifests = await this.render(state.revision);
      const out = await this.engine.repair(this.app.name, manifests, this.app.namespace, drift, state.inventory);
      state.inventory = out.inventory;
      state.updatedAt = new Date().toISOString();
      if (!state.failedRevision) {
        state.lastResult = "DriftRepaired";
        state.message = undefined;
      }
      await this.store.save(state);
      log.info({ changes: out.changeSet.summary(), durationMs: Date.now() - started }, `drift repaired: ${out.changeSet.toString()}`);
      return { kind: "repaired", revision: state.revision, changeSet: out.changeSet };
    } catch (e) {
      if (e instanceof SyncError) state.inventory = e.inventory;
      const message = `drift repair failed: ${errorMessage(e)}`;
      log.error({ err: message }, "drift repair failed");
      return { kind: "failed", revision: state.revision, message, permanent: false };
    }
  }

  /** Reads the manifests at a commit; cached, since a commit never changes. */
  async render(sha: string): Promise<Manifest[]> {
    const hit = this.rendered.get(sha);
    if (hit) return hit;
    await this.repo.ensureCommit(this.app.branch, sha);
    const manifests = await readManifests(this.repo, sha, this.app.path);
    this.rendered.set(sha, manifests);
    return manifests;
  }

  private forgetRenderedExcept(sha: string): void {
    for (const k of this.rendered.keys()) if (k !== sha) this.rendered.delete(k);
  }

  /** Status is written only when it changes, so a failing revision costs no write per cycle. */
  private async recordFailure(state: AppState, revision: string, message: string, permanent: boolean): Promise<void> {
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
      recordDeploy(state, { revision, startedAt: state.updatedAt ?? "", finishedAt: state.updatedAt ?? "", result: "Failed", message: message.slice(0, 500) });
    }
    try {
      await this.store.save(state);
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, "could not record status");
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

function heldFor(state: AppState): boolean {
  return Boolean(state.failedRevision);
}
