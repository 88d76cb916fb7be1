import { describe, expect, it } from "vitest";
import { evaluateWindows, openUntil, type SyncWindow } from "../../src/windows/windows.js";

const w = (kind: "allow" | "deny", schedule: string, durationMs: number, extra: Partial<SyncWindow> = {}): SyncWindow => ({ kind, schedule, durationMs, timezone: "UTC", allowDriftRepair: true, ...extra });
const at = (iso: string) => new Date(iso);

describe("sync windows", () => {
  it("a window is open from each firing for its duration, in its time zone", () => {
    const nightly = w("allow", "0 2 * * *", 2 * 3600_000);
    expect(openUntil(nightly, at("2026-03-10T02:30:00Z"))?.toISOString()).toBe("2026-03-10T04:00:00.000Z");
    expect(openUntil(nightly, at("2026-03-10T04:00:00Z"))).toBeUndefined();
    expect(openUntil(nightly, at("2026-03-10T01:59:59Z"))).toBeUndefined();
    const berlin = w("allow", "0 2 * * *", 3600_000, { timezone: "Europe/Berlin" });
    expect(openUntil(berlin, at("2026-01-10T01:30:00Z"))).toBeDefined(); // 02:30 in Berlin
    expect(openUntil(berlin, at("2026-01-10T02:30:00Z"))).toBeUndefined();
  });
  it("deny wins; outside every allow window syncing waits; drift repair follows the flag", () => {
    const allow = w("allow", "0 9 * * 1-5", 8 * 3600_000);
    const freeze = w("deny", "0 12 * * *", 3600_000, { allowDriftRepair: false });
    expect(evaluateWindows([], at("2026-03-10T10:00:00Z"))).toEqual({ sync: true, driftRepair: true });
    expect(evaluateWindows([allow, freeze], at("2026-03-10T10:00:00Z")).sync).toBe(true); // Tuesday 10:00
    const denied = evaluateWindows([allow, freeze], at("2026-03-10T12:30:00Z"));
    expect(denied).toMatchObject({ sync: false, driftRepair: false, reason: expect.stringContaining("deny window") });
    const closed = evaluateWindows([allow], at("2026-03-14T10:00:00Z")); // Saturday
    expect(closed).toMatchObject({ sync: false, driftRepair: true, reason: "outside the allow windows (next opens at 2026-03-16T09:00:00.000Z)" });
  });
});
