// What a plan would change, object by object, as `plumber plan` prints it and the dashboard shows
// it: the kubectl-diff-like diff (Secret values masked by engine/diff.ts), the verb, the notes.
import { diffObject } from "../engine/diff.js";
import type { Plan, PlannedObject } from "../engine/engine.js";
import type { PlanReport } from "../reconcile/app.js";
import type { AppState } from "../state/store.js";

export interface PlannedChange {
  subject: string;
  /** "+ create", "~ configure", "± recreate", "- prune"; "" for an unchanged object listed for its warnings. */
  verb: string;
  /** Unified diff, Secret values masked; "" when nothing shows. */
  diff: string;
  note?: string;
  warnings: string[];
}

export interface PlanSummary {
  changes: PlannedChange[];
  counts: { created: number; configured: number; unchanged: number; pruned: number };
  pending: boolean;
}

export function describePlan(plan: Plan): PlanSummary {
  const counts = { created: 0, configured: 0, unchanged: 0, pruned: plan.prune.length };
  const changes: PlannedChange[] = [];
  for (const p of plan.objects) {
    counts[p.action]++;
    const warnings = p.warnings ?? [];
    if (p.action === "unchanged" && warnings.length === 0) continue;
    changes.push({
      subject: p.resource.subject,
      verb: p.action === "unchanged" ? "" : planVerb(p),
      diff: p.action === "unchanged" ? "" : diffObject(p.resource.subject, p.live, p.merged ?? p.resource.object).trimEnd(),
      ...(p.note ? { note: p.note } : {}),
      warnings,
    });
  }
  for (const p of plan.prune) changes.push({ subject: p.subject, verb: "- prune", diff: diffObject(p.subject, p.live, undefined).trimEnd(), warnings: [] });
  return { changes, counts, pending: counts.created + counts.configured + counts.pruned > 0 };
}

function planVerb(p: PlannedObject): string {
  if (p.recreate) return "± recreate";
  return p.action === "created" ? "+ create" : "~ configure";
}

/**
 * What the gates say about applying the planned revision now (the same gates a cycle runs), one
 * line each, "! app: gate: verdict"; the waiting-approval line above is not said twice.
 */
export function gateLines(app: string, plan: Pick<PlanReport, "gates" | "pinnedAt">, state: AppState): string[] {
  const out: string[] = [];
  if (plan.pinnedAt) out.push(`! ${app}: pinned at ${plan.pinnedAt.slice(0, 12)}: this revision is not applied until plumber resume ${app}`);
  for (const { gate, verdict: v } of plan.gates) {
    if (v.verdict === "pass") continue;
    if (v.verdict === "approval" && state.phase === "WaitingApproval" && v.message.startsWith(`revision ${state.pendingRevision.slice(0, 12)} `)) continue;
    if (v.verdict === "refuse") out.push(`! ${app}: ${gate}: would refuse the revision${v.permanent ? " (until the branch moves)" : ""}: ${v.message}`);
    else out.push(`! ${app}: ${gate}: ${v.message}${v.verdict === "hold" && !v.driftRepair ? " (drift is not repaired meanwhile)" : ""}`);
  }
  return out;
}

