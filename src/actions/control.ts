// The manual controls — approve, roll back (pin), resume, retry — as one code path for every
// front end: `plumber approve …` (src/cli/control.ts) and the dashboard's buttons
// (src/dashboard/actions.ts). Each writes a request into the app's control record in its cluster,
// which the running plumber (whichever replica leads) acts on at its next cycle.
import type { AppReconciler } from "../reconcile/app.js";
import type { Runtime } from "../reconcile/runtime.js";
import type { ControlStore } from "../state/control.js";

/** What an action did, said for a person; `ok: false` when nothing was recorded. */
export interface ActionResult {
  ok: boolean;
  message: string;
}

/** Who asked: recorded beside the request (the dashboard: the TokenReview user; the CLI: its SelfSubjectReview user). */
export interface Actor {
  by?: string;
}

function controlOf(rt: Runtime, app: AppReconciler): ControlStore {
  const c = rt.clusters.get(app.app.cluster);
  if (!c) throw new Error(`app ${app.app.name}: cluster ${app.app.cluster} is not connected`);
  return c.control;
}

/** Resolves a full or abbreviated revision against the app's branch head and history. */
export async function resolveRevision(rt: Runtime, app: AppReconciler, rev: string): Promise<string> {
  const state = await app.currentState();
  const known = new Set<string>([...state.history.map((h) => h.revision), state.revision ?? "", state.pendingRevision ?? "", state.goodRevision ?? ""]);
  const heads = await rt.repos.get(app.app.repo)?.repo.listHeads();
  const head = heads?.get(app.app.branch);
  if (head) known.add(head);
  const matches = [...known].filter((k) => k && k.startsWith(rev.toLowerCase()));
  if (matches.length === 1) return matches[0] as string;
  if (matches.length > 1) throw new Error(`revision ${rev} is ambiguous: ${matches.join(", ")}`);
  if (/^[0-9a-f]{40}$/.test(rev)) return rev;
  throw new Error(`revision ${rev} is neither the head of ${app.app.branch} nor in ${app.app.name}'s history; give the full sha`);
}

export async function approve(rt: Runtime, app: AppReconciler, rev: string, actor: Actor = {}): Promise<ActionResult> {
  const sha = await resolveRevision(rt, app, rev);
  await controlOf(rt, app).update(app.app.name, { approvedRevision: sha, approvedBy: actor.by ?? null });
  return { ok: true, message: `approved ${app.app.name} at ${sha.slice(0, 12)}${by(actor)}; plumber deploys it at its next cycle` };
}

export async function rollback(rt: Runtime, app: AppReconciler, rev: string | undefined, actor: Actor = {}): Promise<ActionResult> {
  const state = await app.currentState();
  const sha = rev ? await resolveRevision(rt, app, rev) : state.history.find((h) => h.result !== "Failed" && h.revision !== state.revision)?.revision;
  if (!sha) return { ok: false, message: `${app.app.name}: no earlier good revision in its history; name one: plumber rollback ${app.app.name} REVISION` };
  await controlOf(rt, app).update(app.app.name, { pinRevision: sha, pinnedBy: actor.by ?? null });
  return { ok: true, message: `${app.app.name} pinned to ${sha.slice(0, 12)}${by(actor)}: plumber applies it at its next cycle and stays there until: plumber resume ${app.app.name}` };
}

export async function resume(rt: Runtime, app: AppReconciler, _actor: Actor = {}): Promise<ActionResult> {
  await controlOf(rt, app).update(app.app.name, { pinRevision: null, pinnedBy: null });
  return { ok: true, message: `${app.app.name} follows ${app.app.branch} again` };
}

export async function retry(rt: Runtime, app: AppReconciler, actor: Actor = {}): Promise<ActionResult> {
  await controlOf(rt, app).update(app.app.name, { retryAt: new Date().toISOString(), retryBy: actor.by ?? null });
  const state = await app.currentState();
  return { ok: true, message: `${app.app.name}: retry requested${state.failedRevision ? ` of ${state.failedRevision.slice(0, 12)}` : ""}${by(actor)}; plumber tries again at its next cycle` };
}

function by(actor: Actor): string {
  return actor.by ? ` by ${actor.by}` : "";
}
