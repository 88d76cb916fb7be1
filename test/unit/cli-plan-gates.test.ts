// `plumber plan` says what the gates say, one line each, beside the object plan.
import { describe, expect, it } from "vitest";
import { gateLines } from "../../src/actions/plan.js";
import type { AppState } from "../../src/state/store.js";

const A = "a".repeat(40);
const B = "b".repeat(40);
const ready: AppState = { app: "web", phase: "Ready", revision: A, goodRevision: A, inventory: [], history: [] };

describe("plan: gate verdicts", () => {
  it("one line per gate that does not pass; the approval line status already shows is not repeated", () => {
    const gates = [
      { gate: "signature", verdict: { verdict: "pass" as const } },
      { gate: "windows", verdict: { verdict: "hold" as const, message: `revision ${B.slice(0, 12)} waits for a sync window: outside the allow windows`, driftRepair: false } },
      { gate: "approval", verdict: { verdict: "approval" as const, message: `revision ${B.slice(0, 12)} waits for approval: plumber approve web ${B.slice(0, 12)}` } },
    ];
    expect(gateLines("web", { gates }, ready)).toEqual([
      `! web: windows: revision ${B.slice(0, 12)} waits for a sync window: outside the allow windows (drift is not repaired meanwhile)`,
      `! web: approval: revision ${B.slice(0, 12)} waits for approval: plumber approve web ${B.slice(0, 12)}`,
    ]);
    const waiting: AppState = { ...ready, phase: "WaitingApproval", pendingRevision: B };
    expect(gateLines("web", { gates }, waiting)).toHaveLength(1);
    expect(gateLines("web", { gates: [{ gate: "signature", verdict: { verdict: "refuse", message: "not signed", permanent: true, reason: "SignatureInvalid" } }], pinnedAt: A }, ready)).toEqual([
      `! web: pinned at ${A.slice(0, 12)}: this revision is not applied until plumber resume web`,
      "! web: signature: would refuse the revision (until the branch moves): not signed",
    ]);
    expect(gateLines("web", { gates: [] }, ready)).toEqual([]);
  });
});
