// dependsOn between apps: cycle detection (for the config, in src/util/graph.ts), an apply order
// for the poller, and the gate "every dependency is healthy at its current revision".
import type { AppState } from "../state/store.js";

/** Dependencies before dependents, otherwise the given order (stable). Cycles: left in place. */
export function dependencyOrder<T>(items: T[], name: (t: T) => string, deps: (t: T) => string[]): T[] {
  const byName = new Map(items.map((t) => [name(t), t]));
  const out: T[] = [];
  const placed = new Set<string>();
  const visiting = new Set<string>();
  const place = (t: T): void => {
    const n = name(t);
    if (placed.has(n) || visiting.has(n)) return;
    visiting.add(n);
    for (const d of deps(t)) {
      const dt = byName.get(d);
      if (dt) place(dt);
    }
    visiting.delete(n);
    placed.add(n);
    out.push(t);
  };
  items.forEach(place);
  return out;
}

/** What a dependent needs to know about one dependency. */
export interface DependencyStatus {
  state?: AppState;
  /** The revision the dependency should be at, when known in this cycle (its branch head or pin). */
  head?: string;
}

/** Why a dependency is not healthy at its current revision; undefined when it is. */
export function dependencyBlocker(name: string, s: DependencyStatus): string | undefined {
  const st = s.state;
  if (!st?.revision) return `dependency ${name} has not been deployed yet`;
  if (st.phase === "Halted") return `dependency ${name} is halted: ${firstLine(st.message)}`;
  if (s.head && st.failedRevision === s.head) return `dependency ${name} failed at ${s.head.slice(0, 12)}: ${firstLine(st.message)}`;
  if (s.head && st.revision !== s.head) return `dependency ${name} is not yet at ${s.head.slice(0, 12)} (at ${st.revision.slice(0, 12)})`;
  if (st.phase !== "Ready" || st.revision !== st.goodRevision) return `dependency ${name} is not healthy yet at ${st.revision.slice(0, 12)} (${st.phase ?? "no phase"})`;
  return undefined;
}

function firstLine(s: string | undefined): string {
  return (s ?? "").split("\n")[0] ?? "";
}
