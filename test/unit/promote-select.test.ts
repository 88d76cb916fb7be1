import { describe, expect, it } from "vitest";
import { describeSelection, selectCandidate } from "../../src/promote/select.js";
import type { AppState, DeployRecord } from "../../src/state/store.js";

const H = 3_600_000;
const T0 = Date.parse("2026-12-01T00:00:00.000Z");
const at = (h: number): string => new Date(T0 + h * H).toISOString();
const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);

const applied = (revision: string, start: number, end: number): DeployRecord => ({ revision, startedAt: at(start), finishedAt: at(end), result: "Applied" });
const failedPost = (revision: string, start: number, end: number): DeployRecord => ({
  revision,
  startedAt: at(start),
  finishedAt: at(end),
  result: "Failed",
  message: "post-check smoke failed",
  checks: [{ name: "smoke", phase: "post", passed: false, object: "Job/ci/smoke", reason: "Failed", message: "exit 1" }],
});
const rolledBack = (good: string, from: string, start: number, end: number): DeployRecord => ({ revision: good, startedAt: at(start), finishedAt: at(end), result: "RolledBack", cause: `${from}: post-check smoke failed` });

function ready(revision: string, history: DeployRecord[]): AppState {
  return { app: "nightly", phase: "Ready", revision, goodRevision: revision, branch: "main", inventory: [], history };
}

describe("promotion candidate selection", () => {
  it("the newest revision good for the soak, with when it became good and when it had soaked", () => {
    const s = selectCandidate("nightly", ready(A, [applied(A, 0, 1)]), new Date(T0 + 30 * H), 24 * H);
    expect(s).toMatchObject({ revision: A, branch: "main", goodAt: at(1), soakedAt: at(25), soakedMs: 29 * H, skipped: [] });
  });

  it("a newer revision still soaking is skipped, saying how far it is and until when; the older one is promoted", () => {
    // A good at 1h, replaced by B at 30h (A soaked 29h), B good since 30.5h; now 32.5h.
    const s = selectCandidate("nightly", ready(B, [applied(B, 30, 30.5), applied(A, 0, 1)]), new Date(T0 + 32.5 * H), 24 * H);
    expect(s.revision).toBe(A);
    expect(s.skipped).toEqual([{ revision: B, why: `soaked 2h of 24h on nightly (until ${at(54.5)})`, soakedAt: at(54.5) }]);
    expect(describeSelection("nightly", s, 24 * H)).toBe(
      `promoted from nightly: ${A.slice(0, 12)} good there since ${at(1)}, soaked 24h at ${at(25)}; skipped newer: ${B.slice(0, 12)} (soaked 2h of 24h on nightly (until ${at(54.5)}))`,
    );
  });

  it("soak ends when the next revision starts, not now: a revision replaced early never qualifies", () => {
    const s = selectCandidate("nightly", ready(B, [applied(B, 30, 31), applied(A, 28, 29)]), new Date(T0 + 100 * H), 24 * H);
    expect(s.revision).toBe(B);
    const t = selectCandidate("nightly", ready(B, [applied(B, 30, 31), applied(A, 28, 29)]), new Date(T0 + 40 * H), 24 * H);
    expect(t.revision).toBeUndefined();
    expect(t.skipped.map((k) => k.why)).toEqual([`soaked 9h of 24h on nightly (until ${at(55)})`, "soaked 1h of 24h on nightly before a newer revision replaced it"]);
    expect(t.reason).toBe("no revision in nightly's last 2 deploys has run good there for 24h");
  });

  it("never a revision that failed on the source or was rolled back from there, even with an Applied record", () => {
    // B applied and good, later re-applied and failed its post-check: rolled back to A.
    const history = [rolledBack(A, B, 50, 50.2), failedPost(B, 49, 50), applied(B, 2, 3), applied(A, 0, 1)];
    const s = selectCandidate("nightly", ready(A, history), new Date(T0 + 100 * H), 0);
    expect(s.revision).toBe(A);
    expect(s.skipped).toEqual([{ revision: B, why: "failed post-check smoke on nightly" }]);
    const r = selectCandidate("nightly", ready(A, [rolledBack(A, C, 10, 10.2), applied(C, 5, 6), applied(A, 0, 1)]), new Date(T0 + 100 * H), 0);
    expect(r.revision).toBe(A);
    expect(r.skipped).toEqual([{ revision: C, why: "rolled back on nightly" }]);
  });

  it("the revision being verified on the source, with no record yet, is skipped and ends the current one's soak", () => {
    const st: AppState = { app: "nightly", phase: "Verifying", revision: B, verifyStartedAt: at(10), branch: "main", inventory: [], history: [applied(A, 0, 1)] };
    const s = selectCandidate("nightly", st, new Date(T0 + 30 * H), 24 * H);
    expect(s.revision).toBeUndefined();
    expect(s.skipped).toEqual([
      { revision: B, why: `being verified on nightly since ${at(10)}` },
      { revision: A, why: "soaked 9h of 24h on nightly before a newer revision replaced it" },
    ]);
    expect(selectCandidate("nightly", st, new Date(T0 + 30 * H), 9 * H).revision).toBe(A);
  });

  it("a source with no state or no history: nothing, and why", () => {
    expect(selectCandidate("nightly", undefined, new Date(T0), 0)).toEqual({ skipped: [], reason: "nightly has no state in its cluster yet (never deployed)" });
    expect(selectCandidate("nightly", { app: "nightly", inventory: [], history: [] }, new Date(T0), 0).reason).toBe("nightly has deployed nothing yet");
    expect(describeSelection("nightly", selectCandidate("nightly", undefined, new Date(T0), 0), 0)).toBe("promotion from nightly: nothing to promote yet: nightly has no state in its cluster yet (never deployed)");
  });

  it("a pre-apply failure of a newer revision is a Failed record: it ends the soak and is never promoted", () => {
    const pre: DeployRecord = { revision: B, startedAt: at(5), finishedAt: at(5), result: "Failed", message: "render failed: bad.yaml:3: mapping values\nmore" };
    const s = selectCandidate("nightly", ready(A, [pre, applied(A, 0, 1)]), new Date(T0 + 30 * H), 4 * H);
    expect(s.revision).toBe(A);
    expect(s.skipped).toEqual([{ revision: B, why: "failed on nightly: render failed: bad.yaml:3: mapping values" }]);
  });
});
