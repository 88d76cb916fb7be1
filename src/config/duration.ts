// Go-style durations ("500ms", "30s", "1m30s", "1.5h"), in whole milliseconds.

const UNIT_MS: Record<string, bigint> = {
  ms: 1n,
  s: 1_000n,
  m: 60_000n,
  h: 3_600_000n,
};

const TOO_SMALL = new Set(["ns", "us", "µs", "μs"]);
const TOO_BIG = new Set(["d", "w", "y"]);

const MAX_MS = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Parses a Go-style duration into milliseconds: a sequence of decimal numbers, each with an
 * optional fraction and a unit of ms, s, m or h ("500ms", "30s", "1h30m", "1.5h"), or "0".
 * Signs, whitespace, days and sub-millisecond results are refused with an Error saying why.
 */
export function parseDuration(s: string): number {
  const quoted = JSON.stringify(s);
  if (s === "") throw new Error("empty duration (expected e.g. 30s, 5m, 1h or 1m30s)");
  if (s === "0") return 0;
  if (s.startsWith("-")) throw new Error(`invalid duration ${quoted}: must not be negative`);
  let total = 0n;
  let i = 0;
  while (i < s.length) {
    const start = i;
    const num = /^([0-9]*)(?:\.([0-9]*))?/.exec(s.slice(i));
    const intPart = num?.[1] ?? "";
    const fracPart = num?.[2];
    if (intPart === "" && (fracPart === undefined || fracPart === "")) {
      throw new Error(`invalid duration ${quoted}: expected a number at ${JSON.stringify(s.slice(start))}`);
    }
    if (intPart === "" || fracPart === "") {
      throw new Error(`invalid duration ${quoted}: malformed number`);
    }
    i += num![0].length;
    const unitMatch = /^[^0-9.]*/.exec(s.slice(i));
    const unit = unitMatch?.[0] ?? "";
    i += unit.length;
    const numberText = fracPart === undefined ? intPart : `${intPart}.${fracPart}`;
    if (unit === "") {
      throw new Error(`invalid duration ${quoted}: missing unit after ${numberText} (use ms, s, m or h, e.g. "${numberText}s")`);
    }
    const unitMs = UNIT_MS[unit];
    if (unitMs === undefined) {
      if (TOO_SMALL.has(unit)) {
        throw new Error(`invalid duration ${quoted}: unit "${unit}" is too small; the smallest unit is ms`);
      }
      if (TOO_BIG.has(unit)) {
        throw new Error(`invalid duration ${quoted}: unit "${unit}" is not supported; the largest unit is h (e.g. "48h")`);
      }
      throw new Error(`invalid duration ${quoted}: unknown unit ${JSON.stringify(unit)} (use ms, s, m or h)`);
    }
    // Exact arithmetic: value = (int * 10^k + frac) * unit / 10^k must be a whole number of ms.
    const frac = fracPart ?? "";
    const scale = 10n ** BigInt(frac.length);
    const scaled = (BigInt(intPart) * scale + (frac === "" ? 0n : BigInt(frac))) * unitMs;
    if (scaled % scale !== 0n) {
      throw new Error(`invalid duration ${quoted}: finer than a millisecond`);
    }
    total += scaled / scale;
    if (total > MAX_MS) throw new Error(`invalid duration ${quoted}: too large`);
  }
  return Number(total);
}

/**
 * Formats milliseconds as a duration parseDuration reads back: "1h30m", "1m30s", "500ms",
 * "1s500ms", "0s". Fractional milliseconds are rounded; negative values get a leading "-".
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new Error(`cannot format ${ms} as a duration`);
  let rest = Math.round(Math.abs(ms));
  if (rest === 0) return "0s";
  const sign = ms < 0 ? "-" : "";
  let out = "";
  for (const [unit, size] of [
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
    ["ms", 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return sign + out;
}
