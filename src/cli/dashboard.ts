// `plumber dashboard` (the dashboard alone, reading the clusters with the user's kubeconfig) and
// the dashboard beside `plumber run` (--dashboard-listen / config dashboard.listen).
import { parseDuration } from "../config/duration.js";
import { startDashboard, type Dashboard } from "../dashboard/server.js";
import type { CommandContext } from "./context.js";
import { EXIT_OK } from "./context.js";

type Out = (line: string) => void;

export const DEFAULT_DASHBOARD_LISTEN = "127.0.0.1:8090";
const DEFAULT_REFRESH = "5s";

export interface DashboardFlags {
  listen?: string;
  refresh?: string;
  public?: boolean;
}

function refreshMs(v: string | undefined): number {
  try {
    return parseDuration(v ?? DEFAULT_REFRESH);
  } catch (e) {
    throw new Error(`--refresh: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Starts a dashboard on its own runtime (its own connections, never the daemon's write-gated ones); close() closes both. */
export async function serveDashboard(ctx: CommandContext, listen: string, flags: DashboardFlags = {}): Promise<Dashboard> {
  const rt = await ctx.runtime();
  try {
    const d = await startDashboard({ rt, listen, publicReads: flags.public ?? ctx.config.dashboard.public, refreshMs: refreshMs(flags.refresh), log: ctx.log.child({ component: "dashboard" }) });
    return {
      ...d,
      close: async () => {
        await d.close();
        rt.close();
      },
    };
  } catch (e) {
    rt.close();
    throw e;
  }
}

export async function dashboardCommand(ctx: CommandContext, out: Out, flags: DashboardFlags): Promise<number> {
  const d = await serveDashboard(ctx, flags.listen ?? DEFAULT_DASHBOARD_LISTEN, flags);
  out(`dashboard listening on ${d.url}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await d.close();
  return EXIT_OK;
}
