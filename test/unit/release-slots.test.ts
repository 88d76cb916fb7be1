// Slot math with a controlled clock: every "now" is given, nothing reads the real time.
import { describe, expect, it } from "vitest";
import { runName } from "../../src/releases/runs.js";
import { CronSchedule, decideSlots, formatInZone, MAX_COUNTED_SLOTS, slotId } from "../../src/releases/slots.js";

const d = (iso: string): Date => new Date(iso);
const iso = (x: Date | undefined): string | undefined => x?.toISOString();

/**
 * A scheduler's view over time: ticks every `stepMs` from `from` to `to`, firing like the real one
 * (the fired or missed slot becomes lastSlot). Returns the fired slots and the instants they fired.
 */
function simulate(s: CronSchedule, from: string, to: string, stepMs: number, catchUpMs?: number): { slot: string; at: string }[] {
  let after = d(from);
  const fired: { slot: string; at: string }[] = [];
  for (let t = d(from).getTime(); t <= d(to).getTime(); t += stepMs) {
    const now = new Date(t);
    const dec = decideSlots(s, after, now, catchUpMs);
    if (dec.fire) fired.push({ slot: dec.fire.toISOString(), at: now.toISOString() });
    if (dec.newest) after = dec.newest;
  }
  return fired;
}

describe("slot math", () => {
  it("fires at the slot, not before, and says when the next one comes", () => {
    const s = new CronSchedule("0 2 * * *");
    const last = d("2026-11-20T02:00:00Z");
    expect(decideSlots(s, last, d("2026-11-21T01:59:59.999Z"))).toEqual({ missed: { count: 0, more: false }, next: d("2026-11-21T02:00:00Z") });
    const at = decideSlots(s, last, d("2026-11-21T02:00:00Z"));
    expect(iso(at.fire)).toBe("2026-11-21T02:00:00.000Z");
    expect(at.missed.count).toBe(0);
    expect(iso(at.next)).toBe("2026-11-22T02:00:00.000Z");
    // A tick a little later fires the same slot; once it is recorded, nothing is due.
    expect(iso(decideSlots(s, last, d("2026-11-21T02:00:07Z")).fire)).toBe("2026-11-21T02:00:00.000Z");
    expect(decideSlots(s, d("2026-11-21T02:00:00Z"), d("2026-11-21T02:00:07Z")).fire).toBeUndefined();
  });

  it("evaluates the schedule in its time zone", () => {
    const berlin = new CronSchedule("0 2 * * *", "Europe/Berlin");
    expect(iso(berlin.next(d("2026-01-10T12:00:00Z")))).toBe("2026-01-11T01:00:00.000Z"); // CET, UTC+1
    expect(iso(berlin.next(d("2026-07-10T12:00:00Z")))).toBe("2026-07-11T00:00:00.000Z"); // CEST, UTC+2
    const ny = new CronSchedule("0 2 * * 1-5", "America/New_York");
    // Friday 2026-11-20 02:00 EST = 07:00Z; then Monday 2026-11-23.
    expect(ny.upcoming(d("2026-11-19T12:00:00Z"), 2).map(iso)).toEqual(["2026-11-20T07:00:00.000Z", "2026-11-23T07:00:00.000Z"]);
    expect(formatInZone(d("2026-11-20T07:00:00Z"), "America/New_York")).toBe("2026-11-20 02:00 EST");
  });

  it("America/New_York spring forward (2026-03-08): a slot in the missing hour fires once, right after the gap", () => {
    const s = new CronSchedule("30 2 * * *", "America/New_York");
    const fired = simulate(s, "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z", 5 * 60_000);
    expect(fired.map((f) => f.slot)).toEqual([
      "2026-03-07T07:30:00.000Z", // 02:30 EST
      "2026-03-08T07:30:00.000Z", // 02:30 does not exist: 03:30 EDT
      "2026-03-09T06:30:00.000Z", // 02:30 EDT
    ]);
    expect(fired.every((f) => f.at === f.slot)).toBe(true);
    // Hourly: 02:00 does not exist that night; 01:00 EST then 03:00 EDT, each once.
    const hourly = simulate(new CronSchedule("0 * * * *", "America/New_York"), "2026-03-08T05:30:00Z", "2026-03-08T08:30:00Z", 60_000);
    expect(hourly.map((f) => f.slot)).toEqual(["2026-03-08T06:00:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-08T08:00:00.000Z"]);
  });

  it("America/New_York fall back (2026-11-01): a slot in the repeated hour fires once, at its first occurrence", () => {
    const s = new CronSchedule("30 1 * * *", "America/New_York");
    const fired = simulate(s, "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z", 5 * 60_000);
    expect(fired.map((f) => f.slot)).toEqual([
      "2026-10-31T05:30:00.000Z", // 01:30 EDT
      "2026-11-01T05:30:00.000Z", // 01:30 EDT; not again at 01:30 EST (06:30Z)
      "2026-11-02T06:30:00.000Z", // 01:30 EST
    ]);
    const hourly = simulate(new CronSchedule("0 * * * *", "America/New_York"), "2026-11-01T04:30:00Z", "2026-11-01T07:30:00Z", 60_000);
    // 00:00 EDT, 01:00 EDT, (01:00 EST skipped), 02:00 EST
    expect(hourly.map((f) => f.slot)).toEqual(["2026-11-01T05:00:00.000Z", "2026-11-01T07:00:00.000Z"]);
  });

  it("Europe/Berlin: both transitions of 2026 fire the 02:30 slot exactly once", () => {
    const s = new CronSchedule("30 2 * * *", "Europe/Berlin");
    const spring = simulate(s, "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z", 5 * 60_000).map((f) => f.slot);
    expect(spring).toEqual(["2026-03-28T01:30:00.000Z", "2026-03-29T01:30:00.000Z", "2026-03-30T00:30:00.000Z"]);
    const autumn = simulate(s, "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z", 5 * 60_000).map((f) => f.slot);
    expect(autumn).toEqual(["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]);
  });

  it("after downtime, the slots missed inside the catch-up window fire once in total; older ones are missed", () => {
    const s = new CronSchedule("0 * * * *");
    const dec = decideSlots(s, d("2026-11-21T10:00:00Z"), d("2026-11-21T15:20:00Z"), 60 * 60_000);
    expect(iso(dec.fire)).toBe("2026-11-21T15:00:00.000Z");
    expect(iso(dec.newest)).toBe("2026-11-21T15:00:00.000Z");
    expect(dec.missed).toEqual({ count: 4, more: false, first: d("2026-11-21T11:00:00Z"), last: d("2026-11-21T14:00:00Z") });
    // Recorded: nothing more is due until the next slot.
    const again = decideSlots(s, d("2026-11-21T15:00:00Z"), d("2026-11-21T15:21:00Z"), 60 * 60_000);
    expect(again.fire).toBeUndefined();
    expect(again.newest).toBeUndefined();
    expect(iso(again.next)).toBe("2026-11-21T16:00:00.000Z");
  });

  it("a missed slot outside the catch-up window does not fire; without a window the newest fires however late", () => {
    const s = new CronSchedule("0 2 * * *");
    const late = decideSlots(s, d("2026-11-20T02:00:00Z"), d("2026-11-21T05:00:00Z"), 60 * 60_000);
    expect(late.fire).toBeUndefined();
    expect(iso(late.newest)).toBe("2026-11-21T02:00:00.000Z");
    expect(late.missed).toEqual({ count: 1, more: false, first: d("2026-11-21T02:00:00Z"), last: d("2026-11-21T02:00:00Z") });
    // Exactly at the edge of the window it still fires.
    expect(iso(decideSlots(s, d("2026-11-20T02:00:00Z"), d("2026-11-21T03:00:00Z"), 60 * 60_000).fire)).toBe("2026-11-21T02:00:00.000Z");
    const unlimited = decideSlots(s, d("2026-11-17T02:00:00Z"), d("2026-11-21T05:00:00Z"));
    expect(iso(unlimited.fire)).toBe("2026-11-21T02:00:00.000Z");
    expect(unlimited.missed.count).toBe(3);
  });

  it("counts at most MAX_COUNTED_SLOTS missed slots and still finds the newest", () => {
    const s = new CronSchedule("* * * * *");
    const dec = decideSlots(s, d("2026-11-20T00:00:00Z"), d("2026-11-21T00:00:30Z"), 5 * 60_000);
    expect(iso(dec.fire)).toBe("2026-11-21T00:00:00.000Z");
    expect(dec.missed.more).toBe(true);
    expect(dec.missed.count).toBe(MAX_COUNTED_SLOTS + 1);
    const outside = decideSlots(s, d("2026-11-20T00:00:00Z"), d("2026-11-21T00:00:30Z"), 10_000);
    expect(outside.fire).toBeUndefined();
    expect(iso(outside.missed.last)).toBe("2026-11-21T00:00:00.000Z");
  });

  it("names runs after release and slot (UTC), within 63 characters", () => {
    expect(slotId(d("2026-11-21T02:00:00Z"))).toBe("202611210200");
    expect(runName("nightly", d("2026-11-21T02:00:00Z"), "scheduled")).toBe("nightly-202611210200");
    expect(runName("nightly", d("2026-11-21T02:03:04Z"), "manual")).toBe("nightly-manual-20261121020304");
    const long = runName("a".repeat(60), d("2026-11-21T02:00:00Z"), "scheduled");
    expect(long).toHaveLength(63);
    expect(long.endsWith("-202611210200")).toBe(true);
  });
});
