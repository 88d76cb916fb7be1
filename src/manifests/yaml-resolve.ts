// Scalar resolution as kubectl does it: sigs.k8s.io/yaml decodes with go-yaml v2
// (go.yaml.in/yaml/v2 resolve.go, decode.go) into interface{}, then converts to JSON. This module
// is a port of that resolution for one scalar: the rules below follow resolve() line by line, with
// Go's strconv.ParseInt/ParseUint/ParseFloat grammars written out, because the YAML 1.1 schemas of
// JS libraries differ from it (e.g. they read `.` as NaN and `0o17` as a string; go-yaml v2 reads
// `.` as a string and `0o17` as 15).

export const TAG_PREFIX = "tag:yaml.org,2002:";
const STR = `${TAG_PREFIX}str`;
const BOOL = `${TAG_PREFIX}bool`;
const INT = `${TAG_PREFIX}int`;
const FLOAT = `${TAG_PREFIX}float`;
const NULL = `${TAG_PREFIX}null`;
const TIMESTAMP = `${TAG_PREFIX}timestamp`;
const BINARY = `${TAG_PREFIX}binary`;
export const MERGE_TAG = `${TAG_PREFIX}merge`;

/** What go-yaml v2 puts into an interface{} for a scalar. Ints keep full precision (Go int/uint64). */
export type GoScalar =
  | { kind: "null" }
  | { kind: "bool"; value: boolean }
  | { kind: "int"; value: bigint }
  | { kind: "float"; value: number }
  | { kind: "string"; value: string };

/** A scalar go-yaml v2 refuses (explicit tag that does not fit, bad !!binary). */
export class ScalarError extends Error {}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

const RESOLVE_MAP = new Map<string, GoScalar>();
for (const [value, words] of [
  [{ kind: "bool", value: true }, ["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"]],
  [{ kind: "bool", value: false }, ["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"]],
  [{ kind: "null" }, ["", "~", "null", "Null", "NULL"]],
  [{ kind: "float", value: NaN }, [".nan", ".NaN", ".NAN"]],
  [{ kind: "float", value: Infinity }, [".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"]],
  [{ kind: "float", value: -Infinity }, ["-.inf", "-.Inf", "-.INF"]],
] as [GoScalar, string[]][]) {
  for (const w of words) RESOLVE_MAP.set(w, value);
}

/** resolveTable of resolve.go: the first character decides what a plain scalar may be. */
function hintOf(s: string): "N" | "S" | "D" | "M" | "." | undefined {
  if (s === "") return "N";
  const c = s[0]!;
  if (c === "+" || c === "-") return "S";
  if (c >= "0" && c <= "9") return "D";
  if ("yYnNtTfFoO~".includes(c)) return "M";
  if (c === ".") return ".";
  return undefined;
}

const tagOfKind: Record<GoScalar["kind"] | "timestamp", string> = {
  null: NULL,
  bool: BOOL,
  int: INT,
  float: FLOAT,
  string: STR,
  timestamp: TIMESTAMP,
};

function shortTag(tag: string): string {
  return tag.startsWith(TAG_PREFIX) ? `!!${tag.slice(TAG_PREFIX.length)}` : tag;
}

/** strconv.ParseInt(s, 0, 64) / ParseUint(s, 0, 64) without the range check (underscores already removed). */
function goParseIntBase0(s: string, signed: boolean): bigint | undefined {
  let i = 0;
  let neg = false;
  if (signed && (s[0] === "+" || s[0] === "-")) {
    neg = s[0] === "-";
    i = 1;
  }
  let body = s.slice(i);
  let re = /^[0-9]+$/;
  let prefix = "";
  if (/^0[xX]/.test(body)) {
    prefix = "0x";
    body = body.slice(2);
    re = /^[0-9a-fA-F]+$/;
  } else if (/^0[bB]/.test(body)) {
    prefix = "0b";
    body = body.slice(2);
    re = /^[01]+$/;
  } else if (/^0[oO]/.test(body)) {
    prefix = "0o";
    body = body.slice(2);
    re = /^[0-7]+$/;
  } else if (/^0[0-9]/.test(body)) {
    // A leading 0 means octal (YAML 1.1's 0644); 08 and 09 are not ints.
    prefix = "0o";
    body = body.slice(1);
    re = /^[0-7]+$/;
  }
  if (!re.test(body)) return undefined;
  const v = BigInt(prefix + body);
  return neg ? -v : v;
}

function goParseInt(s: string, base: 0 | 2): bigint | undefined {
  if (base === 0) {
    const v = goParseIntBase0(s, true);
    return v !== undefined && v >= INT64_MIN && v <= INT64_MAX ? v : undefined;
  }
  const m = /^([+-]?)([01]+)$/.exec(s);
  if (!m) return undefined;
  const v = m[1] === "-" ? -BigInt(`0b${m[2]}`) : BigInt(`0b${m[2]}`);
  return v >= INT64_MIN && v <= INT64_MAX ? v : undefined;
}

function goParseUint(s: string, base: 0 | 2): bigint | undefined {
  const v = base === 0 ? goParseIntBase0(s, false) : /^[01]+$/.test(s) ? BigInt(`0b${s}`) : undefined;
  return v !== undefined && v >= 0n && v <= UINT64_MAX ? v : undefined;
}

/**
 * strconv.ParseFloat(s, 64) for the decimal strings resolve() hands it: a value, or undefined on a
 * syntax error or on overflow (ErrRange; underflow to 0 is not an error in Go). Underscores are
 * accepted only between digits, as Go's underscoreOK demands.
 */
function goParseDecimalFloat(s: string): number | undefined {
  const digits = "[0-9](?:_?[0-9])*";
  const re = new RegExp(`^[+-]?(?:${digits}(?:\\.(?:${digits})?)?|\\.${digits})(?:[eE][+-]?${digits})?$`);
  if (!re.test(s)) return undefined;
  const v = Number(s.replace(/_/g, ""));
  return Number.isFinite(v) ? v : undefined;
}

const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;

/** go-yaml v2's parseTimestamp: the four layouts it tries with time.Parse. */
export function isGoTimestamp(s: string): boolean {
  if (!/^[0-9]{4}-/.test(s)) return false;
  const m = /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:([Tt ])([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$/.exec(s);
  if (!m) return false;
  const [, y, mo, d, sep, h, mi, sec, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const dim = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  if (day < 1 || day > dim) return false;
  if (sep === undefined) return true;
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) return false;
  // "T"/"t" layouts need a zone (Z07:00); the space layout has none.
  if (sep === " ") return zone === undefined;
  if (zone === undefined) return false;
  if (zone !== "Z" && (Number(zone.slice(1, 3)) > 23 || Number(zone.slice(4, 6)) > 59)) return false;
  return true;
}

/** resolve(tag, in) of resolve.go, before the explicit-tag check. */
function resolveRaw(tag: string, s: string): { tag: string; value: GoScalar } {
  const hint = tag === STR || tag === BINARY ? undefined : hintOf(s);
  if (hint !== undefined) {
    const known = RESOLVE_MAP.get(s);
    if (known) return { tag: tagOfKind[known.kind], value: known };
    if (hint === ".") {
      const f = goParseDecimalFloat(s);
      if (f !== undefined) return { tag: FLOAT, value: { kind: "float", value: f } };
    } else if (hint === "D" || hint === "S") {
      if ((tag === "" || tag === TIMESTAMP) && isGoTimestamp(s)) {
        // decode.go: a timestamp decoded into interface{} stays the original string.
        return { tag: TIMESTAMP, value: { kind: "string", value: s } };
      }
      const plain = s.replace(/_/g, "");
      const i = goParseInt(plain, 0);
      if (i !== undefined) return { tag: INT, value: { kind: "int", value: i } };
      const u = goParseUint(plain, 0);
      if (u !== undefined) return { tag: INT, value: { kind: "int", value: u } };
      if (YAML_STYLE_FLOAT.test(plain)) {
        const f = goParseDecimalFloat(plain);
        if (f !== undefined) return { tag: FLOAT, value: { kind: "float", value: f } };
      }
      if (plain.startsWith("0b")) {
        const b = goParseInt(plain.slice(2), 2) ?? goParseUint(plain.slice(2), 2);
        if (b !== undefined) return { tag: INT, value: { kind: "int", value: b } };
      } else if (plain.startsWith("-0b")) {
        const b = goParseInt(`-${plain.slice(3)}`, 2);
        if (b !== undefined) return { tag: INT, value: { kind: "int", value: b } };
      }
    }
  }
  return { tag: STR, value: { kind: "string", value: s } };
}

const RESOLVABLE = new Set(["", STR, BOOL, INT, FLOAT, NULL, TIMESTAMP]);

/**
 * The value go-yaml v2 gives a scalar. `tag` is the node's full tag ("" when it has none, "!" for
 * the non-specific tag); `plain` is whether it was written unquoted (go-yaml's "implicit").
 */
export function resolveScalar(source: string, tag: string, plain: boolean): GoScalar {
  if (tag === "" && !plain) return { kind: "string", value: source };
  if (tag === BINARY) return { kind: "string", value: goBytesToString(decodeGoBase64(source)) };
  // Any other tag it does not know (custom tags, "!") leaves the text as a string.
  if (!RESOLVABLE.has(tag)) return { kind: "string", value: source };
  const r = resolveRaw(tag, source);
  if (tag === "" || tag === r.tag || tag === STR) return r.value;
  if (tag === FLOAT && r.value.kind === "int") return { kind: "float", value: Number(r.value.value) };
  throw new ScalarError(`cannot decode ${shortTag(r.tag)} \`${source}\` as a ${shortTag(tag)}`);
}

/** base64.StdEncoding.DecodeString: padding required, CR and LF ignored, nothing else tolerated. */
function decodeGoBase64(s: string): Uint8Array {
  const t = s.replace(/[\r\n]/g, "");
  if (t.length % 4 !== 0 || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(t)) {
    throw new ScalarError("!!binary value contains invalid base64 data");
  }
  return Buffer.from(t, "base64");
}

/**
 * The JSON string Go's encoding/json makes of arbitrary bytes: valid UTF-8 is kept, every byte of
 * an invalid sequence becomes U+FFFD on its own (utf8.DecodeRune returns width 1), which differs
 * from TextDecoder's maximal-subpart replacement.
 */
export function goBytesToString(b: Uint8Array): string {
  let out = "";
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n = 0;
    let cp = 0;
    let min = 0;
    if (c < 0x80) {
      out += String.fromCharCode(c);
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
      min = 0x10000;
    }
    let ok = n > 0 && i + n < b.length;
    for (let k = 1; ok && k <= n; k++) {
      const x = b[i + k];
      if (x === undefined || (x & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (x & 0x3f);
    }
    if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    if (!ok) {
      out += "\ufffd";
      i++;
      continue;
    }
    out += String.fromCodePoint(cp);
    i += n + 1;
  }
  return out;
}

/**
 * strconv.FormatFloat(f, 'g', -1, 32): how sigs.k8s.io/yaml turns a float map key into a JSON key
 * (shortest digits that survive float32, %e when the exponent is < -4 or >= 6), with go-yaml's
 * names for the non-finite values.
 */
export function goFloatKey(f: number): string {
  const x = Math.fround(f);
  if (Number.isNaN(x)) return ".nan";
  if (x === Infinity) return ".inf";
  if (x === -Infinity) return "-.inf";
  const neg = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  if (a === 0) return neg ? "-0" : "0";
  let digits = "";
  let exp = 0;
  for (let p = 1; p <= 9; p++) {
    const s = a.toExponential(p - 1);
    if (Math.fround(Number(s)) === a) {
      const [mant, e] = s.split("e");
      digits = mant!.replace(".", "");
      exp = Number(e);
      break;
    }
  }
  let body: string;
  if (exp < -4 || exp >= 6) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const ae = Math.abs(exp);
    body = `${m}e${exp < 0 ? "-" : "+"}${ae < 10 ? "0" : ""}${ae}`;
  } else if (exp < 0) {
    body = `0.${"0".repeat(-exp - 1)}${digits}`;
  } else if (digits.length <= exp + 1) {
    body = digits + "0".repeat(exp + 1 - digits.length);
  } else {
    body = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return neg ? `-${body}` : body;
}

export const INT64_LIMITS = { min: INT64_MIN, max: INT64_MAX };
