// Stored state is loaded as a phase with its fields; the ConfigMap format is the one older
// plumbers wrote, and a phase whose fields are missing is not trusted.
import { describe, expect, it } from "vitest";
import { stateFromFields } from "../../src/state/store.js";

const A = "a".repeat(40);
const B = "b".repeat(40);

describe("state phases", () => {
  it("loads each phase with what it needs, from the fields older plumbers wrote", () => {
    expect(stateFromFields("web", { phase: "Verifying", revision: B, verifyStartedAt: "t0", goodRevision: A }, [], [])).toMatchObject({ phase: "Verifying", revision: B, verifyStartedAt: "t0", goodRevision: A });
    expect(stateFromFields("web", { phase: "Ready", revision: A, goodRevision: A }, [], [])).toMatchObject({ phase: "Ready", revision: A });
    expect(stateFromFields("web", { phase: "WaitingApproval", pendingRevision: B, revision: A }, [], [])).toMatchObject({ phase: "WaitingApproval", pendingRevision: B });
    expect(stateFromFields("web", { phase: "Halted", failedRevision: B, message: "x" }, [], [])).toMatchObject({ phase: "Halted", failedRevision: B, message: "x" });
    expect(stateFromFields("web", {}, [], [])).toEqual({ app: "web", inventory: [], history: [] });
    // Empty values are absent, as save() leaves them out.
    expect(stateFromFields("web", { revision: "", message: "" }, [], [])).toEqual({ app: "web", inventory: [], history: [] });
  });
  it("a Verifying state without its start time still resumes (from when it was applied)", () => {
    expect(stateFromFields("web", { phase: "Verifying", revision: B, appliedAt: "t1" }, [], [])).toMatchObject({ phase: "Verifying", verifyStartedAt: "t1" });
  });
  it("a phase without the fields it needs is dropped; an unknown phase too", () => {
    expect(stateFromFields("web", { phase: "Verifying" }, [], []).phase).toBeUndefined();
    expect(stateFromFields("web", { phase: "Ready", revision: A }, [], []).phase).toBeUndefined();
    expect(stateFromFields("web", { phase: "WaitingApproval" }, [], []).phase).toBeUndefined();
    expect(stateFromFields("web", { phase: "Halted", message: "x" }, [], []).phase).toBeUndefined();
    expect(stateFromFields("web", { phase: "Paused", revision: A }, [], [])).toEqual({ app: "web", revision: A, inventory: [], history: [] });
    // A halt without a message says so.
    expect(stateFromFields("web", { phase: "Halted", failedRevision: B }, [], [])).toMatchObject({ message: "halted" });
  });
});
