// Commits older than a branch head (a lagged release's revision) come from a second, deeper gitdir
// beside the heads' cache (GitRepo.historyMirror + ensureHistory), fetched by the git CLI; the
// heads' cache stays depth 1. Raw commit objects (for signature checks) come from cat-file.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { createGitHttp, type GitHttpClient } from "../../src/git/http.js";
import { GitRepo, GitSourceError } from "../../src/git/repo.js";
import type { TestRepo } from "../bed/testrepo.js";
import { newTestRepo, tempDir, testEnv } from "../setup/env.js";

const run = promisify(execFile);
const clients: GitHttpClient[] = [];
const repos: TestRepo[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  for (const r of repos) await r.destroy();
});

async function setup(prefix: string): Promise<{ t: TestRepo; repo: GitRepo }> {
  const env = testEnv();
  const t = await newTestRepo(prefix);
  repos.push(t);
  const http = createGitHttp({ auth: { token: env.gitToken }, timeoutMs: 30_000 });
  clients.push(http);
  return { t, repo: new GitRepo({ url: env.gitUrl(t.name), http, cacheDir: await tempDir("git-history-mirror") }) };
}

describe("history mirror", () => {
  it("fetches deeper at each depth until the commit is there, beside a heads' cache that stays depth 1", async () => {
    const { t, repo } = await setup("hist");
    const shas: string[] = [];
    for (let i = 0; i < 4; i++) shas.push(await t.commit({ "t/release.yaml": `generation: ${i}\n` }, `rev ${i}`));
    const head = shas[3]!;
    await repo.ensureCommit("main", head);
    const mirror = repo.historyMirror();
    expect(mirror.gitdir).toBe(`${repo.gitdir}.history`);

    // shas[0] is 4 commits down: depths 1 and 2 do not reach it.
    const err = await mirror.ensureHistory("main", shas[0]!, [1, 2]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitSourceError);
    expect(err).toMatchObject({ code: "missing-commit", retryable: false });
    expect((err as Error).message).toBe(`commit ${shas[0]} is not among the last 2 commits of branch main`);
    expect(await mirror.hasCommit(shas[2]!)).toBe(true); // depth 2: the head and its parent

    await mirror.ensureHistory("main", shas[0]!, [2, 4]);
    expect((await mirror.readFileBytes(shas[0]!, "t/release.yaml", 1024)).toString()).toBe("generation: 0\n");
    expect((await mirror.readFileBytes(shas[2]!, "t/release.yaml", 1024)).toString()).toBe("generation: 2\n");
    // The heads' cache did not get the history.
    expect(await repo.hasCommit(head)).toBe(true);
    expect(await repo.hasCommit(shas[0]!)).toBe(false);
    expect(await repo.hasCommit(shas[2]!)).toBe(false);
  });

  it("an unknown branch is not-found, not a missing commit", async () => {
    const { t, repo } = await setup("hist-nobranch");
    const sha = await t.commit({ "a.txt": "a\n" }, "a");
    const err = await repo.historyMirror().ensureHistory("nope", sha, [64]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "not-found" });
  });
});

describe("readCommitObject", () => {
  it("returns the commit object byte for byte, as git stores it", async () => {
    const { t, repo } = await setup("rawcommit");
    const sha = await t.commit({ "a.txt": "a\n" }, "subject\n\nbody with trailing spaces   \n");
    await repo.ensureCommit("main", sha);
    const { stdout } = await run("git", ["--git-dir", t.bareDir, "cat-file", "commit", sha], { encoding: "buffer" });
    expect(Buffer.compare(await repo.readCommitObject(sha), stdout)).toBe(0);
    const other = "0".repeat(40);
    await expect(repo.readCommitObject(other)).rejects.toMatchObject({ code: "missing-commit" });
  });
});
