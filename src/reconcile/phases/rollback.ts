import type { CheckOutcome } from "../../checks/run.js";
import { SyncError } from "../../engine/engine.js";
import { AbortedError, checkHealthOnce, describeHealth, waitHealthy, type HealthReport } from "../../engine/health.js";
import type { RollingBackState, VerifyingState } from "../../state/store.js";
import { isoNow } from "../clock.js";
import type { Cycle, CycleResult } from "../cycle.js";
import { halted, nonZero, rollbackRecord, rolledBack, rollingBack, verifyFailed } from "../transitions.js";
import { deadlineOf, deadlinePassed } from "../verify-progress.js";
import { warningsOf } from "../warnings.js";
import { errorMessage, reasonOf } from "./failure.js";

/** A deploy that went wrong after it was written: the cause, for history and rollback. */
export class VerifyFailure extends Error {
  constructor(
    message: string,
    readonly checks: CheckOutcome[],
  ) {
    super(message);
  }
}

/**
 * The applied revision failed verification: back to the good revision (re-applied, then its
 * health awaited: awaitRollback), or halt when that cannot be.
 */
export async function onVerifyFailure(c: Cycle, verifying: VerifyingState, cause: VerifyFailure): Promise<CycleResult> {
  const app = c.spec.config;
  const rev = verifying.revision;
  const log = c.log.child({ revision: rev.slice(0, 12) });
  const state = verifyFailed(verifying, cause, isoNow(c.clock));
  c.state = state;
  const good = state.goodRevision;
  if (app.rollback === "off" || !good || good === rev || c.pinned) {
    const why = app.rollback === "off" ? "rollback is off" : c.pinned ? "the app is pinned" : "there is no earlier good revision";
    const message = `${cause.message}; ${why}: revision ${rev.slice(0, 12)} stays applied and the app is held`;
    c.state = halted(state, { failedRevision: rev, message, specHash: c.spec.hash, now: isoNow(c.clock) });
    await c.save();
    log.error(message);
    c.emit("failed", rev, "Failed", "VerifyFailed", message);
    return { kind: "failed", revision: rev, message, permanent: true };
  }

  log.warn({ cause: cause.message, to: good.slice(0, 12) }, "deploy failed; rolling back to the last known good revision");
  const rollbackStarted = isoNow(c.clock);
  let rolling: RollingBackState;
  try {
    const manifests = await c.render(good);
    // Previous inventory = what the failed revision applied: syncing the good set prunes what it added.
    const { engine, keyId } = await c.engine();
    const out = await engine.sync(c.syncRequest(manifests));
    rolling = rollingBack(state, {
      good,
      failedRevision: rev,
      cause: cause.message,
      inventory: out.inventory,
      hashKeyId: keyId,
      warnings: warningsOf(out.changeSet),
      changes: nonZero(out.changeSet.summary()),
      specHash: c.spec.hash,
      now: rollbackStarted,
    });
    log.info({ changes: out.changeSet.summary() }, `rollback to ${good.slice(0, 12)} applied; waiting for its health`);
  } catch (e) {
    if (e instanceof AbortedError) throw e;
    if (e instanceof SyncError) c.state = { ...c.state, inventory: e.inventory };
    return rollbackFailed(c, { rev, good, cause: cause.message, startedAt: rollbackStarted }, e);
  }
  c.state = rolling;
  // Recorded before the health wait, so a restart resumes the rollback's wait rather than the failed revision's.
  await c.save();
  return awaitRollback(c, rolling);
}

/**
 * The health wait of a rollback (a restart resumes it from the Verifying state): Ready at the good
 * revision when healthy, Halted when it is not. With c.deferWaits one look per cycle, until its
 * deadline (verifyStartedAt, the rollback's start, + health.timeout by the cycle's clock).
 */
export async function awaitRollback(c: Cycle, state: RollingBackState): Promise<CycleResult> {
  const app = c.spec.config;
  const good = state.revision;
  const rev = state.rollbackFrom;
  const cause = state.rollbackCause ?? "";
  const log = c.log.child({ revision: rev.slice(0, 12) });
  const attempt = { rev, good, cause, startedAt: state.verifyStartedAt };
  let health: HealthReport;
  try {
    if (c.deferWaits) {
      const over = deadlinePassed(c.clock.now(), state.verifyStartedAt, app.healthTimeoutMs);
      const look = await checkHealthOnce(c.io.client, c.io.discovery, app.name, state.inventory, { deadlinePassed: over });
      if (!look) {
        const message = `rolling back from ${rev.slice(0, 12)}: waiting for the health of ${good.slice(0, 12)} until ${new Date(deadlineOf(state.verifyStartedAt, app.healthTimeoutMs)).toISOString()}`;
        log.debug(message);
        return { kind: "verifying", revision: good, message };
      }
      health = look;
    } else {
      health = await waitHealthy(c.io.client, c.io.discovery, app.name, state.inventory, { timeoutMs: app.healthTimeoutMs, signal: c.signal });
    }
  } catch (e) {
    if (e instanceof AbortedError) throw e;
    return rollbackFailed(c, attempt, e);
  }
  if (!health.healthy) return rollbackFailed(c, attempt, new Error(`health: ${describeHealth(health, app.healthTimeoutMs)}`));
  const message = `revision ${rev.slice(0, 12)} failed (${cause}); rolled back to ${good.slice(0, 12)}`;
  const now = isoNow(c.clock);
  c.state = rolledBack(state, { good, failedRevision: rev, message, specHash: c.spec.hash, now, record: rollbackRecord(state, now) });
  await c.save();
  log.warn(message);
  c.emit("rolledBack", good, "RolledBack", "VerifyFailed", message);
  return { kind: "rolledBack", revision: good, failedRevision: rev, message };
}

/** The rollback failed too (its sync or its health): halted until the branch moves or `plumber retry`. */
async function rollbackFailed(c: Cycle, a: { rev: string; good: string; cause: string; startedAt: string }, e: unknown): Promise<CycleResult> {
  const app = c.spec.config;
  const message = `revision ${a.rev.slice(0, 12)} failed (${a.cause}); rollback to ${a.good.slice(0, 12)} failed too: ${errorMessage(e)}; the app is halted until the branch moves or plumber retry ${app.name}`;
  const now = isoNow(c.clock);
  // As it always was: the halted state names the failed revision, with what the rollback left applied.
  c.state = halted({ ...c.state, revision: a.rev }, {
    failedRevision: a.rev,
    message,
    specHash: c.spec.hash,
    now,
    record: { revision: a.good, startedAt: a.startedAt, finishedAt: now, result: "Failed", cause: `rollback after ${a.rev}`, message: errorMessage(e).slice(0, 1000) },
  });
  await c.save();
  c.log.child({ revision: a.rev.slice(0, 12) }).error(message);
  c.emit("failed", a.rev, "Halted", "RollbackFailed", message);
  return { kind: "failed", revision: a.rev, message, permanent: true, ...reasonOf(e) };
}
