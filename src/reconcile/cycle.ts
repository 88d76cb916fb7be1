import type { ChangeSet } from "../engine/changeset.js";
import type { Engine, SyncRequest } from "../engine/engine.js";
import type { GitRepo } from "../git/repo.js";
import type { KubeClient } from "../kube/client.js";
import type { Discovery } from "../kube/discovery.js";
import type { KustomizeOptions } from "../kustomize/render.js";
import type { Logger } from "../log.js";
import type { DeployOutcome } from "../observe/events.js";
import type { ObjectIdentity } from "../state/guard.js";
import type { AppState } from "../state/store.js";
import type { Manifest } from "../types.js";
import type { Clock } from "./clock.js";
import type { ContestTracker } from "./contested.js";
import type { AppSpec } from "./spec.js";

export type CycleResult =
  | { kind: "unchanged" }
  | { kind: "applied"; revision: string; changeSet: ChangeSet }
  | { kind: "repaired"; revision: string; changeSet: ChangeSet }
  | { kind: "rolledBack"; revision: string; failedRevision: string; message: string }
  /** errorReason: the apiserver's reason behind the failure, when it answered one (phases/failure.ts). */
  | { kind: "failed"; revision: string; message: string; permanent: boolean; errorReason?: string }
  | { kind: "held"; revision: string; message: string }
  /** Pre-checks of the revision under way, nothing applied yet: looked at again next cycle. */
  | { kind: "checking"; revision: string; message: string }
  /** Applied (changeSet: this cycle applied it), health or post-checks still under way: looked at again next cycle. */
  | { kind: "verifying"; revision: string; message: string; changeSet?: ChangeSet };

/** What the phases reach of the outside world (the reconciler's deps, narrowed to what they use). */
export interface CycleIO {
  repo: GitRepo;
  client: KubeClient;
  discovery: Discovery;
  /** The state namespace (contested-object notes live there). */
  stateNamespace: string;
  objectGuard?: (id: ObjectIdentity) => string | undefined;
  kustomize?: Partial<KustomizeOptions>;
}

/**
 * One reconcile of one app, as the phases (src/reconcile/phases/*) see it: the spec, the clock,
 * the state they move from phase to phase, and the effects, each behind one method so that a
 * writes-off cycle (plan) leaves every one of them out.
 */
export interface Cycle {
  readonly spec: AppSpec;
  readonly clock: Clock;
  readonly log: Logger;
  readonly io: CycleIO;
  readonly contest: ContestTracker;
  /** performance.now() at the start, for durations in logs. */
  readonly started: number;
  readonly signal?: AbortSignal;
  /** The target is a pin: no rollback away from it, no branch recorded. */
  readonly pinned: boolean;
  /** Who asked for this cycle's target (an approval, pin or retry made from the dashboard), for its history record. */
  readonly actor?: string;
  /** The branch followed this cycle (a branchPattern picks one per listing). */
  readonly followed?: string;
  /**
   * Pre-checks, health gating, post-checks and a rollback's health look once per cycle and leave
   * the app waiting (the revision pending, or Verifying) until they pass, fail or pass their
   * deadline (the poller's mode), instead of waiting inline.
   */
  readonly deferWaits?: boolean;
  /** The current state; a phase replaces it with the transition's result, then saves. */
  state: AppState;
  /** Persists the current state (a no-op with writes off). */
  save(): Promise<void>;
  /** A "deploy" event for the observer (once per transition, not per cycle). */
  emit(outcome: DeployOutcome, revision: string, result: string, reason?: string, message?: string): void;
  /** The engine with the installation's hash key; `write` creates the key when missing. */
  engine(write?: boolean): Promise<{ engine: Engine; keyId: string }>;
  render(sha: string): Promise<Manifest[]>;
  /** Keeps the current revision's rendered manifests (drift repair, rollback target), drops the rest. */
  forgetRenderedExcept(sha: string): void;
  /** The one request of every sync and plan of this app; with writes off, no intent record. */
  syncRequest(manifests: Manifest[]): SyncRequest;
  /** " (n to create, m to configure, k to prune)" for a waiting revision's status, from a dry-run. */
  planSummary(target: string): Promise<string>;
}

export function msSince(started: number): number {
  return Math.round(performance.now() - started);
}
