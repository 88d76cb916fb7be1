// Text that go-yaml's scanner (libyaml) and kubectl's document splitter read differently from the
// `yaml` package, found by lexing the file: what kubectl refuses is refused at its line, what it
// reads its own way is rewritten to that reading, so no file means one thing to kubectl and another
// to plumber.

import { Lexer } from "yaml";

export interface SyntaxTrap {
  offset: number;
  message: string;
}

/** Replace `length` characters at `offset` by `text` (never a line break, so lines stay true). */
export interface Rewrite {
  offset: number;
  length: number;
  text: string;
}

export interface SyntaxScan {
  trap?: SyntaxTrap;
  /**
   * Spellings libyaml accepts and the `yaml` package refuses, rewritten to what libyaml reads:
   * - a `-` alone in a flow collection right before `,`, `]` or `}` (`[cat, -]`) is the plain
   *   scalar "-" to libyaml, a misplaced sequence indicator to the `yaml` package: quoted;
   * - the escape `\'` in a double-quoted scalar is `'` to libyaml: unescaped.
   */
  rewrites: Rewrite[];
}

export function applyRewrites(content: string, rewrites: Rewrite[]): string {
  let out = "";
  let from = 0;
  for (const r of [...rewrites].sort((a, b) => a.offset - b.offset)) {
    out += content.slice(from, r.offset) + r.text;
    from = r.offset + r.length;
  }
  return out + content.slice(from);
}

// Lexer tokens that stand for structure, not for source text.
const CONTROL = new Set(["\u0002", "\u0018", "\u001f"]);

/**
 * - A character libyaml's reader refuses ("control characters are not allowed"): anything outside
 *   tab, LF, CR, printable ASCII, NEL and the non-surrogate ranges up to U+10FFFF minus U+FFFE/F.
 * - A tag directly followed by `,`, `[`, `]`, `{` or `}`: libyaml takes those characters into the
 *   tag (`[!x, y]` is a one-item list to kubectl), the `yaml` package ends the tag before them.
 * - A `---` line with anything but a comment after it (`--- {a: 1}`, `---x`), and YAML directives
 *   (`%YAML`, `%TAG`): kubectl cuts the stream into documents at every line that starts with
 *   `---` before go-yaml sees it (k8s.io/apimachinery YAMLReader), refusing the former, and a
 *   directive is left alone in the piece before its `---`.
 * - In a double-quoted scalar, an escape libyaml does not know (`\/`, YAML 1.2's only addition) or
 *   a \u/\U escape of a surrogate, even a valid pair ("found invalid Unicode character escape
 *   code"); in the JSON text before `jsonEnd`, which kubectl decodes with encoding/json, both are fine.
 * - An anchor or alias name with characters other than ASCII letters, digits, `-` and `_`
 *   (libyaml: "did not find expected alphabetic or numeric character").
 * - Flow collections nested deeper than maxDepth: the `yaml` package's composer recurses per level
 *   and runs out of stack near 800, so deeper input is refused before it is parsed.
 */
export function scanSyntax(content: string, maxDepth: number, jsonEnd = 0): SyntaxScan {
  const rewrites: Rewrite[] = [];
  const trap = findTrap(content, maxDepth, jsonEnd, rewrites);
  return trap ? { trap, rewrites } : { rewrites };
}

function findTrap(content: string, maxDepth: number, jsonEnd: number, rewrites: Rewrite[]): SyntaxTrap | undefined {
  const m = /[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u.exec(content);
  if (m) {
    const cp = m[0].codePointAt(0)!;
    return {
      offset: m.index,
      message: `control character U+${cp.toString(16).toUpperCase().padStart(4, "0")} is not allowed in YAML (kubectl refuses it too)`,
    };
  }
  const sep = /^---(.*)$/gm;
  for (let m2 = sep.exec(content); m2; m2 = sep.exec(content)) {
    const rest = m2[1]!.trim();
    if (rest !== "" && !rest.startsWith("#")) {
      return { offset: m2.index, message: `kubectl allows only a comment after a "---" document separator, not ${JSON.stringify(rest.slice(0, 40))}` };
    }
  }
  if (!/[[{!&*\\]|^%/m.test(content)) return undefined;
  let offset = 0;
  let depth = 0;
  let tag: { text: string; offset: number } | undefined;
  let dash: number | undefined;
  let prev = "";
  for (const tok of new Lexer().lex(content)) {
    const afterScalarMark = prev === "\u001f";
    prev = tok;
    if (CONTROL.has(tok) || tok === "") continue;
    if (dash !== undefined && /^[,\]}]/.test(tok)) rewrites.push({ offset: dash, length: 1, text: '"-"' });
    // The lexer marks a "-" it reads as a scalar with \u001f; an unmarked one is an indicator.
    dash = tok === "-" && depth > 0 && !afterScalarMark ? offset : undefined;
    if (tok === "[" || tok === "{") {
      if (++depth > maxDepth) return { offset, message: `flow collections nested deeper than ${maxDepth} levels` };
    } else if (tok === "]" || tok === "}") {
      depth = Math.max(0, depth - 1);
    }
    if (tag && /^[,[\]{}]/.test(tok)) {
      return {
        offset: tag.offset,
        message: `tag ${tag.text} is directly followed by "${tok[0]}", which kubectl reads as part of the tag; put a space after the tag or quote the value`,
      };
    }
    if (tok.startsWith('"') && offset >= jsonEnd) {
      const bad = badEscape(tok);
      if (bad) return { offset, message: bad };
      const esc = /\\([^])/g;
      for (let e = esc.exec(tok); e; e = esc.exec(tok)) {
        if (e[1] === "'") rewrites.push({ offset: offset + e.index, length: 2, text: "'" });
      }
    }
    if ((tok.startsWith("&") || tok.startsWith("*")) && !/^[&*][0-9A-Za-z_-]+$/.test(tok)) {
      return {
        offset,
        message: `${tok.startsWith("&") ? "anchor" : "alias"} ${JSON.stringify(tok)}: kubectl accepts only ASCII letters, digits, "-" and "_" in anchor names`,
      };
    }
    if (tok.startsWith("%")) {
      return { offset, message: `YAML directives (${tok.split(/\s/)[0]}) are not supported: kubectl reads the directive as a document of its own and refuses it` };
    }
    tag = tok.startsWith("!") ? { text: tok, offset } : undefined;
    offset += tok.length;
  }
  return undefined;
}

/** go-yaml v2's scanner: the escapes it knows in a double-quoted scalar (\x, \u, \U checked below). */
const KNOWN_ESCAPES = new Set(["0", "a", "b", "t", "\t", "n", "v", "f", "r", "e", " ", '"', "'", "\\", "N", "_", "L", "P", "\n", "\r"]);

function badEscape(quoted: string): string | undefined {
  const esc = /\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[^])/g;
  for (let m = esc.exec(quoted); m; m = esc.exec(quoted)) {
    const e = m[1]!;
    if (e.length === 1) {
      if (!KNOWN_ESCAPES.has(e)) return `escape \\${e} is not one kubectl knows ("found unknown escape character"); write the character itself`;
      continue;
    }
    const cp = parseInt(e.slice(1), 16);
    if (cp >= 0xd800 && cp <= 0xdfff) {
      return `escape \\${e} is a UTF-16 surrogate, which kubectl refuses ("found invalid Unicode character escape code"); write the character itself`;
    }
  }
  return undefined;
}
