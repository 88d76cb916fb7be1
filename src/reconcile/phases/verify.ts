import type { CheckOutcome } from "../../checks/run.js";
import { AbortedError, describeHealth, waitHealthy } from "../../engine/health.js";
import type { VerifyingState } from "../../state/store.js";
import { isoNow } from "../clock.js";
import { msSince, type Cycle, type CycleResult } from "../cycle.js";
import { ChangeSet } from "../../engine/changeset.js";
import { verified } from "../transitions.js";
import { describeFailedCheck, runChecks } from "./checks.js";
import { errorMessage } from "./failure.js";
import { onVerifyFailure, VerifyFailure } from "./rollback.js";

/**
 * Health gating and post-checks of the applied revision (a restart resumes here, from the
 * Verifying state); Ready when they pass, rollback or halt when they fail.
 */
export async function verify(c: Cycle, state: VerifyingState, pre: CheckOutcome[] = []): Promise<CycleResult> {
  const rev = state.revision;
  const app = c.spec.config;
  const log = c.log.child({ revision: rev.slice(0, 12) });
  let checks: CheckOutcome[] = pre;
  try {
    const health = await waitHealthy(c.io.client, c.io.discovery, app.name, state.inventory, { timeoutMs: app.healthTimeoutMs, signal: c.signal });
    if (!health.healthy) throw new VerifyFailure(`health: ${describeHealth(health, app.healthTimeoutMs)}`, checks);
    const post = await runChecks(c, "post", app.checks.post, rev);
    checks = [...pre, ...post];
    const failedCheck = post.find((x) => !x.passed);
    if (failedCheck) throw new VerifyFailure(describeFailedCheck(failedCheck), checks);
  } catch (e) {
    if (e instanceof AbortedError) throw e;
    const cause = e instanceof VerifyFailure ? e : new VerifyFailure(errorMessage(e), checks);
    return onVerifyFailure(c, state, cause);
  }
  c.state = verified(state, checks, isoNow(c.clock));
  await c.save();
  c.forgetRenderedExcept(rev);
  log.info({ durationMs: msSince(c.started) }, "deployed: healthy" + (checks.length ? " and checks passed" : ""));
  c.emit("deployed", rev, "Applied");
  // On resume there is no change set of this cycle's own; moveTo puts the real one in.
  return { kind: "applied", revision: rev, changeSet: new ChangeSet() };
}
