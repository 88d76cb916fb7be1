import type { Runtime } from "../reconcile/runtime.js";
import type { AppReconciler } from "../reconcile/app.js";
import { EXIT_ERROR, EXIT_OK, type CommandContext } from "./context.js";
import { table } from "./commands.js";

type Out = (line: string) => void;

/**
 * The manual controls: each writes a request into the app's control record in its cluster,
 * which the running plumber (whichever replica leads) acts on at its next cycle.
 */
async function withApp(ctx: CommandContext, name: string, fn: (rt: Runtime, app: AppReconciler) => Promise<number>): Promise<number> {
  const rt = await ctx.runtime([name]);
  try {
    const app = rt.apps[0];
    if (!app) throw new Error(`no app named ${name}`);
    await rt.clusters.get(app.app.cluster)?.verify();
    return await fn(rt, app);
  } finally {
    rt.close();
  }
}

/** Resolves a full or abbreviated revision against the app's branch head and history. */
async function resolveRevision(rt: Runtime, app: AppReconciler, rev: string): Promise<string> {
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

export async function approveCommand(ctx: CommandContext, out: Out, name: string, rev: string): Promise<number> {
  return withApp(ctx, name, async (rt, app) => {
    const sha = await resolveRevision(rt, app, rev);
    await rt.clusters.get(app.app.cluster)?.control.update(name, { approvedRevision: sha });
    out(`approved ${name} at ${sha.slice(0, 12)}; plumber deploys it at its next cycle`);
    return EXIT_OK;
  });
}

export async function rollbackCommand(ctx: CommandContext, out: Out, name: string, rev: string | undefined): Promise<number> {
  return withApp(ctx, name, async (rt, app) => {
    const state = await app.currentState();
    let sha: string | undefined;
    if (rev) sha = await resolveRevision(rt, app, rev);
    else sha = state.history.find((h) => h.result !== "Failed" && h.revision !== state.revision)?.revision;
    if (!sha) {
      out(`${name}: no earlier good revision in its history; name one: plumber rollback ${name} REVISION`);
      return EXIT_ERROR;
    }
    await rt.clusters.get(app.app.cluster)?.control.update(name, { pinRevision: sha });
    out(`${name} pinned to ${sha.slice(0, 12)}: plumber applies it at its next cycle and stays there until: plumber resume ${name}`);
    return EXIT_OK;
  });
}

export async function resumeCommand(ctx: CommandContext, out: Out, name: string): Promise<number> {
  return withApp(ctx, name, async (rt, app) => {
    await rt.clusters.get(app.app.cluster)?.control.update(name, { pinRevision: null });
    out(`${name} follows ${app.app.branch} again`);
    return EXIT_OK;
  });
}

export async function retryCommand(ctx: CommandContext, out: Out, name: string): Promise<number> {
  return withApp(ctx, name, async (rt, app) => {
    await rt.clusters.get(app.app.cluster)?.control.update(name, { retryAt: new Date().toISOString() });
    const state = await app.currentState();
    out(`${name}: retry requested${state.failedRevision ? ` of ${state.failedRevision.slice(0, 12)}` : ""}; plumber tries again at its next cycle`);
    return EXIT_OK;
  });
}

export async function historyCommand(ctx: CommandContext, out: Out, name: string, json: boolean): Promise<number> {
  return withApp(ctx, name, async (_rt, app) => {
    const state = await app.currentState();
    if (json) {
      out(JSON.stringify(state.history, null, 2));
      return EXIT_OK;
    }
    out(
      table(
        state.history.map((h) => ({
          revision: h.revision.slice(0, 12),
          result: h.result,
          started: h.startedAt,
          finished: h.finishedAt,
          changes: h.changes ? Object.entries(h.changes).map(([k, v]) => `${v} ${k}`).join(", ") : "",
          checks: (h.checks ?? []).map((c) => `${c.phase}/${c.name}:${c.passed ? "ok" : c.reason}`).join(" "),
          why: (h.cause ?? h.message ?? "").split("\n")[0]?.slice(0, 100) ?? "",
        })),
      ),
    );
    return EXIT_OK;
  });
}
