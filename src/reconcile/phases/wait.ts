import { isoNow } from "../clock.js";
import type { Cycle, CycleResult } from "../cycle.js";
import { announced, awaitingApproval, holding } from "../transitions.js";
import { repairDrift } from "./drift.js";

/** A new revision that may not be applied yet: status says why (written once), drift is still repaired. */
export async function hold(c: Cycle, target: string, why: string, driftRepair: boolean): Promise<CycleResult> {
  let message = why;
  if (!announced(c.state, target, why)) {
    // Planned once (a dry-run, nothing written), so status shows what the revision would change.
    message += await c.planSummary(target);
    c.state = holding(c.state, target, message, isoNow(c.clock));
    await c.save();
    c.emit("held", target, "Held", undefined, message);
    c.log.info({ revision: target.slice(0, 12) }, message);
  } else message = c.state.message ?? why;
  const repaired = driftRepair ? await repairDrift(c) : ({ kind: "unchanged" } as const);
  return repaired.kind === "unchanged" ? { kind: "held", revision: target, message } : repaired;
}

/** Plans the revision (nothing written but status), records it as pending, and says so once. */
export async function awaitApproval(c: Cycle, target: string, why: string): Promise<CycleResult> {
  if (c.state.pendingRevision !== target || c.state.phase !== "WaitingApproval") {
    const message = why + (await c.planSummary(target));
    c.state = awaitingApproval(c.state, target, message, isoNow(c.clock));
    await c.save();
    c.emit("approvalNeeded", target, "WaitingApproval", undefined, message);
    c.log.info({ revision: target.slice(0, 12) }, message);
  }
  const repaired = await repairDrift(c);
  return repaired.kind === "unchanged" ? { kind: "held", revision: target, message: c.state.message ?? "" } : repaired;
}
