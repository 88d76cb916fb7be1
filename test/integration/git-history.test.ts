// GitRepo on real-shaped history: many revisions of the same large files (so packs hold real
// deltas), a branch moved old → new → old → sibling → new, `git revert` of the last commit and a
// force-push to an ancestor. Each step must read exactly the tree of the listed head, and the cache
// must stay bounded (a few packs, not one per fetch growing forever).
import { copyFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createGitHttp, type GitHttpClient } from "../../src/git/http.js";
import { GitRepo } from "../../src/git/repo.js";
import { git, type TestRepo } from "../bed/testrepo.js";
import { newTestRepo, tempDir, testEnv } from "../setup/env.js";

const LIMITS = { maxFileBytes: 8 << 20, maxTotalBytes: 64 << 20, maxFiles: 100 };
const clients: GitHttpClient[] = [];
const repos: TestRepo[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  for (const r of repos) await r.destroy();
});

/** ~1.5 MiB of text; revision `rev` differs from the others in a few lines only (a good delta base). */
function bigFile(seed: string, rev: number): string {
  const lines: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const changed = i % 997 === rev % 997 || i === rev;
    lines.push(`${seed} line ${i} ${changed ? `rev ${rev}` : "stable"} ${"x".repeat(60)}`);
  }
  return lines.join("\n") + "\n";
}

function cm(name: string, rev: string): string {
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  rev: "${rev}"\n`;
}

async function setup(prefix: string, maxPacks?: number): Promise<{ t: TestRepo; repo: GitRepo }> {
  const env = testEnv();
  const t = await newTestRepo(prefix);
  repos.push(t);
  const http = createGitHttp({ auth: { token: env.gitToken }, timeoutMs: 30_000 });
  clients.push(http);
  const repo = new GitRepo({ url: env.gitUrl(t.name), http, cacheDir: await tempDir("git-history"), maxPacks });
  return { t, repo };
}

async function commitRev(t: TestRepo, rev: number, branch?: string): Promise<string> {
  return t.commit(
    { "app/cm.yaml": cm("c", String(rev)), "data/a.txt": bigFile("a", rev), "data/b.txt": bigFile("b", rev) },
    `rev ${rev}`,
    branch ? { branch } : {},
  );
}

/** Lists, fetches and reads like the reconciler; returns the rev recorded in app/cm.yaml and data/a.txt. */
async function readHead(repo: GitRepo, branch: string): Promise<{ sha: string; rev: string; a: string }> {
  const heads = await repo.listHeads();
  const sha = heads.get(branch)!;
  await repo.ensureCommit(branch, sha);
  const files = await repo.readFiles(sha, "", () => true, LIMITS);
  const cmFile = files.find((f) => f.path === "app/cm.yaml")!;
  const rev = /rev: "([^"]+)"/.exec(cmFile.content)![1]!;
  const a = files.find((f) => f.path === "data/a.txt")!.content;
  return { sha, rev, a };
}

async function cacheBytes(repo: GitRepo): Promise<{ packs: number; bytes: number }> {
  const dir = join(repo.gitdir, "objects", "pack");
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".pack"));
  let bytes = 0;
  for (const n of names) bytes += (await stat(join(dir, n))).size;
  return { packs: names.length, bytes };
}

describe("GitRepo on history that moves back and forth", () => {
  it("reads the right tree after old → new → old → sibling → new, many times", async () => {
    const { t, repo } = await setup("hist-move", 4);
    const shas: string[] = [];
    // Read every revision as a poller would: each fetch is an incremental (thin) pack.
    for (let r = 1; r <= 6; r++) {
      shas.push(await commitRev(t, r));
      expect((await readHead(repo, "main")).rev).toBe(String(r));
    }
    const oldSha = shas[1]!;
    const newSha = shas[5]!;
    let sib = 100;
    for (let round = 0; round < 4; round++) {
      expect((await readHead(repo, "main")).rev).toBe("6");
      await t.resetBranch("main", oldSha);
      const old = await readHead(repo, "main");
      expect(old.rev).toBe("2");
      expect(old.a).toBe(bigFile("a", 2));
      // A sibling of the old commit: new objects that delta against what the cache already holds.
      await git(["--git-dir", t.bareDir, "update-ref", `refs/heads/sib${round}`, oldSha]);
      const sibSha = await commitRev(t, ++sib, `sib${round}`);
      await t.resetBranch("main", sibSha);
      const s = await readHead(repo, "main");
      expect(s.rev).toBe(String(sib));
      expect(s.a).toBe(bigFile("a", sib));
      await t.resetBranch("main", newSha);
    }
    const last = await readHead(repo, "main");
    expect(last.rev).toBe("6");
    expect(last.a).toBe(bigFile("a", 6));
    const c = await cacheBytes(repo);
    // Bounded: compaction keeps the pack count small, and the cache holds about one tree's worth
    // (two 1.5 MiB files compress to well under 1 MiB), not the sum of every fetch.
    expect(c.packs).toBeLessThanOrEqual(4);
    expect(c.bytes).toBeLessThan(8 << 20);
    // Every object is sound, and every pack is complete on its own: index-pack outside any
    // repository (no --fix-thin) fails on a pack with a delta whose base is elsewhere.
    await git(["--git-dir", repo.gitdir, "fsck", "--no-dangling", "--no-progress"]);
    const scratch = await tempDir("pack-check");
    for (const n of (await readdir(join(repo.gitdir, "objects", "pack"))).filter((x) => x.endsWith(".pack"))) {
      await copyFile(join(repo.gitdir, "objects", "pack", n), join(scratch, n));
      await git(["index-pack", join(scratch, n)], scratch);
    }
  });

  it("reads the reverted tree after `git revert` of the last commit, and the commit after it", async () => {
    const { t, repo } = await setup("hist-revert");
    for (let r = 1; r <= 4; r++) {
      await commitRev(t, r);
      expect((await readHead(repo, "main")).rev).toBe(String(r));
    }
    // A real revert (a new commit whose tree equals the parent's parent), pushed like a user would.
    await git(["revert", "--no-edit", "HEAD"], t.workDir);
    await git(["push", "--quiet", "origin", "HEAD:refs/heads/main"], t.workDir);
    const reverted = await readHead(repo, "main");
    expect(reverted.rev).toBe("3");
    expect(reverted.a).toBe(bigFile("a", 3));
    await commitRev(t, 5);
    const after = await readHead(repo, "main");
    expect(after.rev).toBe("5");
    expect(after.a).toBe(bigFile("a", 5));
  });

  it("reads an ancestor after a force-push back, then moves forward again; a fresh GitRepo on the same cache too", async () => {
    const { t, repo } = await setup("hist-ancestor");
    const shas: string[] = [];
    for (let r = 1; r <= 5; r++) {
      shas.push(await commitRev(t, r));
      expect((await readHead(repo, "main")).rev).toBe(String(r));
    }
    await t.resetBranch("main", shas[0]!);
    expect((await readHead(repo, "main")).rev).toBe("1");
    await t.resetBranch("main", shas[3]!);
    expect((await readHead(repo, "main")).rev).toBe("4");
    await commitRev(t, 6);
    expect((await readHead(repo, "main")).a).toBe(bigFile("a", 6));
    // A restart: a new GitRepo over the same cache directory reads without refetching trouble.
    const again = new GitRepo({ url: repo.url, http: clients.at(-1)!, cacheDir: join(repo.gitdir, "..") });
    expect((await readHead(again, "main")).rev).toBe("6");
  });
});

describe("a remote whose HEAD is dangling", () => {
  it("fetches and reads a named branch (bare repo with HEAD → master, only main pushed)", async () => {
    const env = testEnv();
    const t = await newTestRepo("dangling-head", { branch: "main" });
    repos.push(t);
    const sha = await t.commit({ "app/cm.yaml": cm("c", "1") });
    await git(["--git-dir", t.bareDir, "symbolic-ref", "HEAD", "refs/heads/master"]);
    const http = createGitHttp({ auth: { token: env.gitToken }, timeoutMs: 30_000 });
    clients.push(http);
    const repo = new GitRepo({ url: env.gitUrl(t.name), http, cacheDir: await tempDir("git-dangling") });
    expect((await repo.listHeads()).get("main")).toBe(sha);
    await repo.ensureCommit("main", sha);
    expect((await repo.readFiles(sha, "app", () => true, LIMITS)).map((f) => f.content)).toEqual([cm("c", "1")]);
    expect(await repo.listDir(sha, "")).toEqual([{ name: "app", path: "app", type: "tree" }]);
    expect((await repo.readFileBytes(sha, "app/cm.yaml", 1024)).toString()).toBe(cm("c", "1"));
  });
});

describe("a disposable cache", () => {
  it("throws a corrupt cache away on read and rebuilds it on the next ensureCommit", async () => {
    const { t, repo } = await setup("corrupt");
    const sha = await commitRev(t, 1);
    await repo.ensureCommit("main", sha);
    // Damage every pack's object data (a disk error, a kill mid-write by something else).
    const dir = join(repo.gitdir, "objects", "pack");
    const { open } = await import("node:fs/promises");
    for (const n of (await readdir(dir)).filter((x) => x.endsWith(".pack"))) {
      const fh = await open(join(dir, n), "r+");
      const size = (await fh.stat()).size;
      await fh.write(Buffer.alloc(size - 64, 0x5a), 0, size - 64, 32);
      await fh.close();
    }
    const err = await repo.readFiles(sha, "", () => true, LIMITS).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "cache", retryable: true });
    expect(await repo.hasCommit(sha)).toBe(false);
    await repo.ensureCommit("main", sha);
    expect((await repo.readFileBytes(sha, "data/a.txt", 4 << 20)).toString()).toBe(bigFile("a", 1));
  });

  it("listDir and readFileBytes: entry types, symlinks, directories and limits", async () => {
    const { t, repo } = await setup("contract");
    await t.commit({ "k/kustomization.yaml": "resources: []\n", "k/base/a.yaml": "a: 1\n", "big.txt": "x".repeat(5000) });
    const sha = await t.symlink("k/link", "base/a.yaml");
    await repo.ensureCommit("main", sha);
    expect(await repo.listDir(sha, "k")).toEqual([
      { name: "base", path: "k/base", type: "tree" },
      { name: "kustomization.yaml", path: "k/kustomization.yaml", type: "blob" },
      { name: "link", path: "k/link", type: "symlink" },
    ]);
    expect(await repo.readFileBytes(sha, "k/base/a.yaml", 100)).toEqual(Buffer.from("a: 1\n"));
    await expect(repo.readFileBytes(sha, "k/link", 100)).rejects.toMatchObject({ code: "unsupported-entry" });
    await expect(repo.listDir(sha, "k/link")).rejects.toMatchObject({ code: "unsupported-entry" });
    await expect(repo.readFileBytes(sha, "big.txt", 4999)).rejects.toMatchObject({ code: "limit" });
    await expect(repo.readFileBytes(sha, "k/base", 100)).rejects.toMatchObject({ code: "missing-path" });
    await expect(repo.readFileBytes(sha, "k/nope.yaml", 100)).rejects.toMatchObject({ code: "missing-path" });
    await expect(repo.listDir(sha, "big.txt")).rejects.toMatchObject({ code: "missing-path" });
    await expect(repo.listDir("b".repeat(40), "")).rejects.toMatchObject({ code: "missing-commit" });
  });
});
