/** What happened to each object in one sync: the typed change set (after fluxcd/pkg ssa). */

export type Action = "created" | "configured" | "recreated" | "unchanged" | "pruned" | "skipped" | "failed";

export interface ChangeSetEntry {
  /** group/Kind/namespace/name */
  key: string;
  /** Kind/namespace/name or Kind/name, for people. */
  subject: string;
  action: Action;
  /** Why: for failed, the server's message; for skipped, the reason it was left alone. */
  message?: string;
  source?: { file: string; line: number };
  /** apiserver Warning headers for this object (deprecated API versions, policy warnings). */
  warnings?: string[];
  /** What plumber did besides the write, e.g. "took over fields from kubectl-client-side-apply". */
  notes?: string[];
  /**
   * For failed: the server or the network was at fault (KubeApiError.transient), so the same
   * revision may well go through later. Absent: the object or plumber's rules on it were at fault.
   */
  transient?: boolean;
  /** For failed: the apiserver's reason when it answered (Invalid, Conflict, WriteRefused...). */
  reason?: string;
}

export class ChangeSet {
  readonly entries: ChangeSetEntry[] = [];

  add(entry: ChangeSetEntry): void {
    this.entries.push(entry);
  }

  count(action: Action): number {
    return this.entries.filter((e) => e.action === action).length;
  }

  /** Anything written or deleted. */
  get changed(): boolean {
    return this.entries.some((e) => e.action === "created" || e.action === "configured" || e.action === "recreated" || e.action === "pruned");
  }

  summary(): Record<Action, number> {
    const s: Record<Action, number> = { created: 0, configured: 0, recreated: 0, unchanged: 0, pruned: 0, skipped: 0, failed: 0 };
    for (const e of this.entries) s[e.action]++;
    return s;
  }

  toString(): string {
    const s = this.summary();
    return (Object.keys(s) as Action[])
      .filter((a) => s[a] > 0)
      .map((a) => `${s[a]} ${a}`)
      .join(", ") || "nothing";
  }
}

export function subjectOf(kind: string, namespace: string, name: string): string {
  return namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`;
}
