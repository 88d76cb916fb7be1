// What `plumber demo` runs on: two real control planes (nightly and prod, kube-apiserver + etcd
// each, with the Tekton CRDs), one git smart-HTTP server serving examples/demo-repo, and the
// config that ties them together. Everything lives under one temp dir and goes with stop().
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { KubeClient, loadKubeConfig } from "../kube/client.js";
import { kubeSystemUID } from "../kube/identity.js";
import { ensureBinaries } from "../local/binaries.js";
import { installCrds, startControlPlane, type ControlPlane } from "../local/controlplane.js";
import { startGitServer, type GitServer } from "../local/gitserver.js";
import { packageFile } from "../local/package.js";
import { spawnReaper } from "../local/reaper.js";
import { LocalRepo } from "../local/repo.js";
import { sleep } from "../util/pool.js";
import { DEMO, demoConfigYaml } from "./demo-config.js";

type Out = (line: string) => void;

export interface DemoWorld {
  nightly: ControlPlane;
  prod: ControlPlane;
  git: GitServer;
  repo: LocalRepo;
  /** examples/demo-repo as committed first, by path. */
  files: Record<string, string>;
  first: string;
  configFile: string;
  work: string;
  stop(): Promise<void>;
}

export async function startDemoWorld(out: Out): Promise<DemoWorld> {
  const work = await mkdtemp(join(tmpdir(), "plumber-demo-"));
  // A demo killed mid-tour (Ctrl-C twice, a closed pipe) runs no stop(): the watchdog removes its dir then.
  const reaper = spawnReaper({ pids: [], dirs: [work] });
  const stops: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
    await sleep(10);
    await rm(work, { recursive: true, force: true });
    reaper.disarm();
  };
  try {
    out("▸ starting two local control planes, nightly and prod (kube-apiserver + etcd each; the first run builds them from source, which takes a few minutes)");
    const binDir = await ensureBinaries({ log: (l) => out(`  ${l}`) });
    const start = async (name: string): Promise<{ cp: ControlPlane; uid: string }> => {
      const cp = await startControlPlane({ binDir, log: (l) => out(`  ${name}: ${l}`) });
      stops.push(() => cp.stop());
      await installCrds(cp.kubeconfigPath, undefined, { binDir });
      return { cp, uid: await identityOf(cp) };
    };
    const [n, p] = await Promise.all([start(DEMO.nightly.cluster), start(DEMO.prod.cluster)]);
    const nightly = n.cp;
    const prod = p.cp;
    out(`  export KUBECONFIG=${nightly.kubeconfigPath}   # nightly`);
    out(`  export KUBECONFIG=${prod.kubeconfigPath}   # prod`);
    out(`  wrong-cluster guard (clusters[].expect.kubeSystemUID): nightly is ${n.uid}, prod is ${p.uid}; plumber refuses any other`);

    const token = "demo-" + Math.random().toString(36).slice(2);
    const git = await startGitServer({ root: join(work, "git"), auth: { token } });
    stops.push(() => git.stop());
    const repo = await LocalRepo.create(join(work, "git"), DEMO.repo);
    const files = await readTree(packageFile("examples", "demo-repo"));
    const first = await repo.commit(files, "plumbing: nightly and prod overlays, smoke post-check, nightly release");
    out(`▸ serving examples/demo-repo at ${git.url(DEMO.repo)} (commit ${first.slice(0, 12)})`);

    await writeFile(join(work, "token"), token);
    const configFile = join(work, "plumber.yaml");
    await writeFile(
      configFile,
      demoConfigYaml({
        nightly: { kubeconfig: nightly.kubeconfigPath, uid: n.uid },
        prod: { kubeconfig: prod.kubeconfigPath, uid: p.uid },
        repoUrl: git.url(DEMO.repo),
        kustomize: join(binDir, "kustomize"),
      }),
    );
    return { nightly, prod, git, repo, files, first, configFile, work, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The cluster's identity, as `kubectl get ns kube-system -o jsonpath='{.metadata.uid}'` prints it. */
async function identityOf(cp: ControlPlane): Promise<string> {
  const client = await KubeClient.create(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }));
  try {
    return await kubeSystemUID(client);
  } finally {
    client.close();
  }
}

/** Every file under dir, by path relative to it: what the demo commits (also the plan test's copy of the demo repo). */
export async function readTree(dir: string): Promise<Record<string, string>> {
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
