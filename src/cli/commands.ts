import { renderApp } from "../kustomize/render.js";
import { resolveBranch } from "../branches/resolve.js";
import { describePlan, gateLines } from "../actions/plan.js";
import { PlanError } from "../engine/engine.js";
import { repoPoller, type RepoPoller } from "../reconcile/poller.js";
import { contestingManagersOf, parseContested } from "../reconcile/contested.js";
import { readStateData } from "../state/notes.js";
import { describeSource, sourceRecordFromData } from "../state/source.js";
import type { Runtime } from "../reconcile/runtime.js";
import type { LoopSource } from "../service/daemon.js";
import { parseDuration } from "../config/duration.js";
import { formatProblem, FileProblemError } from "../types.js";
import { EXIT_CHANGES, EXIT_ERROR, EXIT_OK, type CommandContext } from "./context.js";

type Out = (line: string) => void;

export function describeError(e: unknown): string {
  if (e instanceof FileProblemError) return e.problems.map(formatProblem).join("\n");
  return e instanceof Error ? e.message : String(e);
}

/** Config plus every app's manifests at the current heads. Reads git; never touches a cluster. */
export async function validateCommand(ctx: CommandContext, out: Out, cacheDir?: string): Promise<number> {
  const { connectRepo, defaultCacheDir } = await import("../connect/repo.js");
  let ok = true;
  for (const repoCfg of ctx.config.repos) {
    const apps = ctx.config.apps.filter((a) => a.repo === repoCfg.name);
    if (apps.length === 0) continue;
    const conn = await connectRepo(repoCfg, cacheDir ?? defaultCacheDir());
    try {
      const heads = await conn.repo.listHeads();
      for (const app of apps) {
        const { branch, head } = resolveBranch(app, heads);
        if (!head || !branch) {
          out(`✗ ${app.name}: branch "${app.branch}" not found in ${repoCfg.url}`);
          ok = false;
          continue;
        }
        try {
          await conn.repo.ensureCommit(branch, head);
          const manifests = await renderApp(conn.repo, head, app.path, ctx.config.kustomize);
          out(`✓ ${app.name}: ${manifests.length} objects at ${head.slice(0, 12)} (${app.branch}:${app.path})`);
        } catch (e) {
          out(`✗ ${app.name} at ${head.slice(0, 12)}:\n${indent(describeError(e))}`);
          ok = false;
        }
      }
    } catch (e) {
      out(`✗ repo ${repoCfg.name}: ${describeError(e)}`);
      ok = false;
    } finally {
      conn.http.close();
    }
  }
  out(ok ? `config ${ctx.config.file} and all manifests are valid` : "validation failed");
  return ok ? EXIT_OK : EXIT_ERROR;
}

/** A kubectl-diff-like view per app of what the next apply would do. No writes. */
export async function planCommand(ctx: CommandContext, out: Out, apps: string[]): Promise<number> {
  const rt = await ctx.runtime(apps);
  try {
    let changes = false;
    let failed = false;
    for (const [repoName, conn] of rt.repos) {
      const heads = await conn.repo.listHeads();
      for (const app of rt.apps.filter((a) => a.app.repo === repoName)) {
        // A promoted app plans the revision its source offers (one read of the source's record).
        const promoted = await app.promotionTarget();
        const { branch, head } = promoted ? { branch: promoted.branch ?? app.app.branch, head: promoted.revision } : resolveBranch(app.app, heads);
        if (promoted && !head) {
          out(`= ${app.app.name}: ${promoted.note}`);
          continue;
        }
        if (!head || !branch) {
          out(`✗ ${app.app.name}: branch "${app.app.branch}" not found`);
          failed = true;
          continue;
        }
        const cluster = rt.clusters.get(app.app.cluster);
        if (!cluster) continue;
        try {
          await cluster.verify();
          const state = await app.currentState();
          // The reconciler's own plan: the same request an apply sends, with the writes left out.
          const plan = await app.plan(head, branch);
          const { changes: planned, counts, pending } = describePlan(plan);
          for (const p of planned) {
            if (p.verb === "- prune") {
              out(p.diff);
              out(`- prune ${p.subject}`);
              continue;
            }
            if (p.verb) {
              if (p.diff) out(p.diff);
              out(`${p.verb} ${p.subject}${p.note ? ` (${p.note})` : ""}`);
            }
            for (const w of p.warnings) out(`! ${p.subject}: warning: ${w}`);
          }
          if (state.phase === "WaitingApproval" && state.pendingRevision) {
            out(`! ${app.app.name}: revision ${state.pendingRevision.slice(0, 12)} waits for approval: plumber approve ${app.app.name} ${state.pendingRevision.slice(0, 12)}`);
          }
          if (state.phase === "Halted") out(`! ${app.app.name}: halted: ${state.message ?? ""}`);
          for (const line of gateLines(app.app.name, plan, state)) out(line);
          changes ||= pending;
          out(
            `${pending ? "~" : "="} ${app.app.name} → ${head.slice(0, 12)} (live ${state.revision?.slice(0, 12) ?? "none"}): ` +
              `${counts.created} to create, ${counts.configured} to configure, ${counts.pruned} to prune, ${counts.unchanged} unchanged`,
          );
        } catch (e) {
          failed = true;
          out(`✗ ${app.app.name} at ${head.slice(0, 12)}:\n${indent(e instanceof PlanError ? e.message : describeError(e))}`);
        }
      }
    }
    return failed ? EXIT_ERROR : changes ? EXIT_CHANGES : EXIT_OK;
  } finally {
    rt.close();
  }
}

/** One reconcile of every app (or the named ones); exit 1 if any failed. */
export async function applyOnceCommand(ctx: CommandContext, apps: string[]): Promise<number> {
  const rt = await ctx.runtime(apps);
  try {
    let failed = false;
    for (const poller of pollers(rt, ctx)) {
      const res = await poller.cycle();
      if (res.error || res.apps.some((a) => a.result.kind === "failed")) failed = true;
    }
    return failed ? EXIT_ERROR : EXIT_OK;
  } finally {
    rt.close();
  }
}

/** Options of `plumber run` (flags in src/cli/main.ts). */
export interface RunOptions {
  cacheDir?: string;
  /** host:port of /metrics, /healthz, /readyz; empty: none. */
  metricsAddr?: string;
  /** Default: on in a pod (KUBERNETES_SERVICE_HOST set), off elsewhere. */
  leaderElect?: boolean;
  leaseNamespace?: string;
  leaseName?: string;
  leaseDuration?: string;
  renewDeadline?: string;
  retryPeriod?: string;
  shutdownGrace?: string;
  /** Split the apps among the replicas (src/service/shard.ts). */
  shard?: boolean;
  /** With shard: how many shards (Leases) the apps fall into. */
  shards?: string;
  /** Serve the dashboard here (src/dashboard); default config dashboard.listen, none when both are unset. */
  dashboardListen?: string;
}

/** --shards: a whole number 1-1024 (each shard is one Lease renewed every retry period). */
function shardCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new Error(`--shards: "${v}" is not a whole number from 1 to 1024`);
  return n;
}

/**
 * The daemon (src/service/daemon.ts): every repo on its own interval while this replica leads,
 * metrics and probes, config reload on SIGHUP or file change, graceful stop on SIGTERM.
 */
export async function runCommand(ctx: CommandContext, opts: RunOptions = {}): Promise<number> {
  const { runDaemon } = await import("../service/daemon.js");
  // Loops run beside the repo pollers, only while this replica leads, each made from the leader
  // term's runtime: one line per kind of loop.
  const loops: LoopSource[] = [];
  loops.push((rt) => rt.releases.map((r) => ({ name: `release/${r.release.name}`, run: (signal: AbortSignal) => r.run(signal) })));
  const ms = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    try {
      return parseDuration(v);
    } catch (e) {
      throw new Error(`--${flag}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  };
  const dashboardAt = opts.dashboardListen ?? ctx.config.dashboard.listen;
  const dashboard = dashboardAt ? await (await import("./dashboard.js")).serveDashboard(ctx, dashboardAt) : undefined;
  if (dashboard) ctx.log.info({ url: dashboard.url }, `dashboard listening on ${dashboard.url}`);
  const code = await runDaemon({
    configPath: ctx.config.file,
    config: ctx.config,
    log: ctx.log,
    cacheDir: opts.cacheDir,
    metricsAddr: opts.metricsAddr ?? DEFAULT_METRICS_ADDR,
    leaderElection: {
      enabled: opts.leaderElect ?? Boolean(process.env.KUBERNETES_SERVICE_HOST),
      namespace: opts.leaseNamespace,
      name: opts.leaseName,
      leaseDurationMs: ms("lease-duration", opts.leaseDuration),
      renewDeadlineMs: ms("renew-deadline", opts.renewDeadline),
      retryPeriodMs: ms("retry-period", opts.retryPeriod),
    },
    shutdownGraceMs: ms("shutdown-grace", opts.shutdownGrace),
    shard: opts.shard ?? false,
    ...(opts.shards !== undefined ? { shards: shardCount(opts.shards) } : {}),
    loops,
    handleSignals: true,
  }).finally(() => dashboard?.close());
  // Nothing left running (a request that never answers, say) may keep the process past the grace period.
  // Said out loud, so a leak of handles shows up as a log line rather than as a slow exit.
  setTimeout(() => {
    ctx.log.warn("handles still open after shutdown: forcing exit");
    process.exit(code);
  }, 2000).unref();
  return code;
}

export const DEFAULT_METRICS_ADDR = ":8080";

/** Per app: revision, last result, drift — read from the cluster, no writes. */
export async function statusCommand(ctx: CommandContext, out: Out, apps: string[], json: boolean): Promise<number> {
  const rt = await ctx.runtime(apps);
  try {
    const rows: Record<string, string>[] = [];
    for (const app of rt.apps) {
      const cluster = rt.clusters.get(app.app.cluster);
      if (!cluster) continue;
      await cluster.verify();
      const state = await app.currentState();
      let drift = "-";
      if (state.inventory.length > 0) {
        // The app's engine, with the installation's hash key: stored fingerprints are keyed.
        const report = await app.drift();
        if (!report) drift = "unknown (hashes recomputed at the next cycle)";
        else drift = report.drifted.length + report.missing.length === 0 ? "none" : `${report.drifted.length} drifted${contestedBy(contestingManagersOf(report))}, ${report.missing.length} missing`;
      }
      // Source failures and contested objects: status keys of their own in the same ConfigMap.
      const notes = await readStateData(cluster.client, rt.config.state.namespace, app.app.name);
      const source = sourceRecordFromData(notes);
      const contested = parseContested(notes?.contested);
      // A promoted app: what its source offers now, read from the source's record (no write).
      const promotion = (await app.promotionTarget())?.note;
      rows.push({
        app: app.app.name,
        cluster: app.app.cluster,
        // A promoted app follows its source app, not the branch: say so where the branch would be.
        branch: `${state.branch ?? app.app.branch}${app.app.promote ? ` via ${app.app.promote.from}` : ""}`,
        revision: state.revision?.slice(0, 12) ?? "-",
        phase: state.phase ?? "-",
        result: state.lastResult ?? "-",
        pending: state.pendingRevision?.slice(0, 12) ?? "",
        objects: String(state.inventory.length),
        drift,
        updated: state.updatedAt ?? "-",
        message: [source ? describeSource(source) : "", state.message?.split("\n")[0] ?? "", promotion && !state.message?.includes(promotion) ? promotion : ""].filter(Boolean).join("; "),
        warnings: json ? (state.warnings ?? "") : warningsCell(state.warnings),
        source: source ? `failing since ${source.failingSince}` : "ok",
        contested: contested.map((c) => `${c.object} by ${c.managers.join(", ") || "another writer"}`).join("; "),
        ...(json && promotion ? { promotion } : {}),
        ...(json && source
          ? {
              sourceFailingSince: source.failingSince,
              sourceError: source.error,
              sourceLastGoodAt: source.lastGoodAt ?? "",
              sourceLastGoodHeads: Object.entries(source.lastGoodHeads ?? {}).map(([b, sha]) => `${b}=${sha}`).join(","),
            }
          : {}),
      });
    }
    if (json) out(JSON.stringify(rows, null, 2));
    else out(table(rows));
    return EXIT_OK;
  } finally {
    rt.close();
  }
}

/** " (contested by "hpa-like")" for the drift column, from the live drift check. */
function contestedBy(contested: Map<string, string[]> | undefined): string {
  const who = [...new Set([...(contested?.values() ?? [])].flat())];
  return who.length ? ` (contested by ${who.map((m) => `"${m}"`).join(", ")})` : "";
}

/** The table shows how many and the first; --json has them all, one per line. */
function warningsCell(w: string | undefined): string {
  if (!w) return "";
  const lines = w.split("\n");
  return lines.length === 1 ? (lines[0] as string) : `${lines.length}: ${lines[0]} …`;
}

export function pollers(rt: Runtime, ctx: CommandContext): RepoPoller[] {
  return [...rt.repos.keys()].map((name) => repoPoller(rt, name, ctx.log));
}

function indent(s: string): string {
  return s
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}

export function table(rows: Record<string, string>[]): string {
  if (rows.length === 0) return "no apps";
  const cols = Object.keys(rows[0] as Record<string, string>);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(width[i] as number)).join("  ").trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => r[c] ?? "")))].join("\n");
}
