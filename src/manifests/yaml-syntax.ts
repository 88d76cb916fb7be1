// Text that go-yaml's scanner (libyaml) reads differently from the `yaml` package, found before
// parsing so such a file is refused at its line instead of meaning one thing to kubectl and
// another to plumber.

import { Lexer } from "yaml";

export interface SyntaxTrap {
  offset: number;
  message: string;
}

// Lexer tokens that stand for structure, not for source text.
const CONTROL = new Set(["\u0002", "\u0018", "\u001f"]);

/**
 * - A character libyaml's reader refuses ("control characters are not allowed"): anything outside
 *   tab, LF, CR, printable ASCII, NEL and the non-surrogate ranges up to U+10FFFF minus U+FFFE/F.
 * - A tag directly followed by `,`, `[`, `]`, `{` or `}`: libyaml takes those characters into the
 *   tag (`[!x, y]` is a one-item list to kubectl), the `yaml` package ends the tag before them.
 * - Flow collections nested deeper than maxDepth: the `yaml` package's composer recurses per level
 *   and runs out of stack near 800, so deeper input is refused before it is parsed.
 */
export function findSyntaxTrap(content: string, maxDepth: number): SyntaxTrap | undefined {
  const m = /[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u.exec(content);
  if (m) {
    const cp = m[0].codePointAt(0)!;
    return {
      offset: m.index,
      message: `control character U+${cp.toString(16).toUpperCase().padStart(4, "0")} is not allowed in YAML (kubectl refuses it too)`,
    };
  }
  if (!/[[{!]/.test(content)) return undefined;
  let offset = 0;
  let depth = 0;
  let tag: { text: string; offset: number } | undefined;
  for (const tok of new Lexer().lex(content)) {
    if (CONTROL.has(tok) || tok === "") continue;
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
    tag = tok.startsWith("!") ? { text: tok, offset } : undefined;
    offset += tok.length;
  }
  return undefined;
}
