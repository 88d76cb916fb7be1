// Permanent or transient is read from the errors' flags, set where the error happened, never
// from the wording of a message.
import { describe, expect, it } from "vitest";
import { ChangeSet } from "../../src/engine/changeset.js";
import { PlanError, SyncError } from "../../src/engine/engine.js";
import { transientFlag } from "../../src/engine/errors.js";
import { KubeApiError } from "../../src/kube/client.js";
import { isPermanent } from "../../src/reconcile/phases/failure.js";
import { FileProblemError } from "../../src/types.js";

const kube = (status: number, reason: string, message = "m") => new KubeApiError(status, reason, message, "/x");

function planError(...entries: { message: string; transient?: true }[]): PlanError {
  const cs = new ChangeSet();
  cs.add({ key: "/ConfigMap/ns/ok", subject: "ConfigMap/ns/ok", action: "created" });
  for (const [i, e] of entries.entries()) cs.add({ key: `/ConfigMap/ns/c${i}`, subject: `ConfigMap/ns/c${i}`, action: "failed", ...e });
  return new PlanError("failed", cs);
}

describe("permanent failures", () => {
  it("the engine flags a failed entry from the error that failed it", () => {
    expect(transientFlag(kube(503, "ServiceUnavailable"))).toEqual({ transient: true });
    expect(transientFlag(kube(429, "TooManyRequests"))).toEqual({ transient: true });
    expect(transientFlag(kube(0, "ConnectionFailed"))).toEqual({ transient: true });
    expect(transientFlag(kube(422, "Invalid"))).toEqual({});
    expect(transientFlag(new Error("InternalError: looks transient, is not a server answer"))).toEqual({});
  });
  it("a plan is permanent unless a failed entry (or the plan itself) was the server's fault", () => {
    expect(isPermanent(planError({ message: "Invalid: spec.x" }))).toBe(true);
    expect(isPermanent(planError({ message: "Invalid: spec.x" }, { message: "anything at all", transient: true }))).toBe(false);
    // The wording does not matter any more, only the flag.
    expect(isPermanent(planError({ message: "InternalError: webhook down" }))).toBe(true);
    expect(isPermanent(new PlanError("recording the intent failed", new ChangeSet(), true))).toBe(false);
    expect(isPermanent(new PlanError("the revision has no objects", new ChangeSet()))).toBe(true);
  });
  it("bad files are permanent; server answers by their status; a sync cut short is not", () => {
    expect(isPermanent(new FileProblemError([{ file: "a.yaml", line: 1, message: "bad" }]))).toBe(true);
    expect(isPermanent(kube(422, "Invalid"))).toBe(true);
    expect(isPermanent(kube(500, "InternalError"))).toBe(false);
    expect(isPermanent(new SyncError("half written", new ChangeSet(), []))).toBe(false);
    expect(isPermanent(new Error("socket hang up"))).toBe(false);
  });
});
