// Pre-checks and a rollback's health wait as state, their pure parts: what the transitions set and
// clear, which step a stored rollback wait takes, how pre-check progress is read, carried over to a
// newer commit that renders the same, or dropped for one that supersedes, and how checks stand by name.
import { describe, expect, it } from "vitest";
import type { CheckOutcome } from "../../src/checks/run.js";
import { applied, awaitingApproval, failed, halted, holding, nextStep, preChecking, rollbackRecord, rolledBack, rollingBack, verifyFailed } from "../../src/reconcile/transitions.js";
import { checksStanding, formatPreChecks, parsePreChecks, preCheckProgress, type PreCheckProgress } from "../../src/reconcile/verify-progress.js";
import { stateFromFields, type AppState, type VerifyingState } from "../../src/state/store.js";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);
const SPEC = "spec-1";
const T0 = "2026-03-10T10:00:00.000Z";
const T1 = "2026-03-10T10:05:00.000Z";

const ready: AppState = { app: "web", phase: "Ready", revision: A, goodRevision: A, inventory: [], history: [] };
const ok = (name: string): CheckOutcome => ({ name, phase: "pre", passed: true, object: `Job/ns/${name}`, reason: "Complete", message: "" });
const bad = (name: string): CheckOutcome => ({ ...ok(name), passed: false, reason: "Timeout" });
const progressB: PreCheckProgress = { revision: B, done: [ok("lint")], current: { name: "e2e", startedAt: T0 } };

describe("pre-check progress", () => {
  it("round-trips, and an unreadable or revision-less one is none", () => {
    expect(parsePreChecks(formatPreChecks(progressB))).toEqual(progressB);
    expect(parsePreChecks(formatPreChecks({ ...progressB, runsFor: A }))).toEqual({ ...progressB, runsFor: A });
    expect(parsePreChecks(undefined)).toBeUndefined();
    expect(parsePreChecks("{not json")).toBeUndefined();
    expect(parsePreChecks('{"done":[]}')).toBeUndefined();
  });
  it("goes on for the same revision; a newer commit supersedes it unless it renders the same, which takes the runs over", () => {
    expect(preCheckProgress(progressB, B, false)).toBe(progressB);
    expect(preCheckProgress(progressB, C, false)).toEqual({ revision: C, done: [] });
    expect(preCheckProgress(progressB, C, true)).toEqual({ ...progressB, revision: C, runsFor: B });
    // A chain of such commits keeps the runs of the revision they started for.
    expect(preCheckProgress({ ...progressB, revision: C, runsFor: B }, A, true)).toMatchObject({ revision: A, runsFor: B });
    expect(preCheckProgress(undefined, B, true)).toEqual({ revision: B, done: [] });
  });
  it("stands by name against the configured checks: done in config order, the next to look at, a failure ends them", () => {
    expect(checksStanding(["lint", "e2e"], { done: [] })).toEqual({ done: [], next: "lint" });
    expect(checksStanding(["lint", "e2e"], progressB)).toEqual({ done: [ok("lint")], next: "e2e" });
    expect(checksStanding(["lint", "e2e"], { done: [ok("e2e"), ok("lint")] })).toEqual({ done: [ok("lint"), ok("e2e")] });
    expect(checksStanding(["lint", "e2e"], { done: [bad("lint")] })).toEqual({ done: [bad("lint")] });
    // The config changed between two looks: a removed check is dropped, a new one is next.
    expect(checksStanding(["e2e", "smoke"], { done: [ok("lint"), ok("e2e")] })).toEqual({ done: [ok("e2e")], next: "smoke" });
  });
});

describe("pre-check transitions", () => {
  it("pending: the revision, progress and status set, the phase where the cluster is", () => {
    const s = preChecking(ready, { revision: B, progress: "p", message: "waits for pre-check e2e", now: T0 });
    expect(s).toMatchObject({ phase: "Ready", revision: A, pendingRevision: B, preChecks: "p", message: "waits for pre-check e2e", updatedAt: T0 });
    // Past approval: no longer WaitingApproval, back where it was (Ready at its good revision, or no phase).
    const approved = awaitingApproval(ready, B, "waits for approval", T0);
    expect(preChecking(approved, { revision: B, progress: "p", message: "m", now: T1 })).toMatchObject({ phase: "Ready", revision: A, goodRevision: A, pendingRevision: B });
    expect(preChecking(awaitingApproval({ app: "web", inventory: [], history: [] }, B, "w", T0), { revision: B, progress: "p", message: "m", now: T1 }).phase).toBeUndefined();
  });
  it("ends with the apply or a failure, survives a hold of the same revision only", () => {
    const p = preChecking(ready, { revision: B, progress: "p", message: "m", now: T0 });
    expect(applied(p, { revision: B, inventory: [], hashKeyId: "", changes: {}, now: T1 }).preChecks).toBeUndefined();
    const f = failed(p, { revision: B, message: "pre-check e2e failed", permanent: true, specHash: SPEC, now: T1 });
    expect(f).toMatchObject({ phase: "Ready", failedRevision: B, lastResult: "Failed" });
    expect(f?.preChecks).toBeUndefined();
    // The same failure already recorded, but a pre-check under way: still a change (the progress goes).
    expect(failed({ ...f!, preChecks: "p" }, { revision: B, message: "pre-check e2e failed", permanent: true, specHash: SPEC, now: T1 })?.preChecks).toBeUndefined();
    expect(holding(p, B, "waits for a sync window", T1).preChecks).toBe("p");
    expect(holding(p, C, "waits for a sync window", T1).preChecks).toBeUndefined();
    expect(awaitingApproval(p, C, "waits for approval", T1).preChecks).toBeUndefined();
  });
  it("loads only with the revision it belongs to", () => {
    expect(stateFromFields("web", { phase: "Ready", revision: A, goodRevision: A, pendingRevision: B, preChecks: "p" }, [], []).preChecks).toBe("p");
    expect(stateFromFields("web", { phase: "Ready", revision: A, goodRevision: A, preChecks: "p" }, [], []).preChecks).toBeUndefined();
  });
});

describe("a rollback's health wait", () => {
  const verifying: VerifyingState = { ...ready, phase: "Verifying", revision: B, verifyStartedAt: T0, lastChanges: '{"configured":1}' };
  const failedB = verifyFailed(verifying, { message: "health: timed out", checks: [] }, T1);
  const rolling = rollingBack(failedB, { good: A, failedRevision: B, cause: "health: timed out", inventory: [], hashKeyId: "k", changes: { configured: 1 }, specHash: SPEC, now: T1 });

  it("is Verifying at the good revision since the rollback began, the failed revision held", () => {
    expect(rolling).toMatchObject({ phase: "Verifying", revision: A, goodRevision: A, verifyStartedAt: T1, rollbackFrom: B, rollbackCause: "health: timed out", failedRevision: B, failedSpec: SPEC, lastResult: "Failed", lastChanges: '{"configured":1}' });
    expect(rolling.message).toBe(`revision ${B.slice(0, 12)} failed (health: timed out); rolling back to ${A.slice(0, 12)}`);
    expect(rolling.history[0]).toMatchObject({ revision: B, result: "Failed" });
  });
  it("is resumed while the failed revision is the target, also inline; a newer target is advanced to", () => {
    expect(nextStep(rolling, B, SPEC)).toEqual({ step: "verify", state: rolling });
    expect(nextStep(rolling, A, SPEC)).toEqual({ step: "verify", state: rolling });
    expect(nextStep(rolling, C, SPEC).step).toBe("advance");
  });
  it("ends Ready at the good revision with a record from its start, or Halted; either clears the wait", () => {
    const rec = rollbackRecord(rolling, "2026-03-10T10:06:00.000Z");
    expect(rec).toEqual({ revision: A, startedAt: T1, finishedAt: "2026-03-10T10:06:00.000Z", result: "RolledBack", changes: { configured: 1 }, cause: `${B}: health: timed out` });
    const r = rolledBack(rolling, { good: A, failedRevision: B, message: "rolled back", specHash: SPEC, now: T1, record: rec });
    expect(r).toMatchObject({ phase: "Ready", revision: A, lastResult: "RolledBack", failedRevision: B });
    expect([r.rollbackFrom, r.rollbackCause, r.verifyStartedAt]).toEqual([undefined, undefined, undefined]);
    const h = halted(rolling, { failedRevision: B, message: "rollback failed too", specHash: SPEC, now: T1 });
    expect([h.phase, h.rollbackFrom, h.rollbackCause]).toEqual(["Halted", undefined, undefined]);
  });
  it("loads as Verifying with its rollback, and a rollback field without Verifying is dropped", () => {
    const data = { phase: "Verifying", revision: A, goodRevision: A, verifyStartedAt: T1, rollbackFrom: B, rollbackCause: "c" };
    expect(stateFromFields("web", data, [], [])).toMatchObject({ phase: "Verifying", rollbackFrom: B, rollbackCause: "c" });
    const notVerifying = stateFromFields("web", { ...data, phase: "Ready" }, [], []);
    expect([notVerifying.phase, notVerifying.rollbackFrom, notVerifying.rollbackCause]).toEqual(["Ready", undefined, undefined]);
  });
});
