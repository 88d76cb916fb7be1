import type { Runtime } from "../reconcile/runtime.js";
import type { AppReconciler } from "../reconcile/app.js";
import { EXIT_ERROR, EXIT_OK, type CommandContext } from "./context.js";
import { table } from "./commands.js";
import { approve, resume, retry, rollback, type ActionResult, type Actor } from "../actions/control.js";
import { whoAmI } from "../kube/whoami.js";

type Out = (line: string) => void;

/**
 * The manual controls (src/actions/control.ts, shared with the dashboard): each writes a request
 * into the app's control record in its cluster, which the running plumber acts on at its next cycle.
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

/** Who acts, as the app's cluster names the caller: history then says who approved or pinned from a terminal. */
async function actorOf(rt: Runtime, app: AppReconciler): Promise<Actor> {
  const cluster = rt.clusters.get(app.app.cluster);
  return { by: cluster ? await whoAmI(cluster.client) : undefined };
}

function said(out: Out, r: ActionResult): number {
  out(r.message);
  return r.ok ? EXIT_OK : EXIT_ERROR;
}

export async function approveCommand(ctx: CommandContext, out: Out, name: string, rev: string): Promise<number> {
  return withApp(ctx, name, async (rt, app) => said(out, await approve(rt, app, rev, await actorOf(rt, app))));
}

export async function rollbackCommand(ctx: CommandContext, out: Out, name: string, rev: string | undefined): Promise<number> {
  return withApp(ctx, name, async (rt, app) => said(out, await rollback(rt, app, rev, await actorOf(rt, app))));
}

export async function resumeCommand(ctx: CommandContext, out: Out, name: string): Promise<number> {
  return withApp(ctx, name, async (rt, app) => said(out, await resume(rt, app, await actorOf(rt, app))));
}

export async function retryCommand(ctx: CommandContext, out: Out, name: string): Promise<number> {
  return withApp(ctx, name, async (rt, app) => said(out, await retry(rt, app, await actorOf(rt, app))));
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
          by: h.by ?? "",
        })),
      ),
    );
    return EXIT_OK;
  });
}
