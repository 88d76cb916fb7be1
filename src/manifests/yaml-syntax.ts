// Text that go-yaml's scanner (libyaml) reads differently from the `yaml` package, found before
// parsing so such a file is refused at its line instead of meaning one thing to kubectl and
// another to plumber.

import { Lexer } from "yaml";

export interface SyntaxTrap {
  offset: number;
  message: string;
}

export interface SyntaxScan {
  trap?: SyntaxTrap;
  /**
   * Offsets of a `-` alone in a flow collection right before `,`, `]` or `}` (`[cat, -]`): libyaml
   * reads it as the plain scalar "-", the `yaml` package as a misplaced sequence indicator.
   */
  bareDashes: number[];
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
 * - A \u or \U escape of a surrogate in a double-quoted scalar, even a valid pair: libyaml refuses
 *   it ("found invalid Unicode character escape code"); in the JSON text before `jsonEnd`, which
 *   kubectl decodes with encoding/json, such escapes are fine.
 * - Flow collections nested deeper than maxDepth: the `yaml` package's composer recurses per level
 *   and runs out of stack near 800, so deeper input is refused before it is parsed.
 */
export function scanSyntax(content: string, maxDepth: number, jsonEnd = 0): SyntaxScan {
  const bareDashes: number[] = [];
  const trap = findTrap(content, maxDepth, jsonEnd, bareDashes);
  return trap ? { trap, bareDashes } : { bareDashes };
}

function findTrap(content: string, maxDepth: number, jsonEnd: number, bareDashes: number[]): SyntaxTrap | undefined {
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
  if (!/[[{!]|^%|\\[uU]/m.test(content)) return undefined;
  let offset = 0;
  let depth = 0;
  let tag: { text: string; offset: number } | undefined;
  let dash: number | undefined;
  let prev = "";
  for (const tok of new Lexer().lex(content)) {
    const afterScalarMark = prev === "\u001f";
    prev = tok;
    if (CONTROL.has(tok) || tok === "") continue;
    if (dash !== undefined && /^[,\]}]/.test(tok)) bareDashes.push(dash);
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
      const bad = surrogateEscape(tok);
      if (bad) return { offset, message: `escape ${bad} is a UTF-16 surrogate, which kubectl refuses ("found invalid Unicode character escape code"); write the character itself` };
    }
    if (tok.startsWith("%")) {
      return { offset, message: `YAML directives (${tok.split(/\s/)[0]}) are not supported: kubectl reads the directive as a document of its own and refuses it` };
    }
    tag = tok.startsWith("!") ? { text: tok, offset } : undefined;
    offset += tok.length;
  }
  return undefined;
}

function surrogateEscape(quoted: string): string | undefined {
  const esc = /\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[^])/g;
  for (let m = esc.exec(quoted); m; m = esc.exec(quoted)) {
    const e = m[1]!;
    if (e.length < 5) continue;
    const cp = parseInt(e.slice(1), 16);
    if (cp >= 0xd800 && cp <= 0xdfff) return `\\${e}`;
  }
  return undefined;
}
