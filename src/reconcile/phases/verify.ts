import type { CheckOutcome } from "../../checks/run.js";
import { AbortedError, checkHealthOnce, describeHealth, waitHealthy, type SeenObjects } from "../../engine/health.js";
import type { VerifyingState } from "../../state/store.js";
import { isoNow } from "../clock.js";
import { msSince, type Cycle, type CycleResult } from "../cycle.js";
import { ChangeSet } from "../../engine/changeset.js";
import { verified } from "../transitions.js";
import { deadlineOf, deadlinePassed, formatProgress, parseProgress, type CheckProgress } from "../verify-progress.js";
import { checkObjectOf, describeFailedCheck, lookAtCheck, pruneChecks, runChecks } from "./checks.js";
import { errorMessage } from "./failure.js";
import { awaitRollback, onVerifyFailure, VerifyFailure } from "./rollback.js";

/**
 * Health gating and post-checks of the applied revision (a restart resumes here, from the
 * Verifying state); Ready when they pass, rollback or halt when they fail; a Verifying rollback
 * waits for the good revision's health. With c.deferWaits
 * each cycle looks once and the app stays Verifying until a verdict or a deadline.
 */
export async function verify(c: Cycle, state: VerifyingState, pre: CheckOutcome[] = [], seen?: SeenObjects, unsaved = false): Promise<CycleResult> {
  if (state.rollbackFrom) return awaitRollback(c, { ...state, rollbackFrom: state.rollbackFrom });
  if (c.deferWaits) return verifyStep(c, state, pre, seen, unsaved);
  const app = c.spec.config;
  let checks: CheckOutcome[] = pre;
  try {
    const health = await waitHealthy(c.io.client, c.io.discovery, app.name, state.inventory, { timeoutMs: app.healthTimeoutMs, signal: c.signal, seen });
    if (!health.healthy) throw new VerifyFailure(`health: ${describeHealth(health, app.healthTimeoutMs)}`, checks);
    const post = await runChecks(c, "post", app.checks.post, state.revision);
    checks = [...pre, ...post];
    const failedCheck = post.find((x) => !x.passed);
    if (failedCheck) throw new VerifyFailure(describeFailedCheck(failedCheck), checks);
  } catch (e) {
    if (e instanceof AbortedError) throw e;
    const cause = e instanceof VerifyFailure ? e : new VerifyFailure(errorMessage(e), checks);
    return onVerifyFailure(c, state, cause);
  }
  return passed(c, state, checks);
}

/**
 * One look of a verify that waits across cycles: health once (until it passes), then each
 * post-check in turn, created once and read once per cycle. The deadlines come from the state
 * (verifyStartedAt, the running check's startedAt) and the cycle's clock, so a restart resumes.
 */
async function verifyStep(c: Cycle, state: VerifyingState, pre: CheckOutcome[], seen: SeenObjects | undefined, unsaved: boolean): Promise<CycleResult> {
  const app = c.spec.config;
  const rev = state.revision;
  let progress = parseProgress(state.verifyChecks);
  if (pre.length && progress.done.length === 0) progress = { done: [...pre] };
  let at = state;
  try {
    if (!at.healthyAt) {
      const over = deadlinePassed(c.clock.now(), at.verifyStartedAt, app.healthTimeoutMs);
      const health = await checkHealthOnce(c.io.client, c.io.discovery, app.name, at.inventory, { deadlinePassed: over, seen });
      if (!health) return pending(c, at, progress, unsaved, `waiting for health until ${new Date(deadlineOf(at.verifyStartedAt, app.healthTimeoutMs)).toISOString()}`);
      if (!health.healthy) throw new VerifyFailure(`health: ${describeHealth(health, app.healthTimeoutMs)}`, progress.done);
      at = { ...at, healthyAt: isoNow(c.clock) };
    }
    const posts = app.checks.post;
    for (let i = progress.done.filter((o) => o.phase === "post").length; i < posts.length; i++) {
      const check = posts[i]!;
      const obj = await checkObjectOf(c, "post", check, rev);
      const { running: current, out } = await lookAtCheck(c, "post", check, obj, progress.current);
      progress = { ...progress, current };
      if (!out) return pending(c, at, progress, unsaved, `post-check ${check.name} running until ${new Date(deadlineOf(current.startedAt, check.timeoutMs)).toISOString()}`);
      progress = { done: [...progress.done, out] };
      if (!out.passed) throw new VerifyFailure(describeFailedCheck(out), progress.done);
    }
    if (posts.length) await pruneChecks(c);
  } catch (e) {
    if (e instanceof AbortedError) throw e;
    const cause = e instanceof VerifyFailure ? e : new VerifyFailure(errorMessage(e), progress.done);
    return onVerifyFailure(c, at, cause);
  }
  return passed(c, at, progress.done);
}

/** Still verifying: the progress is saved when it moved (a cycle that only looked writes nothing), or the apply's Verifying was never saved. */
async function pending(c: Cycle, at: VerifyingState, progress: CheckProgress, unsaved: boolean, message: string): Promise<CycleResult> {
  const next: VerifyingState = { ...at, verifyChecks: progress.done.length || progress.current ? formatProgress(progress) : undefined };
  if (unsaved || next.healthyAt !== c.state.healthyAt || next.verifyChecks !== c.state.verifyChecks) {
    c.state = next;
    await c.save();
  }
  c.log.debug({ revision: at.revision.slice(0, 12) }, message);
  return { kind: "verifying", revision: at.revision, message };
}

async function passed(c: Cycle, state: VerifyingState, checks: CheckOutcome[]): Promise<CycleResult> {
  const rev = state.revision;
  c.state = verified(state, checks, isoNow(c.clock));
  await c.save();
  c.forgetRenderedExcept(rev);
  c.log.child({ revision: rev.slice(0, 12) }).info({ durationMs: msSince(c.started) }, "deployed: healthy" + (checks.length ? " and checks passed" : ""));
  c.emit("deployed", rev, "Applied");
  // On resume there is no change set of this cycle's own; moveTo puts the real one in.
  return { kind: "applied", revision: rev, changeSet: new ChangeSet() };
}
