import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { loadConfig } from "../config/load.js";
import { createLogger } from "../log.js";
import { RepoPoller } from "../reconcile/poller.js";
import { buildRuntime } from "../reconcile/runtime.js";
import { installCrds, startControlPlane } from "../local/controlplane.js";
import { startGitServer } from "../local/gitserver.js";
import { packageFile } from "../local/package.js";
import { LocalRepo } from "../local/repo.js";
import { sleep } from "../util/pool.js";
import { table } from "./commands.js";
import { EXIT_ERROR, EXIT_OK } from "./context.js";

type Out = (line: string) => void;

/**
 * The whole loop on this machine: a real kube-apiserver + etcd, a real git smart-HTTP server
 * serving examples/demo-repo, and plumber deploying it, then following a change and a deletion.
 */
export async function demoCommand(out: Out, opts: { keep: boolean }): Promise<number> {
  const work = await mkdtemp(join(tmpdir(), "plumber-demo-"));
  out("▸ starting a local control plane (kube-apiserver + etcd; the first run builds them from source, which takes a few minutes)");
  const cp = await startControlPlane({ log: (l) => out(`  ${l}`) });
  const token = "demo-" + Math.random().toString(36).slice(2);
  const git = await startGitServer({ root: join(work, "git"), auth: { token } });
  let code = EXIT_OK;
  try {
    await installCrds(cp.kubeconfigPath, undefined, { binDir: cp.binDir });
    out(`  export KUBECONFIG=${cp.kubeconfigPath}`);

    const repo = await LocalRepo.create(join(work, "git"), "plumbing");
    const files = await readTree(packageFile("examples", "demo-repo"));
    const first = await repo.commit(files, "plumbing: initial");
    out(`▸ serving examples/demo-repo at ${git.url("plumbing")} (commit ${first.slice(0, 12)})`);

    await writeFile(join(work, "token"), token);
    const configFile = join(work, "plumber.yaml");
    await writeFile(
      configFile,
      [
        "clusters:",
        `  - name: local`,
        `    kubeconfig: ${cp.kubeconfigPath}`,
        "repos:",
        "  - name: plumbing",
        `    url: ${git.url("plumbing")}`,
        "    interval: 2s",
        "    auth:",
        "      tokenFile: token",
        "apps:",
        "  - name: demo-plumbing",
        "    repo: plumbing",
        "    branch: main",
        "    path: .",
        "    cluster: local",
        "    namespace: ci-plumbing",
        "",
      ].join("\n"),
    );
    const config = await loadConfig(configFile);
    // The demo prints its own summary; plumber's per-object log lines are there with PLUMBER_LOG_LEVEL=info.
    const log = createLogger({ level: process.env.PLUMBER_LOG_LEVEL ?? "warn" });
    const rt = await buildRuntime(config, { log, cacheDir: join(work, "cache") });
    const poller = new RepoPoller(rt.repos.get("plumbing") as NonNullable<ReturnType<typeof rt.repos.get>>, rt.apps, log);
    const client = rt.clusters.get("local")?.client;
    const gitConn = rt.repos.get("plumbing");
    const cycle = async (title: string): Promise<void> => {
      out(`▸ ${title}`);
      const before = client?.stats.snapshot();
      const gitBefore = gitConn?.requests.total ?? 0;
      const res = await poller.cycle();
      const after = client?.stats.snapshot();
      if (before && after) {
        out(
          `    (${(gitConn?.requests.total ?? 0) - gitBefore} git requests, ${after.total - before.total} API requests: ` +
            `${after.writes - before.writes} writes, ${after.dryRuns - before.dryRuns} dry-runs)`,
        );
      }
      if (res.error) {
        out(`    failed: ${res.error}`);
        code = EXIT_ERROR;
      }
      for (const a of res.apps) {
        const r = a.result;
        if (r.kind === "applied" || r.kind === "repaired") {
          for (const e of r.changeSet.entries) out(`    ${e.action.padEnd(10)} ${e.subject}`);
        } else if (r.kind === "failed") {
          out(`    failed: ${r.message}`);
          code = EXIT_ERROR;
        } else out(`    ${r.kind}`);
      }
    };
    try {
      await cycle("first sync: everything is created");
      await cycle("next poll, nothing changed: no writes, no dry-runs");
      const changed = await repo.commit(
        {
          "tekton/config.yaml": files["tekton/config.yaml"]?.replace("channel: nightly", "channel: stable") ?? "",
          "tekton/pipeline.yaml": null,
        },
        "plumbing: switch channel, drop the release pipeline",
      );
      await cycle(`commit ${changed.slice(0, 12)} changes the ConfigMap and deletes the Pipeline`);
      const app = rt.apps[0];
      if (app) {
        const s = await app.currentState();
        out("▸ plumber status");
        out(
          table([
            { app: app.app.name, revision: s.revision?.slice(0, 12) ?? "-", result: s.lastResult ?? "-", objects: String(s.inventory.length) },
          ]),
        );
      }
      if (opts.keep) {
        out(`▸ control plane kept; KUBECONFIG=${cp.kubeconfigPath}; Ctrl-C to stop`);
        await new Promise<void>((resolve) => {
          process.once("SIGINT", () => resolve());
          process.once("SIGTERM", () => resolve());
        });
      }
    } finally {
      rt.close();
    }
  } finally {
    await git.stop();
    await cp.stop();
    await sleep(10);
    await rm(work, { recursive: true, force: true });
  }
  out(code === EXIT_OK ? "▸ demo done" : "▸ demo failed");
  return code;
}

async function readTree(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) files[relative(dir, p)] = await readFile(p, "utf8");
    }
  };
  await walk(dir);
  return files;
}
