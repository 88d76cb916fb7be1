// vitest globalSetup for the integration and faults projects: one scratch root (test/setup/scratch.ts),
// one control plane (with the Tekton CRDs) and one git smart-HTTP server for the whole run, handed
// to tests through provide/inject.
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { ensureBinaries } from "../../src/local/binaries.js";
import { installCrds, startControlPlane, type ControlPlane } from "../../src/local/controlplane.js";
import { startGitServer, type GitServer } from "../../src/local/gitserver.js";
import { STATS_PATH } from "../bed/gitcounts.js";
import type {} from "./env.js";
import { failingTeardown, sharedScratch } from "./scratch.js";

const log = (line: string) => process.stderr.write(`[test-bed] ${line}\n`);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let cp: ControlPlane | undefined;
  let gs: GitServer | undefined;
  // First, so that everything below and every worker makes its temp files inside the run's root.
  const scratch = await sharedScratch();
  const teardown = failingTeardown(async () => {
    await Promise.allSettled([gs?.stop(), cp?.stop()]);
    await scratch.finish();
  });
  try {
    const t0 = Date.now();
    const binDir = await ensureBinaries({ log: (l) => log(`build: ${l}`) });
    const t1 = Date.now();
    cp = await startControlPlane({ binDir, log });
    await installCrds(cp.kubeconfigPath, undefined, { binDir });
    const t2 = Date.now();
    const gitRoot = join(scratch.root, "git");
    const scratchDir = join(scratch.root, "scratch");
    await mkdir(gitRoot, { recursive: true });
    await mkdir(scratchDir, { recursive: true });
    const gitToken = randomBytes(16).toString("hex");
    gs = await startGitServer({ root: gitRoot, auth: { token: gitToken }, statsPath: STATS_PATH });
    log(
      `ready: binaries ${((t1 - t0) / 1000).toFixed(1)}s, control plane + CRDs ${((t2 - t1) / 1000).toFixed(1)}s; ` +
        `git ${gs.baseUrl}`,
    );

    project.provide("kubeconfigPath", cp.kubeconfigPath);
    project.provide("kubeServer", cp.server);
    project.provide("kubeToken", cp.token);
    project.provide("kubeCaPem", cp.caPem);
    project.provide("binDir", binDir);
    project.provide("gitBaseUrl", gs.baseUrl);
    project.provide("gitRoot", gitRoot);
    project.provide("gitToken", gitToken);
    project.provide("scratchDir", scratchDir);
    project.provide("scratchRoot", scratch.root);
  } catch (err) {
    // The setup error is the one to see; a leftover found on the way out is only logged then.
    await teardown().catch((e: unknown) => log(e instanceof Error ? e.message : String(e)));
    throw err;
  }
  return teardown;
}
