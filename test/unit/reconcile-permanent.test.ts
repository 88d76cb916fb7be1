// Permanent or transient is read from the errors' flags, set where the error happened, never
// from the wording of a message.
import { describe, expect, it } from "vitest";
import { ChangeSet } from "../../src/engine/changeset.js";
import { PlanError, SyncError } from "../../src/engine/engine.js";
import { failureFlags } from "../../src/engine/errors.js";
import { KubeApiError } from "../../src/kube/client.js";
import { errorReason, isPermanent } from "../../src/reconcile/phases/failure.js";
import { FileProblemError } from "../../src/types.js";

const kube = (status: number, reason: string, message = "m") => new KubeApiError(status, reason, message, "/x");

function planError(...entries: { message: string; transient?: true; reason?: string }[]): PlanError {
  const cs = new ChangeSet();
  cs.add({ key: "/ConfigMap/ns/ok", subject: "ConfigMap/ns/ok", action: "created" });
  for (const [i, e] of entries.entries()) cs.add({ key: `/ConfigMap/ns/c${i}`, subject: `ConfigMap/ns/c${i}`, action: "failed", ...e });
  return new PlanError("failed", cs);
}

describe("permanent failures", () => {
  it("the engine flags a failed entry from the error that failed it", () => {
    expect(failureFlags(kube(503, "ServiceUnavailable"))).toEqual({ transient: true, reason: "ServiceUnavailable" });
    expect(failureFlags(kube(429, "TooManyRequests"))).toEqual({ transient: true, reason: "TooManyRequests" });
    expect(failureFlags(kube(0, "ConnectionFailed"))).toEqual({ transient: true, reason: "ConnectionFailed" });
    expect(failureFlags(kube(422, "Invalid"))).toEqual({ reason: "Invalid" });
    expect(failureFlags(kube(500, "InternalError"))).toEqual({ transient: true, reason: "InternalError" });
    // A 500 without a reason: the object's own ("failed to create typed patch object"), not an outage.
    expect(failureFlags(kube(500, "Unknown"))).toEqual({ reason: "Unknown" });
    expect(failureFlags(new Error("InternalError: looks transient, is not a server answer"))).toEqual({});
  });
  it("a plan is permanent unless a failed entry (or the plan itself) was the server's fault", () => {
    expect(isPermanent(planError({ message: "Invalid: spec.x" }))).toBe(true);
    expect(isPermanent(planError({ message: "Invalid: spec.x" }, { message: "anything at all", transient: true }))).toBe(false);
    // The wording does not matter any more, only the flag.
    expect(isPermanent(planError({ message: "InternalError: webhook down" }))).toBe(true);
    expect(isPermanent(new PlanError("recording the intent failed", new ChangeSet(), { transient: true }))).toBe(false);
    expect(isPermanent(new PlanError("the revision has no objects", new ChangeSet()))).toBe(true);
  });
  it("bad files are permanent; server answers by their status; a sync cut short is not", () => {
    expect(isPermanent(new FileProblemError([{ file: "a.yaml", line: 1, message: "bad" }]))).toBe(true);
    expect(isPermanent(kube(422, "Invalid"))).toBe(true);
    expect(isPermanent(kube(500, "InternalError"))).toBe(false);
    expect(isPermanent(new SyncError("half written", new ChangeSet(), []))).toBe(false);
    expect(isPermanent(new Error("socket hang up"))).toBe(false);
  });
  it("the apiserver's reason behind a failure: the error's, a plan's cause, or the first failed entry's", () => {
    expect(errorReason(kube(0, "WriteRefused"))).toBe("WriteRefused");
    expect(errorReason(new PlanError("intent", new ChangeSet(), { transient: true, reason: "WriteRefused" }))).toBe("WriteRefused");
    expect(errorReason(planError({ message: "x" }, { message: "refused", transient: true, reason: "WriteRefused" }))).toBe("WriteRefused");
    const cs = new ChangeSet();
    cs.add({ key: "k", subject: "ConfigMap/ns/a", action: "failed", message: "m", reason: "Conflict" });
    expect(errorReason(new SyncError("half", cs, []))).toBe("Conflict");
    expect(errorReason(new Error("WriteRefused: only text"))).toBeUndefined();
    expect(errorReason(planError({ message: "no reason" }))).toBeUndefined();
  });
});
