import type { ChangeSet } from "../../engine/changeset.js";
import { PlanError, SyncError } from "../../engine/engine.js";
import type { SeenObjects } from "../../engine/health.js";
import type { VerifyingState } from "../../state/store.js";
import type { Manifest } from "../../types.js";
import { FileProblemError } from "../../types.js";
import { isoNow } from "../clock.js";
import { msSince, type Cycle, type CycleResult } from "../cycle.js";
import { applied, nonZero } from "../transitions.js";
import { warningsOf } from "../warnings.js";
import { describeFailedCheck } from "./checks.js";
import { errorMessage, isPermanent, reasonOf, recordFailure } from "./failure.js";
import { preChecks } from "./prechecks.js";
import { verify } from "./verify.js";

/** A revision the gates let through: render, pre-checks (or, deferred, one look at them), sync (→ Verifying), then verify. */
export async function moveTo(c: Cycle, head: string): Promise<CycleResult> {
  const log = c.log.child({ revision: head.slice(0, 12) });
  // The LIST of what the app has runs while the revision is fetched and parsed: for a known app
  // (a first apply has nothing to list) without pre-checks (a check may run for minutes, and the
  // plan must not stand on a LIST that old).
  const early = c.state.inventory.length > 0 && c.spec.config.checks.pre.length === 0;
  const prefetched = early ? (await c.engine(false)).engine.prefetchLive(c.spec.config.name, c.state.inventory) : undefined;
  let manifests: Manifest[];
  try {
    manifests = await c.render(head);
  } catch (e) {
    const permanent = e instanceof FileProblemError;
    const message = errorMessage(e);
    log.error({ err: message }, "revision failed to render; keeping the last good revision");
    await recordFailure(c, head, message, permanent);
    c.emit("failed", head, "RenderFailed", "RenderFailed", message);
    return { kind: "failed", revision: head, message, permanent };
  }

  const checked = await preChecks(c, head);
  if (checked.waiting) return checked.waiting;
  const pre = checked.outcomes;
  const preFailed = pre.find((x) => !x.passed);
  if (preFailed) {
    const message = `${describeFailedCheck(preFailed)}; nothing applied`;
    log.error({ checks: pre }, message);
    await recordFailure(c, head, message, true, pre);
    c.emit("failed", head, "PreCheckFailed", preFailed.reason, message);
    return { kind: "failed", revision: head, message, permanent: true };
  }

  let changeSet: ChangeSet;
  let verifying: VerifyingState;
  let seen: SeenObjects | undefined;
  // Recorded before the wait, so a restart resumes the wait instead of applying again. Looked at
  // once per round with no post-check, the first look decides before anything is waited for: its
  // save (Ready, or Verifying when health is not there yet) is the only one, and a restart before
  // it syncs again, which writes nothing new (the dry-run finds it applied).
  const unsaved = c.deferWaits === true && c.spec.config.checks.post.length === 0;
  try {
    const { engine, keyId } = await c.engine();
    const out = await engine.sync({ ...c.syncRequest(manifests), ...(prefetched ? { prefetched } : {}) });
    changeSet = out.changeSet;
    seen = out.seen;
    verifying = applied(c.state, {
      revision: head,
      branch: c.followed && !c.pinned ? c.followed : undefined,
      inventory: out.inventory,
      hashKeyId: keyId,
      warnings: warningsOf(out.changeSet),
      changes: nonZero(out.changeSet.summary()),
      now: isoNow(c.clock),
      actedBy: c.actor,
    });
    c.state = verifying;
    if (!unsaved) await c.save();
    log.info({ changes: out.changeSet.summary(), durationMs: msSince(c.started) }, `applied: ${out.changeSet.toString()}`);
    if (c.state.warnings) log.warn({ warnings: c.state.warnings.split("\n") }, "the apiserver warned about this revision");
  } catch (e) {
    if (e instanceof SyncError || e instanceof PlanError) c.state = { ...c.state, warnings: warningsOf(e.changeSet) ?? c.state.warnings };
    if (e instanceof SyncError) c.state = { ...c.state, inventory: e.inventory };
    const permanent = isPermanent(e);
    const message = errorMessage(e);
    log.error({ err: message, permanent, durationMs: msSince(c.started) }, "reconcile failed");
    await recordFailure(c, head, message, permanent, pre);
    c.emit("failed", head, "ApplyFailed", e instanceof PlanError ? "PlanFailed" : "ApplyFailed", message);
    return { kind: "failed", revision: head, message, permanent, ...reasonOf(e) };
  }
  // The first health look stands on what the sync saw of the objects it did not write.
  const done = await verify(c, verifying, pre, seen, unsaved);
  return done.kind === "applied" || done.kind === "verifying" ? { ...done, changeSet } : done;
}
