#!/usr/bin/env node
import { Command, Option } from "commander";
import { applyOnceCommand, describeError, planCommand, runCommand, statusCommand, validateCommand, type RunOptions } from "./commands.js";
import { commandContext, EXIT_ERROR, type GlobalOptions } from "./context.js";

const program = new Command();

program
  .name("plumber")
  .description("Pull-based GitOps for Kubernetes plumbing: polls git over HTTPS, applies with server-side apply, prunes, repairs drift.")
  .option("-c, --config <path>", "config file", process.env.PLUMBER_CONFIG ?? "config/plumber.yaml")
  .addOption(new Option("--log-level <level>", "log level").choices(["trace", "debug", "info", "warn", "error", "silent"]))
  .option("--cache-dir <dir>", "where git objects are kept (default ~/.cache/plumber/repos)")
  .showHelpAfterError();

function globals(): GlobalOptions {
  return program.opts<GlobalOptions>();
}

function print(line: string): void {
  if (line) process.stdout.write(line + "\n");
}

async function run(fn: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await fn();
  } catch (e) {
    process.stderr.write(`error: ${describeError(e)}\n`);
    process.exitCode = EXIT_ERROR;
  }
}

program
  .command("validate")
  .description("validate the config and every app's manifests at the current branch heads (no cluster access)")
  .action(() => run(async () => validateCommand(await commandContext(globals(), { level: "warn" }), print, globals().cacheDir)));

program
  .command("plan")
  .description("show per app what the next apply would change, as a diff (exit 0: no changes, 2: changes, 1: error)")
  .option("-a, --app <name...>", "only these apps")
  .action((o: { app?: string[] }) => run(async () => planCommand(await commandContext(globals(), { level: "warn" }), print, o.app ?? [])));

program
  .command("apply")
  .description("reconcile every app once: apply new revisions, prune, repair drift")
  .option("--once", "run one cycle and exit (the default; `plumber run` is the daemon)", true)
  .option("-a, --app <name...>", "only these apps")
  .action((o: { app?: string[] }) => run(async () => applyOnceCommand(await commandContext(globals()), o.app ?? [])));

program
  .command("run")
  .description("run the reconciler: poll every repo on its interval until SIGTERM (SIGHUP reloads the config)")
  .option("--metrics-addr <addr>", "listen address of /metrics, /healthz and /readyz; \"\" for none", ":8080")
  .option("--leader-elect", "elect a leader with a coordination.k8s.io Lease; only the leader writes (default: on in a pod, off elsewhere)")
  .option("--no-leader-elect", "run without leader election")
  .option("--lease-namespace <ns>", "namespace of the Lease (default: the pod's namespace, else state.namespace)")
  .option("--lease-name <name>", "name of the Lease", "plumber")
  .option("--lease-duration <duration>", "how long standbys wait for a silent leader before taking over", "15s")
  .option("--renew-deadline <duration>", "how long a leader goes on without renewing before it stops writing", "10s")
  .option("--retry-period <duration>", "how often the Lease is renewed or tried", "2s")
  .option("--shard", "split the apps among all replicas run with --shard (a Lease per replica and per shard of apps, in the lease namespace); releases run on the leader")
  .option("--shards <n>", "with --shard: how many shards (Leases) the apps fall into, 1-1024; every replica must use the same", "32")
  .option("--shutdown-grace <duration>", "after SIGTERM: how long the cycle in flight may run before its remaining writes are abandoned", "20s")
  .option("--dashboard-listen <addr>", "serve the dashboard on this address (default: config dashboard.listen, else none)")
  .action((o: Omit<RunOptions, "cacheDir">) => run(async () => runCommand(await commandContext(globals()), { ...o, cacheDir: globals().cacheDir })));

program
  .command("status")
  .description("per app: revision, last result and live drift, read from the cluster")
  .option("-a, --app <name...>", "only these apps")
  .option("--json", "print JSON")
  .action((o: { app?: string[]; json?: boolean }) =>
    run(async () => statusCommand(await commandContext(globals(), { level: "warn" }), print, o.app ?? [], Boolean(o.json))),
  );

program
  .command("approve <app> <revision>")
  .description("approve a revision of an app with approval: manual (recorded in the cluster)")
  .action((app: string, rev: string) =>
    run(async () => (await import("./control.js")).approveCommand(await commandContext(globals(), { level: "warn" }), print, app, rev)),
  );

program
  .command("rollback <app> [revision]")
  .description("re-apply a recorded revision (default: the last good one before the current) and hold the app there until `plumber resume`")
  .action((app: string, rev: string | undefined) =>
    run(async () => (await import("./control.js")).rollbackCommand(await commandContext(globals(), { level: "warn" }), print, app, rev)),
  );

program
  .command("resume <app>")
  .description("release a rollback pin: the app follows its branch again")
  .action((app: string) => run(async () => (await import("./control.js")).resumeCommand(await commandContext(globals(), { level: "warn" }), print, app)));

program
  .command("retry <app>")
  .description("try a failed revision again (plumber does not retry a failed revision on its own until the branch moves)")
  .action((app: string) => run(async () => (await import("./control.js")).retryCommand(await commandContext(globals(), { level: "warn" }), print, app)));

program
  .command("history <app>")
  .description("the app's last deploys: revision, times, result, changes, checks, rollback cause")
  .option("--json", "print JSON")
  .action((app: string, o: { json?: boolean }) =>
    run(async () => (await import("./control.js")).historyCommand(await commandContext(globals(), { level: "warn" }), print, app, Boolean(o.json))),
  );

program
  .command("releases")
  .description("scheduled releases: each schedule with its next fire times (its time zone and UTC) and last outcomes, read from the cluster")
  .option("--json", "print JSON")
  .action((o: { json?: boolean }) =>
    run(async () => (await import("./releases.js")).releasesCommand(await commandContext(globals(), { level: "warn" }), print, Boolean(o.json))),
  );

program
  .command("release <name>")
  .description("fire a scheduled release at once (recorded as manual); its concurrency policy applies")
  .requiredOption("--now", "fire now (required)")
  .action((name: string) => run(async () => (await import("./releases.js")).releaseNowCommand(await commandContext(globals(), { level: "warn" }), print, name)));

program
  .command("dashboard")
  .description("serve the dashboard locally: fleet, apps, releases and events, read from the clusters with your kubeconfig; actions need a bearer token")
  .option("--listen <addr>", "listen address", "127.0.0.1:8090")
  .option("--refresh <duration>", "how often the fleet is read again and pages updated", "5s")
  .option("--public", "serve the read-only pages without a token on a non-loopback address too (config dashboard.public)")
  .action((o: { listen: string; refresh: string; public?: boolean }) =>
    run(async () => (await import("./dashboard.js")).dashboardCommand(await commandContext(globals()), print, o)),
  );

program
  .command("demo")
  .description("the tour on two local control planes (nightly, prod) and a git server: first sync, steady state, drift, a failed post-check rolled back, a promotion to prod after soak and approval, a scheduled release, status and history (exit 1 when a step's outcome is not there)")
  .option("--keep", "keep both control planes and plumber running after the tour until Ctrl-C")
  .action((o: { keep?: boolean }) =>
    run(async () => {
      const { demoCommand } = await import("./demo.js");
      return demoCommand(print, { keep: Boolean(o.keep) });
    }),
  );

await program.parseAsync(process.argv);
