import { describe, expect, it } from "vitest";
import { AppBackoff, backoffMs, waves } from "../../src/reconcile/schedule.js";
import { deadlineOf, deadlinePassed, formatProgress, parseProgress } from "../../src/reconcile/verify-progress.js";

interface A {
  name: string;
  dependsOn: string[];
}
const app = (name: string, ...dependsOn: string[]): A => ({ name, dependsOn });
const names = (ws: A[][]): string[][] => ws.map((w) => w.map((a) => a.name));
const plan = (items: A[]): string[][] => names(waves(items, (a) => a.name, (a) => a.dependsOn));

describe("round waves", () => {
  it("puts independent apps in one wave, in the given order", () => {
    expect(plan([app("b"), app("a"), app("c")])).toEqual([["b", "a", "c"]]);
  });

  it("puts a dependent in the wave after its last dependency", () => {
    expect(plan([app("web", "db", "cache"), app("db"), app("cache", "db"), app("other")])).toEqual([["db", "other"], ["cache"], ["web"]]);
  });

  it("ignores dependencies outside the round (another repo, or backing off)", () => {
    expect(plan([app("web", "db"), app("api", "elsewhere")])).toEqual([["web", "api"]]);
  });

  it("terminates on a cycle and still schedules every app once", () => {
    const out = plan([app("a", "b"), app("b", "a"), app("c")]).flat();
    expect(out.sort()).toEqual(["a", "b", "c"]);
  });
});

describe("per-app backoff", () => {
  it("doubles up to 10 intervals, never beyond 10 min unless the interval is longer", () => {
    expect([0, 1, 2, 3, 4, 5].map((f) => backoffMs(1000, f))).toEqual([1000, 2000, 4000, 8000, 10000, 10000]);
    expect(backoffMs(120_000, 4)).toBe(600_000);
    expect(backoffMs(900_000, 3)).toBe(900_000);
  });

  it("makes a failing app sit out k-1 rounds at any jitter, and leaves its sibling alone", () => {
    let now = 0;
    const b = new AppBackoff(1000, () => now);
    b.record("bad", true);
    b.record("good", false);
    // Rounds come every 0.9–1.1 intervals: one round out after the first failure.
    now = 1100;
    expect([b.waiting("bad"), b.waiting("good")]).toEqual([true, false]);
    now = 1800;
    expect(b.waiting("bad")).toBe(false);
    b.record("bad", true);
    // 4 intervals: three rounds out (the latest at 3 × 1.1), back at the fourth (4 × 0.9).
    expect(b.count("bad")).toBe(2);
    now = 1800 + 3300;
    expect(b.waiting("bad")).toBe(true);
    now = 1800 + 3600;
    expect(b.waiting("bad")).toBe(false);
    b.record("bad", false);
    expect([b.count("bad"), b.waiting("bad")]).toEqual([0, false]);
  });
});

describe("verify deadlines and progress", () => {
  it("gives up at start + timeout, by the given clock", () => {
    const start = "2026-01-01T00:00:00.000Z";
    expect(deadlineOf(start, 300_000)).toBe(Date.parse("2026-01-01T00:05:00.000Z"));
    expect(deadlinePassed(new Date("2026-01-01T00:04:59.999Z"), start, 300_000)).toBe(false);
    expect(deadlinePassed(new Date("2026-01-01T00:05:00.000Z"), start, 300_000)).toBe(true);
  });

  it("treats an unreadable start as long ago (the wait ends rather than hangs)", () => {
    expect(deadlinePassed(new Date(0), "garbage", 1000)).toBe(false);
    expect(deadlinePassed(new Date(1000), "garbage", 1000)).toBe(true);
  });

  it("round-trips progress and starts over from a missing or broken one", () => {
    const p = { done: [{ name: "smoke", phase: "post" as const, passed: true, object: "Job/ns/x", reason: "Complete", message: "" }], current: { name: "e2e", startedAt: "2026-01-01T00:00:00.000Z" } };
    expect(parseProgress(formatProgress(p))).toEqual(p);
    expect(parseProgress(undefined)).toEqual({ done: [] });
    expect(parseProgress("{not json")).toEqual({ done: [] });
    expect(parseProgress('{"done":[],"current":{"name":"x"}}')).toEqual({ done: [] });
  });
});
