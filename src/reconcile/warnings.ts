import type { ChangeSet } from "../engine/changeset.js";

const MAX_WARNINGS = 50;

/** Server warnings of a change set, one line per warning ("Kind/ns/name: text"), bounded; undefined when none. */
export function warningsOf(cs: ChangeSet): string | undefined {
  const lines = cs.entries.flatMap((e) => (e.warnings ?? []).map((w) => `${e.subject}: ${w}`));
  if (lines.length === 0) return undefined;
  const kept = lines.slice(0, MAX_WARNINGS).map((l) => l.slice(0, 500));
  if (lines.length > MAX_WARNINGS) kept.push(`... and ${lines.length - MAX_WARNINGS} more`);
  return kept.join("\n");
}
