// The deploy state machine's pure parts: which step a cycle takes from the stored state, the
// target a pin or retry picks, and each phase transition (what it sets, what it clears).
import { describe, expect, it } from "vitest";
import { selectTarget } from "../../src/reconcile/target.js";
import { applied, awaitingApproval, driftRepaired, failed, halted, holding, nextStep, retried, rolledBack, verified, verifyFailed } from "../../src/reconcile/transitions.js";
import { HISTORY_LIMIT, type AppState, type HaltedState, type VerifyingState } from "../../src/state/store.js";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);
const SPEC = "spec-1";
const T0 = "2026-03-10T10:00:00.000Z";
const T1 = "2026-03-10T10:05:00.000Z";

const ready: AppState = { app: "web", phase: "Ready", revision: A, goodRevision: A, inventory: [], history: [] };
const verifying: VerifyingState = { ...ready, phase: "Verifying", revision: B, verifyStartedAt: T0, lastChanges: '{"configured":1}' };
const haltedAtB: HaltedState = { ...ready, phase: "Halted", failedRevision: B, failedSpec: SPEC, message: "rollback failed too" };

describe("the next step", () => {
  it("resumes a wait, stays halted, advances to a new revision, settles where it is", () => {
    expect(nextStep(verifying, B, SPEC)).toEqual({ step: "verify", state: verifying });
    // Verifying another revision than the target: the target is new.
    expect(nextStep(verifying, C, SPEC).step).toBe("advance");
    expect(nextStep(haltedAtB, B, SPEC)).toEqual({ step: "halted", state: haltedAtB });
    expect(nextStep(haltedAtB, C, SPEC).step).toBe("advance");
    expect(nextStep(ready, B, SPEC).step).toBe("advance");
    expect(nextStep(ready, A, SPEC).step).toBe("settle");
    expect(nextStep({ app: "web", inventory: [], history: [] }, A, SPEC).step).toBe("advance");
  });
  it("a revision that failed for good is held under the same config, tried again under another", () => {
    const failedB: AppState = { ...ready, failedRevision: B, failedSpec: SPEC, lastResult: "Failed" };
    expect(nextStep(failedB, B, SPEC).step).toBe("settle");
    expect(nextStep(failedB, B, "spec-2").step).toBe("advance");
  });
});

describe("target selection", () => {
  it("a pin wins over the head; a retry is acted on once", () => {
    expect(selectTarget(A, {}, ready)).toEqual({ revision: A, pinned: false });
    expect(selectTarget(A, { pinRevision: C }, ready)).toEqual({ revision: C, pinned: true });
    expect(selectTarget(undefined, {}, ready)).toEqual({ revision: undefined, pinned: false });
    expect(selectTarget(A, { retryAt: "r1" }, ready).retryAt).toBe("r1");
    expect(selectTarget(A, { retryAt: "r1" }, { ...ready, retryConsumed: "r1" }).retryAt).toBeUndefined();
  });
  it("retry forgets the failure and lifts a halt", () => {
    const r = retried(haltedAtB, "r1");
    expect(r.phase).toBeUndefined();
    expect(r).toMatchObject({ retryConsumed: "r1", revision: A, goodRevision: A });
    expect(r.failedRevision).toBeUndefined();
    expect(r.failedSpec).toBeUndefined();
    expect(nextStep(r, B, SPEC).step).toBe("advance");
    expect(retried(ready, "r2")).toMatchObject({ phase: "Ready", retryConsumed: "r2" });
  });
});

describe("transitions", () => {
  it("apply → Verifying: the revision, its inventory and counts, no pending revision or message", () => {
    const before: AppState = { ...ready, pendingRevision: B, message: "waits", lastResult: "Failed" };
    const inv = [{ key: "/ConfigMap/web/a", apiVersion: "v1", fp: "x" }];
    const v = applied(before, { revision: B, branch: "main", inventory: inv, hashKeyId: "k1", changes: { configured: 1 }, now: T0 });
    expect(v).toMatchObject({ phase: "Verifying", revision: B, attemptedRevision: B, branch: "main", verifyStartedAt: T0, appliedAt: T0, lastResult: "Applied", inventory: inv, hashKeyId: "k1", lastChanges: '{"configured":1}', goodRevision: A });
    expect(v.pendingRevision).toBeUndefined();
    expect(v.message).toBeUndefined();
    // No branch (a pin): the recorded branch stays.
    expect(applied({ ...ready, branch: "old" }, { revision: B, inventory: [], hashKeyId: "", changes: {}, now: T0 }).branch).toBe("old");
  });
  it("verified → Ready at a new good revision, with a history record from verifyStartedAt", () => {
    const r = verified({ ...verifying, failedRevision: C, failedSpec: SPEC }, [], T1);
    expect(r).toMatchObject({ phase: "Ready", revision: B, goodRevision: B, lastResult: "Applied" });
    expect(r.failedRevision).toBeUndefined();
    expect(r.verifyStartedAt).toBeUndefined();
    expect(r.history[0]).toEqual({ revision: B, startedAt: T0, finishedAt: T1, result: "Applied", changes: { configured: 1 }, checks: undefined });
  });
  it("a failed verify is recorded, then either halts or rolls back", () => {
    const f = verifyFailed(verifying, { message: "health: timed out", checks: [] }, T1);
    expect(f.history[0]).toMatchObject({ revision: B, result: "Failed", message: "health: timed out", startedAt: T0 });
    const h = halted(f, { failedRevision: B, message: "held", specHash: SPEC, now: T1 });
    expect(h).toMatchObject({ phase: "Halted", failedRevision: B, failedSpec: SPEC, lastResult: "Failed", message: "held", revision: B });
    expect(h.verifyStartedAt).toBeUndefined();
    const rb = rolledBack(f, { good: A, failedRevision: B, message: "rolled back", specHash: SPEC, now: T1, record: { revision: A, startedAt: T0, finishedAt: T1, result: "RolledBack" } });
    expect(rb).toMatchObject({ phase: "Ready", revision: A, goodRevision: A, failedRevision: B, lastResult: "RolledBack" });
    expect(rb.history.map((x) => x.result)).toEqual(["RolledBack", "Failed"]);
    expect(nextStep(rb, B, SPEC).step).toBe("settle");
  });
  it("a failure is written once: the same failure again is no change", () => {
    const once = failed(ready, { revision: B, message: "bad yaml", permanent: true, specHash: SPEC, now: T0 });
    expect(once).toMatchObject({ lastResult: "Failed", attemptedRevision: B, failedRevision: B, failedSpec: SPEC, phase: "Ready", updatedAt: T0 });
    expect(once?.history[0]).toMatchObject({ revision: B, result: "Failed", message: "bad yaml" });
    expect(failed(once as AppState, { revision: B, message: "bad yaml", permanent: true, specHash: SPEC, now: T1 })).toBeUndefined();
    // A transient failure leaves the revision free to be tried again.
    expect(failed(ready, { revision: B, message: "503", permanent: false, specHash: SPEC, now: T0 })?.failedRevision).toBeUndefined();
    // Nothing to follow: status only, no history record.
    expect(failed(ready, { revision: "", message: "branch gone", permanent: false, specHash: SPEC, now: T0 })?.history).toEqual([]);
    // Halted stays halted, at the revision that halted it unless the new failure is for good.
    expect(failed(haltedAtB, { revision: C, message: "503", permanent: false, specHash: SPEC, now: T0 })).toMatchObject({ phase: "Halted", failedRevision: B });
    expect(failed(haltedAtB, { revision: C, message: "bad", permanent: true, specHash: SPEC, now: T0 })).toMatchObject({ phase: "Halted", failedRevision: C });
  });
  it("history keeps the newest HISTORY_LIMIT records", () => {
    let s: AppState = ready;
    for (let i = 0; i < HISTORY_LIMIT + 5; i++) s = failed(s, { revision: B, message: `m${i}`, permanent: false, specHash: SPEC, now: T0 }) as AppState;
    expect(s.history).toHaveLength(HISTORY_LIMIT);
    expect(s.history[0]?.message).toBe(`m${HISTORY_LIMIT + 4}`);
  });
  it("waiting: a hold keeps the phase, approval sets WaitingApproval; drift repair keeps their message", () => {
    expect(holding(ready, B, "waits for a sync window", T0)).toMatchObject({ phase: "Ready", pendingRevision: B, message: "waits for a sync window", updatedAt: T0 });
    const w = awaitingApproval(ready, B, "waits for approval", T0);
    expect(w).toMatchObject({ phase: "WaitingApproval", pendingRevision: B });
    expect(driftRepaired(w, [], T1)).toMatchObject({ message: "waits for approval", updatedAt: T1 });
    expect(driftRepaired({ ...ready, message: "old", lastResult: "Applied" }, [], T1)).toMatchObject({ lastResult: "DriftRepaired", message: undefined });
    expect(driftRepaired(haltedAtB, [], T1)).toMatchObject({ phase: "Halted", message: "rollback failed too" });
  });
});

describe("who asked", () => {
  it("an apply someone asked for (dashboard approve, pin, retry) carries who into its history record; the next apply forgets it", () => {
    const asked = applied(ready, { revision: B, inventory: [], hashKeyId: "", changes: { configured: 1 }, now: T0, actedBy: "system:serviceaccount:ci:captain" });
    expect(verified(asked, [], T1).history[0]).toMatchObject({ revision: B, result: "Applied", by: "system:serviceaccount:ci:captain" });
    expect(verifyFailed(asked, { message: "unhealthy", checks: [] }, T1).history[0]).toMatchObject({ result: "Failed", by: "system:serviceaccount:ci:captain" });
    const next = applied(verified(asked, [], T1), { revision: C, inventory: [], hashKeyId: "", changes: {}, now: T1 });
    expect(verified(next, [], T1).history[0]).not.toHaveProperty("by");
  });
});
