// A plumbing-shaped monorepo (test/support/monorepo.ts) on the real git server: every overlay
// rendered by plumber from its closure equals what the real kustomize binary builds from a full
// `git clone` of the same commit (the oracle); one overlay is applied to the real apiserver; a
// symlink and an over-size file inside a closure are refused with file:line.
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.js";
import { createGitHttp } from "../../src/git/http.js";
import { GitRepo } from "../../src/git/repo.js";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { buildKustomization, findKustomization, kustomizeStats } from "../../src/kustomize/render.js";
import { silentLogger } from "../../src/log.js";
import { RepoPoller } from "../../src/reconcile/poller.js";
import { buildRuntime, type Runtime } from "../../src/reconcile/runtime.js";
import { git, type TestRepo } from "../bed/testrepo.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

/** The fields of a Tekton Task or Pipeline these tests look at. */
interface Task {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { steps: { image: string }[]; params: { name: string; default?: string }[] };
}
import { createMonorepo, type Monorepo } from "../support/monorepo.js";

const execFileP = promisify(execFile);

let repo: TestRepo;
let mono: Monorepo & { sha: string };
let source: GitRepo;
const oracle = new Map<string, string>();
const kustomize = () => `${testEnv().binDir}/kustomize`;

beforeAll(async () => {
  const env = testEnv();
  repo = await newTestRepo("monorepo");
  mono = await createMonorepo(repo, { prefix: `${uniqueName("m").slice(0, 20)}-` });
  // The oracle: kustomize on a full checkout of the same commit.
  const checkout = await tempDir("monorepo-checkout");
  await git(["clone", "--quiet", repo.bareDir, checkout]);
  expect(await git(["rev-parse", "HEAD"], checkout)).toBe(mono.sha);
  for (const dir of mono.buildable) {
    const { stdout } = await execFileP(kustomize(), ["build", join(checkout, dir)], { maxBuffer: 64 << 20 });
    oracle.set(dir, stdout);
  }
  source = new GitRepo({ url: env.gitUrl(repo.name), http: createGitHttp({ auth: { token: env.gitToken }, timeoutMs: 30_000 }), cacheDir: await tempDir("monorepo-cache") });
  await source.ensureCommit("main", mono.sha);
});

afterAll(async () => {
  await repo?.cleanup();
});

describe("a plumbing-shaped monorepo", () => {
  it("has the real shape: symlinked kodata, binaries, a >1 MiB SVG, 30+ kustomizations — and a whole-repo read is refused", async () => {
    expect(mono.kustomizations.length).toBeGreaterThanOrEqual(30);
    expect((await source.listDir(mono.sha, "bots/mariobot/kodata")).find((e) => e.name === "LICENSE")?.type).toBe("symlink");
    expect((await source.readFileBytes(mono.sha, "docs/architecture.svg", 8 << 20)).byteLength).toBeGreaterThan(1 << 20);
    // what renderKustomize used to do: read every file of the repo
    await expect(source.readFiles(mono.sha, ".", () => true, { maxFileBytes: 1 << 20, maxTotalBytes: 256 << 20, maxFiles: 100_000 })).rejects.toThrow(/symlink|bytes|UTF-8/);
  });

  it("renders every overlay from its closure exactly as kustomize does on a full checkout", async () => {
    expect(mono.buildable.length).toBeGreaterThanOrEqual(30);
    const total = (await git(["--git-dir", repo.bareDir, "ls-tree", "-r", "--name-only", mono.sha])).split("\n").length;
    for (const dir of mono.buildable) {
      const kfile = await findKustomization(source, mono.sha, dir);
      expect(kfile, dir).toBe(`${dir}/kustomization.yaml`);
      const out = await buildKustomization(source, mono.sha, dir, kfile as string, { binary: kustomize() });
      expect(out, dir).toBe(oracle.get(dir));
      expect(out.length, dir).toBeGreaterThan(0);
      // only the closure was read: a handful of files under tekton/, out of the whole repo
      expect(kustomizeStats.lastClosureFiles, dir).toBeLessThan(total / 5);
    }
  });

  it("applies an overlay to the real apiserver: patched Tasks, `default: .` params as strings, a binary generator file, and refuses a symlink and a big file inside the closure", async () => {
    const env = testEnv();
    const ns = mono.namespaceOf("ci");
    const kube = await KubeClient.create(loadKubeConfig({ kubeconfig: env.kubeconfigPath }));
    let rt: Runtime | undefined;
    try {
      await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }) });
      const dir = await tempDir("monorepo-config");
      await writeFile(join(dir, "token"), env.gitToken);
      const app = uniqueName("dogfooding-ci").slice(0, 40).replace(/-+$/, "");
      const config = {
        clusters: [{ name: "local", kubeconfig: env.kubeconfigPath }],
        repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1m", auth: { tokenFile: "token" } }],
        apps: [{ name: app, repo: "plumbing", branch: "main", path: "tekton/cd/dogfooding/ci", cluster: "local", namespace: ns, allowedNamespaces: [ns] }],
        state: { namespace: uniqueName("state") },
        kustomize: { binary: kustomize() },
      };
      await writeFile(join(dir, "plumber.yaml"), stringify(config));
      rt = await buildRuntime(await loadConfig(join(dir, "plumber.yaml")), { log: silentLogger(), cacheDir: join(dir, "cache") });
      const poller = new RepoPoller(rt.repos.get("plumbing") as NonNullable<ReturnType<Runtime["repos"]["get"]>>, rt.apps, silentLogger());
      const cycle = async () => {
        const res = await poller.cycle();
        if (res.error) throw new Error(res.error);
        return (res.apps.find((a) => a.app === app) as (typeof res.apps)[number]).result;
      };
      const first = await cycle();
      expect(first.kind, JSON.stringify(first)).toBe("applied");

      const build = await kube.getOptional<Task>(`/apis/tekton.dev/v1/namespaces/${ns}/tasks/ci-build`);
      expect(build?.spec.steps[0]?.image).toBe("ghcr.io/tektoncd/plumbing/ci-1:dogfooding");
      expect(build?.spec.params.find((p) => p.name === "path")?.default).toBe(".");
      expect(build?.metadata.labels).toMatchObject({ "plumbing.tekton.dev/cluster": "dogfooding" });
      const lint = await kube.getOptional<Task>(`/apis/tekton.dev/v1/namespaces/${ns}/tasks/ci-lint`);
      expect(lint?.spec.params[2]).toMatchObject({ name: "verbose", default: "false" });
      const pipeline = await kube.getOptional<Task>(`/apis/tekton.dev/v1/namespaces/${ns}/pipelines/ci-pipeline`);
      expect(pipeline?.metadata.annotations).toMatchObject({ "plumbing.tekton.dev/managed": "true", "cluster-config": "cluster-config" });
      const cms = await kube.getOptional<{ items: { metadata: { name: string }; binaryData?: Record<string, string> }[] }>(`/api/v1/namespaces/${ns}/configmaps?labelSelector=app.kubernetes.io/part-of%3Dplumbing`);
      const defaults = cms?.items.find((c) => c.metadata.name.startsWith("plumbing-defaults-"));
      const png = mono.files["tekton/resources/common/assets/tekton.png"] as Buffer;
      expect(Buffer.from(defaults?.binaryData?.logo ?? "", "base64").equals(png)).toBe(true);

      // A symlink and an over-size file inside the closure: refused, named, nothing applied.
      await repo.commit(
        {
          "tekton/cd/dogfooding/ci/kustomization.yaml":
            (mono.files["tekton/cd/dogfooding/ci/kustomization.yaml"] as string) + "secretGenerator:\n  - name: license\n    files:\n      - LICENSE\n      - big.svg\n",
          "tekton/cd/dogfooding/ci/LICENSE": { symlink: "../../../../LICENSE" },
          "tekton/cd/dogfooding/ci/big.svg": "<svg>" + " ".repeat(1_200_000) + "</svg>",
          "tekton/cd/dogfooding/ci/patch-build.yaml": (mono.files["tekton/cd/dogfooding/ci/patch-build.yaml"] as string).replace(":dogfooding", ":broken"),
        },
        "symlink and big file in the closure",
      );
      const bad = await cycle();
      expect(bad.kind).toBe("failed");
      if (bad.kind !== "failed") return;
      expect(bad.permanent).toBe(true);
      const lines = (mono.files["tekton/cd/dogfooding/ci/kustomization.yaml"] as string).split("\n").length;
      expect(bad.message).toContain(`tekton/cd/dogfooding/ci/kustomization.yaml:${lines + 3}: secretGenerator[0].files[0]: "LICENSE" is a symlink`);
      expect(bad.message).toContain(`tekton/cd/dogfooding/ci/kustomization.yaml:${lines + 4}: secretGenerator[0].files[1]: "tekton/cd/dogfooding/ci/big.svg" is over the limit`);
      expect((await kube.getOptional<Task>(`/apis/tekton.dev/v1/namespaces/${ns}/tasks/ci-build`))?.spec.steps[0]?.image).toBe("ghcr.io/tektoncd/plumbing/ci-1:dogfooding");
    } finally {
      rt?.close();
      kube.close();
    }
  });
});
