// The phase transitions of one app's state, as pure functions: each returns the next state and
// never writes; the phases (src/reconcile/phases/*) persist what they return.
import type { CheckOutcome } from "../checks/run.js";
import type { InventoryEntry } from "../engine/inventory.js";
import { HISTORY_LIMIT, type AppState, type DeployRecord, type HaltedState, type ReadyState, type RollingBackState, type VerifyingState, type WaitingApprovalState } from "../state/store.js";

/** What a cycle does next from the stored state and the target: the machine's one decision. */
export type Step =
  /** Applied but not yet verified at the target (a restart mid-wait): resume health gating and post-checks. */
  | { step: "verify"; state: VerifyingState }
  /** Halted at the target: nothing moves until the branch moves or someone retries. */
  | { step: "halted"; state: HaltedState }
  /** A new revision: the gates decide whether it is applied now. */
  | { step: "advance" }
  /** At the target, or held at a revision that failed for good under this config: drift repair only. */
  | { step: "settle" };

export function nextStep(s: AppState, target: string, specHash: string): Step {
  if (s.phase === "Verifying" && s.revision === target) return { step: "verify", state: s };
  // A rollback waiting for the good revision's health finishes before the failed revision is held.
  if (s.phase === "Verifying" && s.rollbackFrom === target) return { step: "verify", state: s };
  if (s.phase === "Halted" && s.failedRevision === target) return { step: "halted", state: s };
  // A revision that failed for good is not retried until the branch moves, the app's config
  // changes (a new allowEmpty, say), or someone asks with `plumber retry`: no flapping.
  const heldAtFailure = target === s.failedRevision && s.failedSpec === specHash;
  if (target !== s.revision && !heldAtFailure) return { step: "advance" };
  return { step: "settle" };
}

function withRecord(history: DeployRecord[], rec: DeployRecord): DeployRecord[] {
  return [rec, ...history].slice(0, HISTORY_LIMIT);
}

/** `plumber retry`: the failure that held a revision is forgotten; a halt is lifted. */
export function retried(s: AppState, retryAt: string): AppState {
  const cleared = { retryConsumed: retryAt, failedRevision: undefined, failedSpec: undefined };
  if (s.phase === "Halted") {
    const { phase: _, ...rest } = s;
    return { ...rest, ...cleared };
  }
  return { ...s, ...cleared };
}

/** Whether the waiting revision's status already says `why` (so it is not written again each cycle). */
export function announced(s: AppState, target: string, why: string): boolean {
  return s.pendingRevision === target && (s.message?.startsWith(why) ?? false);
}

/** A new revision that may not be applied yet (a window, a dependency): its status, phase unchanged. */
export function holding(s: AppState, target: string, message: string, now: string): AppState {
  return { ...s, pendingRevision: target, preChecks: preChecksOf(s, target), message, updatedAt: now };
}

export function awaitingApproval(s: AppState, target: string, message: string, now: string): WaitingApprovalState {
  return { ...s, phase: "WaitingApproval", pendingRevision: target, preChecks: preChecksOf(s, target), message, updatedAt: now };
}

/** Pre-check progress survives a hold of the same revision (the run is found again); another revision's is dropped. */
function preChecksOf(s: AppState, target: string): string | undefined {
  return s.pendingRevision === target ? s.preChecks : undefined;
}

/**
 * Pre-checks of `revision` under way across cycles (nothing applied): the revision pending, the
 * progress, and a status saying what it waits for. The phase says where the cluster is, so it stays,
 * except WaitingApproval: the revision got past approval, and the app is where it was before
 * (Ready at its good revision, or no phase).
 */
export function preChecking(s: AppState, p: { revision: string; progress: string; message: string; now: string }): AppState {
  const next = { ...s, pendingRevision: p.revision, preChecks: p.progress, message: p.message, updatedAt: p.now };
  if (next.phase !== "WaitingApproval") return next;
  const { phase: _, ...rest } = next;
  return rest.revision && rest.goodRevision === rest.revision ? { ...rest, phase: "Ready", revision: rest.revision, goodRevision: rest.goodRevision } : rest;
}

/**
 * A failed attempt at `revision` ("" when there was nothing to follow). `permanent`: retrying the
 * same revision cannot help, so it is held until the branch moves or the config changes.
 * Undefined when the status already says exactly this (a failing revision costs no write per cycle).
 */
export function failed(s: AppState, f: { revision: string; message: string; permanent: boolean; specHash: string; now: string; checks?: CheckOutcome[] }): AppState | undefined {
  const failedRevision = f.permanent ? f.revision : s.failedRevision;
  const failedSpec = f.permanent ? f.specHash : s.failedSpec;
  if (s.lastResult === "Failed" && s.attemptedRevision === f.revision && s.message === f.message && s.failedRevision === failedRevision && s.failedSpec === failedSpec && !s.preChecks) return undefined;
  const history = f.revision
    ? withRecord(s.history, { revision: f.revision, startedAt: f.now, finishedAt: f.now, result: "Failed", message: f.message.slice(0, 1000), checks: f.checks?.length ? f.checks : undefined })
    : s.history;
  // A failed attempt ends any pre-checks under way (of this revision, or of one it superseded).
  const common = { lastResult: "Failed" as const, attemptedRevision: f.revision, message: f.message, failedSpec, preChecks: undefined, updatedAt: f.now, history };
  if (s.phase === "Halted") return { ...s, ...common, failedRevision: f.permanent ? f.revision : s.failedRevision };
  return { ...s, ...common, failedRevision };
}

/** Written, not yet verified: recorded before the wait, so a restart resumes the wait instead of applying again. */
export function applied(
  s: AppState,
  a: { revision: string; branch?: string; inventory: InventoryEntry[]; hashKeyId: string; warnings?: string; changes: Record<string, number>; now: string; actedBy?: string },
): VerifyingState {
  return {
    ...s,
    ...(a.branch ? { branch: a.branch } : {}),
    revision: a.revision,
    attemptedRevision: a.revision,
    phase: "Verifying",
    pendingRevision: undefined,
    lastResult: "Applied",
    message: undefined,
    appliedAt: a.now,
    updatedAt: a.now,
    inventory: a.inventory,
    hashKeyId: a.hashKeyId,
    warnings: a.warnings,
    verifyStartedAt: a.now,
    healthyAt: undefined,
    verifyChecks: undefined,
    preChecks: undefined,
    rollbackFrom: undefined,
    rollbackCause: undefined,
    lastChanges: JSON.stringify(a.changes),
    actedBy: a.actedBy,
  };
}

/** Healthy and checks passed: the revision becomes the good one (where later rollbacks go). */
export function verified(s: VerifyingState, checks: CheckOutcome[], now: string): ReadyState {
  const history = withRecord(s.history, { revision: s.revision, startedAt: s.verifyStartedAt, finishedAt: now, result: "Applied", changes: parseChanges(s.lastChanges), checks: checks.length ? checks : undefined, ...byOf(s) });
  return { ...s, history, phase: "Ready", goodRevision: s.revision, lastResult: "Applied", message: undefined, failedRevision: undefined, failedSpec: undefined, verifyStartedAt: undefined, healthyAt: undefined, verifyChecks: undefined, updatedAt: now };
}

/** The failed verification, in history (what happens next, rollback or halt, comes after). */
export function verifyFailed(s: VerifyingState, cause: { message: string; checks: CheckOutcome[] }, now: string): VerifyingState {
  const rec: DeployRecord = { revision: s.revision, startedAt: s.verifyStartedAt, finishedAt: now, result: "Failed", changes: parseChanges(s.lastChanges), message: cause.message.slice(0, 1000), checks: cause.checks.length ? cause.checks : undefined, ...byOf(s) };
  return { ...s, history: withRecord(s.history, rec) };
}

/**
 * The failed revision's rollback re-applied the good one, which now waits for health (the wait a
 * restart resumes): Verifying at `good` since `now`, the failed revision already held.
 */
export function rollingBack(
  s: VerifyingState,
  r: { good: string; failedRevision: string; cause: string; inventory: InventoryEntry[]; hashKeyId: string; warnings?: string; changes: Record<string, number>; specHash: string; now: string },
): RollingBackState {
  return {
    ...s,
    phase: "Verifying",
    revision: r.good,
    goodRevision: r.good,
    inventory: r.inventory,
    hashKeyId: r.hashKeyId,
    warnings: r.warnings,
    verifyStartedAt: r.now,
    healthyAt: undefined,
    verifyChecks: undefined,
    lastChanges: JSON.stringify(r.changes),
    rollbackFrom: r.failedRevision,
    rollbackCause: r.cause.slice(0, 1000),
    lastResult: "Failed",
    failedRevision: r.failedRevision,
    failedSpec: r.specHash,
    message: `revision ${r.failedRevision.slice(0, 12)} failed (${r.cause}); rolling back to ${r.good.slice(0, 12)}`,
    updatedAt: r.now,
  };
}

/** The history record of a rollback that reached health: from its start, with its change counts and cause. */
export function rollbackRecord(s: RollingBackState, now: string): DeployRecord {
  return { revision: s.revision, startedAt: s.verifyStartedAt, finishedAt: now, result: "RolledBack", changes: parseChanges(s.lastChanges), cause: `${s.rollbackFrom}: ${s.rollbackCause ?? ""}`.slice(0, 1000) };
}

/** `failedRevision` stays where it is and needs a person: rollback is off, impossible, or failed too. */
export function halted(s: AppState, h: { failedRevision: string; message: string; specHash: string; now: string; record?: DeployRecord }): HaltedState {
  return { ...s, ...(h.record ? { history: withRecord(s.history, h.record) } : {}), phase: "Halted", lastResult: "Failed", message: h.message, failedRevision: h.failedRevision, failedSpec: h.specHash, verifyStartedAt: undefined, healthyAt: undefined, verifyChecks: undefined, rollbackFrom: undefined, rollbackCause: undefined, updatedAt: h.now };
}

/** Back at the good revision, healthy; the failed one is held until the branch moves. */
export function rolledBack(s: AppState, r: { good: string; failedRevision: string; message: string; specHash: string; now: string; record: DeployRecord }): ReadyState {
  return { ...s, history: withRecord(s.history, r.record), revision: r.good, goodRevision: r.good, phase: "Ready", lastResult: "RolledBack", message: r.message, failedRevision: r.failedRevision, failedSpec: r.specHash, verifyStartedAt: undefined, healthyAt: undefined, verifyChecks: undefined, rollbackFrom: undefined, rollbackCause: undefined, updatedAt: r.now };
}

/** Drift put back; the status says so unless it is about something else (a failure, a waiting approval). */
export function driftRepaired(s: AppState, inventory: InventoryEntry[], now: string): AppState {
  if (s.phase === "Halted" || s.phase === "WaitingApproval" || s.failedRevision) return { ...s, inventory, updatedAt: now };
  return { ...s, inventory, updatedAt: now, lastResult: "DriftRepaired", message: undefined };
}

/** Change-set counts without the zeros, as history records them. */
export function nonZero(s: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(s).filter(([, n]) => n > 0));
}

/** The record of a deploy someone asked for says who. */
function byOf(s: AppState): { by?: string } {
  return s.actedBy ? { by: s.actedBy } : {};
}

function parseChanges(s: string | undefined): Record<string, number> | undefined {
  if (!s) return undefined;
  try {
    return JSON.parse(s) as Record<string, number>;
  } catch {
    return undefined;
  }
}
