// dependsOn between apps: cycle detection for the config, an apply order for the poller, and the
// gate "every dependency is healthy at its current revision".
import type { AppState } from "../state/store.js";

/** The first dependency cycle found, as a path that starts and ends with the same app. */
export function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    const s = state.get(n);
    if (s === "done") return undefined;
    if (s === "visiting") return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, "visiting");
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      if (!graph.has(d)) continue;
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(n, "done");
    return undefined;
  };
  for (const n of graph.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

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
