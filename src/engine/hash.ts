import { createHash, createHmac } from "node:crypto";

/**
 * JSON with object keys sorted (code-unit order) at every level, so equal values always give
 * the same text. Follows JSON.stringify otherwise: `toJSON` is honoured, undefined/function/symbol
 * members are left out of objects and become null in arrays, non-finite numbers become null,
 * bigints are written as decimal strings. A top-level value JSON cannot hold gives "null".
 * Throws TypeError on a cycle.
 */
export function canonicalJson(v: unknown): string {
  return write(v, new Set<object>()) ?? "null";
}

function write(v: unknown, seen: Set<object>): string | undefined {
  if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    v = (v as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "number":
      return Number.isFinite(v) ? JSON.stringify(v) : "null";
    case "boolean":
      return v ? "true" : "false";
    case "bigint":
      return JSON.stringify(v.toString());
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
  }
  if (v === null) return "null";
  const o = v as object;
  if (seen.has(o)) throw new TypeError("canonicalJson: cyclic value");
  seen.add(o);
  let out: string;
  if (Array.isArray(o)) {
    out = "[" + o.map((e: unknown) => write(e, seen) ?? "null").join(",") + "]";
  } else {
    const rec = o as Record<string, unknown>;
    const parts: string[] = [];
    for (const k of Object.keys(rec).sort(cmp)) {
      const s = write(rec[k], seen);
      if (s !== undefined) parts.push(JSON.stringify(k) + ":" + s);
    }
    out = "{" + parts.join(",") + "}";
  }
  seen.delete(o);
  return out;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sha256Hex(s: string): string {
  return createHash("sha256").update(s, "utf8").digest("hex");
}

/**
 * HMAC-SHA256 hex with `key`, or plain sha256 without one. Hashes plumber stores (inventory fp and
 * dh) go through here: keyed, a reader of the state cannot test guesses of a Secret's value offline.
 */
export function keyedHex(s: string, key: Uint8Array | undefined): string {
  return key ? createHmac("sha256", key).update(s, "utf8").digest("hex") : sha256Hex(s);
}
