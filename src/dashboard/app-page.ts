// The app page's data: the fleet row and history from the last read, and — read on request, as
// `plumber plan` does it — the pending revision's plan as a diff (Secrets masked) and its gates.
import { describePlan, gateLines } from "../actions/plan.js";
import { resolveBranch } from "../branches/resolve.js";
import type { AppReconciler } from "../reconcile/app.js";
import type { Runtime } from "../reconcile/runtime.js";
import type { Snapshot } from "./collect.js";
import { appActions, fleetRow, historyItems } from "./model.js";
import type { AppPageData, PendingView } from "./pages.js";

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function pendingOf(rt: Runtime, app: AppReconciler, current: string | undefined): Promise<PendingView | undefined> {
  const heads = await rt.repos.get(app.app.repo)?.repo.listHeads();
  const { branch, head } = resolveBranch(app.app, heads ?? new Map<string, string>());
  if (!head || !branch || head === current) return undefined;
  try {
    const plan = await app.plan(head, branch);
    return { revision: head, summary: describePlan(plan), gates: gateLines(app.app.name, plan, await app.currentState()) };
  } catch (e) {
    return { revision: head, error: message(e) };
  }
}

export async function appPageData(rt: Runtime, snap: Snapshot, name: string, now: Date): Promise<AppPageData | undefined> {
  const app = rt.apps.find((a) => a.app.name === name);
  const reading = snap.apps.find((r) => r.config.name === name);
  if (!app || !reading) return undefined;
  const s = reading.state;
  const control = await rt.clusters.get(app.app.cluster)?.control.load(name);
  let pending: PendingView | undefined;
  try {
    pending = reading.error ? undefined : await pendingOf(rt, app, s?.revision);
  } catch (e) {
    pending = { revision: s?.pendingRevision ?? "", error: message(e) };
  }
  const failed = s && (s.phase === "Halted" || s.lastResult === "Failed");
  return {
    row: fleetRow(reading, snap.commits, now),
    history: historyItems(s?.history ?? []),
    ...(pending ? { pending } : {}),
    ...(reading.drift !== undefined ? { drift: reading.drift } : {}),
    objects: reading.objects ?? [],
    ...(reading.error ? { lastError: reading.error } : failed && s.message ? { lastError: s.message } : {}),
    ...(s?.warnings ? { warnings: s.warnings } : {}),
    ...(control?.pinRevision ? { pinnedAt: control.pinRevision } : {}),
    actions: appActions(s, Boolean(control?.pinRevision)),
  };
}
