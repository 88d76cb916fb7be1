import { EXIT_ERROR, EXIT_OK } from "./context.js";
import { demoDashboard } from "./demo-dashboard.js";
import { STEPS, tour } from "./demo-steps.js";
import { DemoFailure, Tour } from "./demo-tour.js";
import { startDemoWorld } from "./demo-world.js";

type Out = (line: string) => void;

/**
 * The five-minute tour on this machine: two real control planes (nightly and prod), a real git
 * server serving examples/demo-repo, and plumber taking one repo through first sync, steady
 * state, drift, a failed post-check and its rollback, a promotion to prod after soak and
 * approval, a scheduled release, and status and history at the end (src/cli/demo-steps.ts), with
 * the dashboard following along.
 */
export async function demoCommand(out: Out, opts: { keep: boolean }): Promise<number> {
  const world = await startDemoWorld(out);
  let code = EXIT_OK;
  try {
    const t = await Tour.open(world, out, STEPS);
    try {
      const dashboard = await demoDashboard(t.cli());
      try {
        out(`▸ dashboard: ${dashboard.url} (live while the demo runs; --keep keeps it up)`);
        await tour(t, dashboard);
        if (opts.keep) await keepRunning(t, out, dashboard.url);
      } finally {
        await dashboard.close();
      }
    } finally {
      t.close();
    }
  } catch (e) {
    // A step that found plumber did not do its part says what it expected; anything else is a crash of the demo itself.
    out(`✗ ${e instanceof DemoFailure ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    code = EXIT_ERROR;
  } finally {
    await world.stop();
  }
  out(code === EXIT_OK ? "\n▸ demo done" : "\n▸ demo failed");
  return code;
}

/** --keep: plumber goes on polling as `plumber run` does, until Ctrl-C; both clusters stay up. */
async function keepRunning(t: Tour, out: Out, dashboardUrl: string): Promise<void> {
  out("▸ kept running: plumber polls every second as `plumber run` does; try kubectl against either cluster. Ctrl-C to stop");
  out(`  export KUBECONFIG=${t.world.nightly.kubeconfigPath}   # nightly`);
  out(`  export KUBECONFIG=${t.world.prod.kubeconfigPath}   # prod`);
  out(`  dashboard: ${dashboardUrl}`);
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  await t.poller.run(stop.signal);
}
