import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "../../src/config/duration.js";
import { configSchema, resolveRef } from "../../src/config/schema.js";

describe("parseDuration", () => {
  it("reads Go-style durations in milliseconds", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("5m")).toBe(300_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("1m30s")).toBe(90_000);
    expect(parseDuration("1h2m3s4ms")).toBe(3_723_004);
    expect(parseDuration("1.5h")).toBe(5_400_000);
    expect(parseDuration("1.1s")).toBe(1_100); // exact, not 1100.0000000000002
    expect(parseDuration("0.001s")).toBe(1);
    expect(parseDuration("0")).toBe(0);
    expect(parseDuration("0s")).toBe(0);
    expect(parseDuration("48h")).toBe(172_800_000);
  });

  it("explains what is wrong", () => {
    expect(() => parseDuration("")).toThrow("empty duration");
    expect(() => parseDuration("30")).toThrow('invalid duration "30": missing unit after 30 (use ms, s, m or h, e.g. "30s")');
    expect(() => parseDuration("1h30")).toThrow("missing unit after 30");
    expect(() => parseDuration("2d")).toThrow('invalid duration "2d": unit "d" is not supported; the largest unit is h (e.g. "48h")');
    expect(() => parseDuration("10us")).toThrow('unit "us" is too small; the smallest unit is ms');
    expect(() => parseDuration("5x")).toThrow('invalid duration "5x": unknown unit "x" (use ms, s, m or h)');
    expect(() => parseDuration("-5s")).toThrow("must not be negative");
    expect(() => parseDuration("+5s")).toThrow("expected a number");
    expect(() => parseDuration(" 5s")).toThrow("expected a number");
    expect(() => parseDuration("5 s")).toThrow('unknown unit " s"');
    expect(() => parseDuration(".5s")).toThrow("malformed number");
    expect(() => parseDuration("5.s")).toThrow("malformed number");
    expect(() => parseDuration("1.5ms")).toThrow("finer than a millisecond");
    expect(() => parseDuration("99999999999999999h")).toThrow("too large");
  });

  it("agrees with the schema's duration pattern on what is well-formed", () => {
    const duration = resolveRef(configSchema(), "#/$defs/duration");
    const pattern = new RegExp(duration.pattern as string, "u");
    for (const s of ["0", "1s", "500ms", "1m30s", "1.5h", "2h45m", "10s10s"]) {
      expect(pattern.test(s), s).toBe(true);
      expect(() => parseDuration(s), s).not.toThrow();
    }
    for (const s of ["", "30", "2d", "5x", "-5s", "1 m", ".5s", "5.s", "1h30", "s"]) {
      expect(pattern.test(s), s).toBe(false);
      expect(() => parseDuration(s), s).toThrow();
    }
  });
});

describe("formatDuration", () => {
  it("writes compact Go-style durations", () => {
    expect(formatDuration(0)).toBe("0s");
    expect(formatDuration(500)).toBe("500ms");
    expect(formatDuration(1_500)).toBe("1s500ms");
    expect(formatDuration(30_000)).toBe("30s");
    expect(formatDuration(90_000)).toBe("1m30s");
    expect(formatDuration(3_600_000)).toBe("1h");
    expect(formatDuration(5_400_000)).toBe("1h30m");
    expect(formatDuration(172_800_000)).toBe("48h");
    expect(formatDuration(-5_000)).toBe("-5s");
    expect(formatDuration(1.4)).toBe("1ms");
    expect(() => formatDuration(Number.NaN)).toThrow();
  });

  it("round-trips through parseDuration", () => {
    for (const ms of [0, 1, 999, 1_000, 61_001, 3_599_999, 86_400_000, 123_456_789]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});
