// vitest globalSetup for the integration project: one control plane (with the Tekton CRDs) and
// one git smart-HTTP server for the whole run, handed to tests through provide/inject.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { ensureBinaries } from "../../src/local/binaries.js";
import { installCrds, startControlPlane, type ControlPlane } from "../../src/local/controlplane.js";
import { startGitServer, type GitServer } from "../../src/local/gitserver.js";
import { spawnReaper, type Reaper } from "../../src/local/reaper.js";
import type {} from "./env.js";

const log = (line: string) => process.stderr.write(`[test-bed] ${line}\n`);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let cp: ControlPlane | undefined;
  let gs: GitServer | undefined;
  let runDir: string | undefined;
  let rootReaper: Reaper | undefined;
  // The control plane cleans up after itself; the run dir (git root, scratch space) is ours:
  // remove it on exit, and by a watchdog if this process is killed outright.
  const removeRootSync = () => {
    if (runDir) rmSync(runDir, { recursive: true, force: true });
  };
  process.on("exit", removeRootSync);
  const teardown = async () => {
    await Promise.allSettled([gs?.stop(), cp?.stop()]);
    rootReaper?.disarm();
    if (runDir) await rm(runDir, { recursive: true, force: true });
    process.off("exit", removeRootSync);
  };
  try {
    const t0 = Date.now();
    const binDir = await ensureBinaries({ log: (l) => log(`build: ${l}`) });
    const t1 = Date.now();
    cp = await startControlPlane({ binDir, log });
    await installCrds(cp.kubeconfigPath, undefined, { binDir });
    const t2 = Date.now();
    runDir = await mkdtemp(join(tmpdir(), "plumber-bed-"));
    rootReaper = spawnReaper({ pids: [], dirs: [runDir] });
    const gitRoot = join(runDir, "git");
    const scratchDir = join(runDir, "scratch");
    await mkdir(gitRoot);
    await mkdir(scratchDir);
    const gitToken = randomBytes(16).toString("hex");
    gs = await startGitServer({ root: gitRoot, auth: { token: gitToken } });
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
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
