import type { CheckOutcome } from "../../checks/run.js";
import { SyncError } from "../../engine/engine.js";
import { AbortedError, describeHealth, waitHealthy } from "../../engine/health.js";
import type { VerifyingState } from "../../state/store.js";
import { isoNow } from "../clock.js";
import type { Cycle, CycleResult } from "../cycle.js";
import { halted, nonZero, rolledBack, verifyFailed } from "../transitions.js";
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

/** The applied revision failed verification: back to the good revision, or halt when that cannot be. */
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
  try {
    const manifests = await c.render(good);
    // Previous inventory = what the failed revision applied: syncing the good set prunes what it added.
    const { engine, keyId } = await c.engine();
    const out = await engine.sync(c.syncRequest(manifests));
    c.state = { ...c.state, inventory: out.inventory, hashKeyId: keyId, warnings: warningsOf(out.changeSet) };
    const health = await waitHealthy(c.io.client, c.io.discovery, app.name, c.state.inventory, { timeoutMs: app.healthTimeoutMs, signal: c.signal });
    if (!health.healthy) throw new Error(`health: ${describeHealth(health, app.healthTimeoutMs)}`);
    const message = `revision ${rev.slice(0, 12)} failed (${cause.message}); rolled back to ${good.slice(0, 12)}`;
    const now = isoNow(c.clock);
    c.state = rolledBack(c.state, {
      good,
      failedRevision: rev,
      message,
      specHash: c.spec.hash,
      now,
      record: { revision: good, startedAt: rollbackStarted, finishedAt: now, result: "RolledBack", changes: nonZero(out.changeSet.summary()), cause: `${rev}: ${cause.message}`.slice(0, 1000) },
    });
    await c.save();
    log.warn({ changes: out.changeSet.summary() }, message);
    c.emit("rolledBack", good, "RolledBack", "VerifyFailed", message);
    return { kind: "rolledBack", revision: good, failedRevision: rev, message };
  } catch (e) {
    if (e instanceof AbortedError) throw e;
    if (e instanceof SyncError) c.state = { ...c.state, inventory: e.inventory };
    const message = `revision ${rev.slice(0, 12)} failed (${cause.message}); rollback to ${good.slice(0, 12)} failed too: ${errorMessage(e)}; the app is halted until the branch moves or plumber retry ${app.name}`;
    const now = isoNow(c.clock);
    c.state = halted(c.state, {
      failedRevision: rev,
      message,
      specHash: c.spec.hash,
      now,
      record: { revision: good, startedAt: rollbackStarted, finishedAt: now, result: "Failed", cause: `rollback after ${rev}`, message: errorMessage(e).slice(0, 1000) },
    });
    await c.save();
    log.error(message);
    c.emit("failed", rev, "Halted", "RollbackFailed", message);
    return { kind: "failed", revision: rev, message, permanent: true, ...reasonOf(e) };
  }
}
