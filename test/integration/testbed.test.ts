// Proves the test bed itself: a real API server with the Tekton CRDs, and a real git
// smart-HTTP server that requires the token and speaks protocol v2.
import { execFile } from "node:child_process";
import { readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { kubectl } from "../../src/local/controlplane.js";
import { fetchGitServerCounts } from "../bed/gitcounts.js";
import { TestRepo } from "../bed/testrepo.js";
import { tempDir, testEnv, uniqueName } from "../setup/env.js";

const env = testEnv();

function git(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(
      "git",
      args,
      {
        cwd: opts.cwd,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: tmpdir(),
          GIT_CONFIG_NOSYSTEM: "1",
          GIT_CONFIG_GLOBAL: "/dev/null",
          GIT_TERMINAL_PROMPT: "0",
          GIT_ASKPASS: "/bin/false",
          ...opts.env,
        },
      },
      (err, stdout, stderr) => res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const bearer = () => ["-c", `http.extraHeader=Authorization: Bearer ${env.gitToken}`];

describe("control plane", () => {
  const kc = (args: string[], input?: string) =>
    kubectl(args, { kubeconfigPath: env.kubeconfigPath, binDir: env.binDir, input });

  it("serves the API with the kubeconfig", async () => {
    const { stdout } = await kc(["version", "-o", "json"]);
    const v = JSON.parse(stdout) as { serverVersion?: { gitVersion?: string } };
    expect(v.serverVersion?.gitVersion).toMatch(/^v1\.\d+/);
    const kubeconfig = await readFile(env.kubeconfigPath, "utf8");
    expect(kubeconfig).toContain("current-context: plumber-sandbox");
    expect(env.kubeServer).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it("creates a namespace and a Tekton Task and reads them back", async () => {
    const ns = uniqueName("testbed");
    await kc(["create", "namespace", ns]);
    const task = {
      apiVersion: "tekton.dev/v1",
      kind: "Task",
      metadata: { name: "hello", namespace: ns },
      spec: { steps: [{ name: "echo", image: "alpine", script: "echo hi" }] },
    };
    await kc(["apply", "--server-side", "--field-manager=testbed", "-f", "-"], JSON.stringify(task));
    const { stdout } = await kc(["get", "tasks.tekton.dev", "hello", "-n", ns, "-o", "json"]);
    const got = JSON.parse(stdout) as typeof task & { metadata: { uid?: string } };
    expect(got.spec.steps[0]?.script).toBe("echo hi");
    expect(got.metadata.uid).toBeTruthy();
    // served at v1beta1 too (conversion None)
    const beta = await kc(["get", "tasks.v1beta1.tekton.dev", "hello", "-n", ns, "-o", "jsonpath={.apiVersion}"]);
    expect(beta.stdout).toBe("tekton.dev/v1beta1");
    // short names and categories
    const trig = {
      apiVersion: "triggers.tekton.dev/v1beta1",
      kind: "TriggerBinding",
      metadata: { name: "tb", namespace: ns },
      spec: { params: [{ name: "rev", value: "$(body.head_commit.id)" }] },
    };
    await kc(["apply", "--server-side", "-f", "-"], JSON.stringify(trig));
    const tekton = await kc(["get", "tekton", "-n", ns, "-o", "name"]);
    expect(tekton.stdout.split("\n").sort()).toEqual(
      expect.arrayContaining(["task.tekton.dev/hello", "triggerbinding.triggers.tekton.dev/tb"]),
    );
    const tb = await kc(["get", "tb", "tb", "-n", ns, "-o", "name"]);
    expect(tb.stdout.trim()).toBe("triggerbinding.triggers.tekton.dev/tb");
  });

  it("has all the Tekton CRDs established", async () => {
    const { stdout } = await kc(["get", "crd", "-o", "name"]);
    for (const crd of [
      "tasks.tekton.dev",
      "pipelines.tekton.dev",
      "pipelineruns.tekton.dev",
      "taskruns.tekton.dev",
      "eventlisteners.triggers.tekton.dev",
      "triggers.triggers.tekton.dev",
      "triggerbindings.triggers.tekton.dev",
      "triggertemplates.triggers.tekton.dev",
    ]) {
      expect(stdout).toContain(`customresourcedefinition.apiextensions.k8s.io/${crd}`);
    }
  });
});

describe("git server", () => {
  const repos: TestRepo[] = [];
  let work: string;

  // Every test gets its own repo (two commits on main), so none depends on what another committed.
  const twoCommits = async (): Promise<{ repo: TestRepo; first: string; second: string }> => {
    const repo = await TestRepo.create(env.gitRoot, uniqueName("bed"));
    repos.push(repo);
    const first = await repo.commit({ "README.md": "# hi\n", "deploy/task.yaml": "kind: Task\n" }, "first");
    const second = await repo.commit({ "README.md": null, "deploy/pipeline.yaml": "kind: Pipeline\n" }, "second");
    return { repo, first, second };
  };

  beforeAll(async () => {
    work = await tempDir("testbed");
  });
  afterAll(async () => {
    for (const r of repos.splice(0)) await r.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("TestRepo commits, pushes and branches on the filesystem", async () => {
    const { repo, first, second } = await twoCommits();
    expect(second).toMatch(/^[0-9a-f]{40}$/);
    expect(await repo.head()).toBe(second);
    await repo.createBranch("release", first);
    expect(await repo.head("release")).toBe(first);
    const onBranch = await repo.commit({ "x.yaml": "a: 1\n" }, "on release", { branch: "release" });
    expect(await repo.head("release")).toBe(onBranch);
    expect(await repo.head()).toBe(second);
    expect((await repo.branches()).sort()).toEqual(["main", "release"]);
  });

  it("ls-remote works with the token and protocol v2", async () => {
    const { repo, second } = await twoCommits();
    const url = env.gitUrl(repo.name);
    const v2 = await git([...bearer(), "-c", "protocol.version=2", "ls-remote", url], {
      env: { GIT_TRACE_PACKET: "1" },
    });
    expect(v2.code, v2.stderr).toBe(0);
    expect(v2.stdout).toContain(`${second}\trefs/heads/main`);
    expect(v2.stderr).toMatch(/version 2/);

    const v0 = await git([...bearer(), "-c", "protocol.version=0", "ls-remote", url]);
    expect(v0.code, v0.stderr).toBe(0);
    expect(v0.stdout).toContain(`${second}\trefs/heads/main`);

    // Basic auth with the token as password, as git credential helpers would send it
    const basic = url.replace("http://", `http://x-token:${env.gitToken}@`);
    const b = await git(["ls-remote", basic]);
    expect(b.code, b.stderr).toBe(0);
  });

  it("clones over smart HTTP", async () => {
    const { repo, second } = await twoCommits();
    const dir = join(work, "clone");
    const r = await git([...bearer(), "-c", "protocol.version=2", "clone", "--quiet", env.gitUrl(repo.name), dir]);
    expect(r.code, r.stderr).toBe(0);
    const log = await git(["rev-parse", "HEAD"], { cwd: dir });
    expect(log.stdout.trim()).toBe(second);
    expect(await readFile(join(dir, "deploy/pipeline.yaml"), "utf8")).toBe("kind: Pipeline\n");
    // fetch after a new commit (negotiation with haves; body may be gzip-encoded by git)
    const third = await repo.commit({ "deploy/more.yaml": "kind: Task\n" }, "third");
    const f = await git([...bearer(), "fetch", "--quiet", "origin"], { cwd: dir });
    expect(f.code, f.stderr).toBe(0);
    expect((await git(["rev-parse", "origin/main"], { cwd: dir })).stdout.trim()).toBe(third);
  });

  it("refuses requests without the token", async () => {
    const { repo } = await twoCommits();
    const url = env.gitUrl(repo.name);
    const r = await git(["ls-remote", url]);
    expect(r.code).not.toBe(0);
    const res = await fetch(`${url}/info/refs?service=git-upload-pack`);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Basic realm="plumber"');
    const wrong = await fetch(`${url}/info/refs?service=git-upload-pack`, {
      headers: { Authorization: "Bearer nope" },
    });
    expect(wrong.status).toBe(401);
  });

  it("accepts gzip-encoded upload-pack requests and counts requests", async () => {
    const { repo } = await twoCommits();
    const url = env.gitUrl(repo.name);
    await fetchGitServerCounts(env.gitBaseUrl, { reset: true });
    const pkt = (s: string) => (s.length + 4).toString(16).padStart(4, "0") + s;
    const body = pkt("command=ls-refs\n") + "0001" + pkt("peel\n") + "0000";
    const res = await fetch(`${url}/git-upload-pack`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${env.gitToken}`,
        "Content-Type": "application/x-git-upload-pack-request",
        Accept: "application/x-git-upload-pack-result",
        "Content-Encoding": "gzip",
        "Git-Protocol": "version=2",
      },
      body: gzipSync(Buffer.from(body)),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-git-upload-pack-result");
    const text = await res.text();
    expect(text).toContain(`${await repo.head()} refs/heads/main`);
    const counts = await fetchGitServerCounts(env.gitBaseUrl);
    expect(counts.total).toBe(1);
    expect(counts.byPath[`/${repo.name}.git/git-upload-pack`]).toBe(1);
  });

  it("commits symlinks (for refusal tests)", async () => {
    const { repo } = await twoCommits();
    const sha = await repo.symlink("deploy/link.yaml", "../../etc/passwd");
    const dir = join(work, "clone-link");
    const r = await git([...bearer(), "clone", "--quiet", env.gitUrl(repo.name), dir]);
    expect(r.code, r.stderr).toBe(0);
    expect((await git(["rev-parse", "HEAD"], { cwd: dir })).stdout.trim()).toBe(sha);
    expect(await readlink(join(dir, "deploy/link.yaml"))).toBe("../../etc/passwd");
    const mode = await git(["ls-tree", "HEAD", "deploy/link.yaml"], { cwd: dir });
    expect(mode.stdout).toMatch(/^120000 blob/);
  });
});

describe("scratch root", () => {
  it("takes the temp files of the workers and of their child processes", async () => {
    const tmp = join(inject("scratchRoot"), "tmp");
    expect(tmpdir()).toBe(tmp);
    const child = await new Promise<string>((res, rej) =>
      execFile(process.execPath, ["-e", "process.stdout.write(require('os').tmpdir())"], (err, stdout) => (err ? rej(err) : res(stdout))),
    );
    expect(child).toBe(tmp);
    expect(env.gitRoot.startsWith(inject("scratchRoot"))).toBe(true);
    expect(env.kubeconfigPath.startsWith(tmp)).toBe(true);
  });
});
