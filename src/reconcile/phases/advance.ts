import type { Cycle, CycleResult } from "../cycle.js";
import { evaluateGates, firstBlock, type GateContext } from "../gates.js";
import { moveTo } from "./apply.js";
import { recordFailure } from "./failure.js";
import { awaitApproval, hold } from "./wait.js";

/** A new revision: the gates in order, then the phase the first verdict that does not pass leads to (or the apply). */
export async function advance(c: Cycle, gates: GateContext): Promise<CycleResult> {
  const rev = gates.target;
  const block = firstBlock(await evaluateGates(gates));
  if (!block) return moveTo(c, rev);
  const v = block.verdict;
  switch (v.verdict) {
    case "pass":
      return moveTo(c, rev);
    case "hold":
      return hold(c, rev, v.message, v.driftRepair);
    case "approval":
      return awaitApproval(c, rev, v.message);
    case "refuse":
      c.log.error({ revision: rev.slice(0, 12), gate: block.gate }, v.message);
      await recordFailure(c, rev, v.message, v.permanent);
      c.emit("failed", rev, v.reason, v.reason, v.message);
      return { kind: "failed", revision: rev, message: v.message, permanent: v.permanent };
  }
}
