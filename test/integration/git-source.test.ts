// GitRepo + createGitHttp + readManifests against a real git smart-HTTP server (git http-backend).
// The test runs its own server on a temp root so request counts are not shared with other files.
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitHttp, type GitHttpClient, type GitRequestInfo } from "../../src/git/http.js";
import { GitRepo, GitSourceError } from "../../src/git/repo.js";
import { readManifests } from "../../src/manifests/read.js";
import { startGitServer, type GitServer } from "../../src/local/gitserver.js";
import { git, TestRepo } from "../bed/testrepo.js";
import { FileProblemError } from "../../src/types.js";

const TOKEN = `tok-${randomBytes(12).toString("hex")}`;
const LIMITS = { maxFileBytes: 1 << 20, maxTotalBytes: 32 << 20, maxFiles: 5000 };
const yamlOnly = (p: string) => p.endsWith(".yaml");

let root: string;
let cacheRoot: string;
let server: GitServer;
const clients: GitHttpClient[] = [];

function client(token = TOKEN, infos?: GitRequestInfo[]): GitHttpClient {
  const c = createGitHttp({ auth: { token }, timeoutMs: 20_000, onRequest: infos ? (i) => infos.push(i) : undefined });
  clients.push(c);
  return c;
}

async function newRepo(name: string): Promise<TestRepo> {
  return TestRepo.create(root, `${name}-${randomBytes(3).toString("hex")}`);
}

function cm(name: string, data: string): string {
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  blob: "${data}"\n`;
}

async function packs(repo: GitRepo): Promise<{ name: string; size: number }[]> {
  const dir = join(repo.gitdir, "objects", "pack");
  const names = (await readdir(dir)).filter((n) => n.endsWith(".pack"));
  return Promise.all(names.map(async (name) => ({ name, size: (await stat(join(dir, name))).size })));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "plumber-gitsrc-"));
  cacheRoot = join(root, ".cache");
  server = await startGitServer({ root, auth: { token: TOKEN } });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe("GitRepo against a git smart-HTTP server", () => {
  it("lists branch heads with protocol v2 (GET + POST once, then one POST per listing), sending the token up front", async () => {
    const t = await newRepo("heads");
    const main = await t.commit({ "apps/a.yaml": cm("a", "1") });
    const feature = await t.commit({ "apps/b.yaml": cm("b", "2") }, "feature", { branch: "feature/x" });
    const infos: GitRequestInfo[] = [];
    const repo = new GitRepo({ url: server.url(t.name), http: client(TOKEN, infos), cacheDir: cacheRoot });

    server.resetCounts();
    const heads = await repo.listHeads();
    expect(heads).toEqual(new Map([["main", main], ["feature/x", feature]]));
    // Answered 200 at once: no 401 challenge round trip.
    expect(server.requests.total).toBe(2);
    expect(infos.map((i) => i.status)).toEqual([200, 200]);
    expect(infos[0]!.url).toContain("/info/refs?service=git-upload-pack");
    expect(infos[1]!.url).toMatch(/\/git-upload-pack$/);
    // Steady state: the capability advertisement is cached, one POST per listing.
    server.resetCounts();
    expect(await repo.listHeads()).toEqual(heads);
    expect(server.requests.total).toBe(1);
    expect(infos.at(-1)!.method).toBe("POST");
  });

  it("fetches a commit once, then serves it from the cache with no requests", async () => {
    const t = await newRepo("fetch");
    const sha = await t.commit({ "apps/a.yaml": cm("a", "1") });
    const repo = new GitRepo({ url: server.url(t.name), http: client(), cacheDir: cacheRoot });
    server.resetCounts();
    await repo.ensureCommit("main", sha);
    expect(server.requests.total).toBe(3); // git fetch, protocol v2: info/refs + ls-refs + fetch
    expect(await repo.hasCommit(sha)).toBe(true);

    server.resetCounts();
    await repo.ensureCommit("main", sha);
    expect(server.requests.total).toBe(0);
    // A new GitRepo over the same cache directory finds it on disk too.
    const again = new GitRepo({ url: server.url(t.name), http: client(), cacheDir: cacheRoot });
    await again.ensureCommit("main", sha);
    expect(server.requests.total).toBe(0);
    expect(again.gitdir).toBe(repo.gitdir);
  });

  it("fetches a second commit incrementally and reads both old and new trees without a checkout", async () => {
    const t = await newRepo("incr");
    // Random (incompressible) content so a full re-send would be obvious in the pack size.
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++) files[`apps/cm-${String(i).padStart(2, "0")}.yaml`] = cm(`cm-${i}`, randomBytes(3000).toString("hex"));
    files["README.md"] = "docs\n";
    const c1 = await t.commit(files, "first");
    const repo = new GitRepo({ url: server.url(t.name), http: client(), cacheDir: cacheRoot });
    await repo.ensureCommit("main", c1);
    const [first] = await packs(repo);
    expect(first!.size).toBeGreaterThan(40 * 3000);

    // Change one file slightly (a delta against a blob we already have) and add one.
    const changed = `${files["apps/cm-07.yaml"]!}  extra: "yes"\n`;
    const c2 = await t.commit({ "apps/cm-07.yaml": changed, "apps/new.yaml": cm("new", "n") }, "second");
    server.resetCounts();
    await repo.ensureCommit("main", c2);
    expect(server.requests.total).toBe(3);
    const after = await packs(repo);
    expect(after).toHaveLength(2);
    const second = after.find((p) => p.name !== first!.name)!;
    expect(second.size).toBeLessThan(first!.size / 10);

    // New commit: new content.
    const now = await repo.readFiles(c2, "apps", yamlOnly, LIMITS);
    expect(now).toHaveLength(41);
    expect(now.find((f) => f.path === "apps/cm-07.yaml")!.content).toBe(changed);
    expect(now.map((f) => f.path)).toEqual([...now.map((f) => f.path)].sort());
    // Old commit, still readable, with its old content; README filtered out.
    const old = await repo.readFiles(c1, "apps", yamlOnly, LIMITS);
    expect(old).toHaveLength(40);
    expect(old.find((f) => f.path === "apps/cm-07.yaml")!.content).toBe(files["apps/cm-07.yaml"]);
    expect(old.some((f) => f.path === "apps/new.yaml")).toBe(false);
    const all = await repo.readFiles(c1, "", () => true, LIMITS);
    expect(all.map((f) => f.path)).toContain("README.md");
    // Bare gitdir: nothing checked out.
    expect(await readdir(repo.gitdir)).not.toContain("apps");
  });

  it("readFilesExcept leaves blobs the caller knows unread, still counting them toward the limits; treesOf tells paths apart by tree id", async () => {
    const t = await newRepo("known");
    const sha = await t.commit({ "apps/a.yaml": cm("a", "1"), "apps/b.yaml": cm("b", "2"), "apps/sub/c.yaml": cm("c", "3"), "other/d.yaml": cm("d", "4") });
    const repo = new GitRepo({ url: server.url(t.name), http: client(), cacheDir: cacheRoot });
    await repo.ensureCommit("main", sha);
    const all = await repo.readFiles(sha, "apps", yamlOnly, LIMITS);
    expect(all.map((f) => f.path)).toEqual(["apps/a.yaml", "apps/b.yaml", "apps/sub/c.yaml"]);
    const a = all[0]!;
    const asked: string[] = [];
    const known = (p: string, oid: string) => {
      asked.push(p);
      return p === a.path && oid === a.oid;
    };
    const got = await repo.readFilesExcept(sha, "apps", yamlOnly, LIMITS, known);
    expect(got).toEqual([{ path: a.path, oid: a.oid, known: true }, all[1], all[2]]);
    expect(asked.sort()).toEqual(["apps/a.yaml", "apps/b.yaml", "apps/sub/c.yaml"]);

    const bytes = all.reduce((n, f) => n + Buffer.byteLength(f.content), 0);
    const over = await repo.readFilesExcept(sha, "apps", yamlOnly, { ...LIMITS, maxTotalBytes: bytes - 1 }, () => true).catch((e: unknown) => e);
    expect((over as GitSourceError).code).toBe("limit");
    expect((over as Error).message).toMatch(/apps\/sub\/c\.yaml .*total more than/);
    const many = await repo.readFilesExcept(sha, "apps", yamlOnly, { ...LIMITS, maxFiles: 2 }, () => true).catch((e: unknown) => e);
    expect((many as Error).message).toMatch(/more than 2 files under apps/);

    const trees = await repo.treesOf(sha, ["apps", "apps/sub", "other", "nope", "apps/a.yaml"]);
    expect(trees.get("apps")).toEqual({ oid: await git(["--git-dir", t.bareDir, "rev-parse", `${sha}:apps`]), names: ["a.yaml", "b.yaml", "sub"] });
    expect(trees.get("apps/sub")?.names).toEqual(["c.yaml"]);
    expect(trees.get("other")?.names).toEqual(["d.yaml"]);
    expect(trees.get("nope")).toBeUndefined();
    expect(trees.get("apps/a.yaml")).toBeUndefined();
    // A commit that leaves apps/ alone has the same tree there; one not cached tells nothing.
    const sha2 = await t.commit({ "other/d.yaml": cm("d", "5") });
    await repo.ensureCommit("main", sha2);
    const after = await repo.treesOf(sha2, ["apps", "other"]);
    expect(after.get("apps")?.oid).toBe(trees.get("apps")?.oid);
    expect(after.get("other")?.oid).not.toBe(trees.get("other")?.oid);
    expect((await repo.treesOf("0".repeat(40), ["apps"])).get("apps")).toBeUndefined();
  });

  it("refuses symlinks, submodules, path escapes, and missing paths with clear errors", async () => {
    const t = await newRepo("refuse");
    await t.commit({ "apps/a.yaml": cm("a", "1"), "secret.yaml": cm("s", "x") });
    const sha = await t.symlink("apps/link.yaml", "../secret.yaml");
    const repo = new GitRepo({ url: server.url(t.name), http: client(), cacheDir: cacheRoot });
    await repo.ensureCommit("main", sha);

    const sym = await repo.readFiles(sha, "apps", yamlOnly, LIMITS).catch((e: unknown) => e);
    expect(sym).toBeInstanceOf(GitSourceError);
    expect((sym as GitSourceError).code).toBe("unsupported-entry");
    expect((sym as Error).message).toMatch(/apps\/link\.yaml .*symlink/);

    for (const bad of ["../outside", "apps/../../x", "/etc"]) {
      const err = await repo.readFiles(sha, bad, yamlOnly, LIMITS).catch((e: unknown) => e);
      expect(err, bad).toBeInstanceOf(GitSourceError);
      expect((err as GitSourceError).code, bad).toBe("invalid-argument");
    }

    const missing = await repo.readFiles(sha, "nope/here", yamlOnly, LIMITS).catch((e: unknown) => e);
    expect((missing as GitSourceError).code).toBe("missing-path");
    expect((missing as Error).message).toContain("nope/here");
    expect((missing as Error).message).toContain(sha);

    // A submodule (gitlink, mode 160000), committed with plain git; the symlink goes away.
    await git(["rm", "--quiet", "apps/link.yaml"], t.workDir);
    await git(["update-index", "--add", "--cacheinfo", `160000,${sha},apps/sub`], t.workDir);
    await git(["commit", "--quiet", "--no-verify", "-m", "submodule"], t.workDir);
    await git(["push", "--quiet", "origin", "HEAD:refs/heads/main"], t.workDir);
    const withSub = await t.head();
    await repo.ensureCommit("main", withSub);
    const sub = await repo.readFiles(withSub, "apps", (p) => p === "apps/a.yaml", LIMITS).catch((e: unknown) => e);
    expect((sub as GitSourceError).code).toBe("unsupported-entry");
    expect((sub as Error).message).toMatch(/apps\/sub .*submodule/);

  });

  it("reports a wrong token as an auth error that does not contain any token", async () => {
    const t = await newRepo("auth");
    await t.commit({ "a.yaml": cm("a", "1") });
    const wrong = `wrong-${randomBytes(8).toString("hex")}`;
    const repo = new GitRepo({ url: server.url(t.name), http: client(wrong), cacheDir: cacheRoot });
    const err = await repo.listHeads().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitSourceError);
    expect((err as GitSourceError).code).toBe("auth");
    expect((err as GitSourceError).retryable).toBe(false);
    expect((err as Error).message).toMatch(/authentication failed/);
    expect((err as Error).message).toContain(server.url(t.name));
    expect((err as Error).message).not.toContain(wrong);
    expect((err as Error).message).not.toContain(TOKEN);
    const fetchErr = await repo.ensureCommit("main", await t.head()).catch((e: unknown) => e);
    expect((fetchErr as GitSourceError).code).toBe("auth");
  });

  it("throws a retryable error when the branch moved past the listed commit", async () => {
    const t = await newRepo("moved");
    const c1 = await t.commit({ "a.yaml": cm("a", "1") });
    const repo = new GitRepo({ url: server.url(t.name), http: client(), cacheDir: cacheRoot });
    const listed = (await repo.listHeads()).get("main");
    expect(listed).toBe(c1);
    const c2 = await t.commit({ "a.yaml": cm("a", "2") });
    const err = await repo.ensureCommit("main", c1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitSourceError);
    expect((err as GitSourceError).code).toBe("moved");
    expect((err as GitSourceError).retryable).toBe(true);
    // Listing again and asking for the new head needs no further fetch.
    expect((await repo.listHeads()).get("main")).toBe(c2);
    server.resetCounts();
    await repo.ensureCommit("main", c2);
    expect(server.requests.total).toBe(0);
  });

  it("repacks instead of piling up packs", async () => {
    const t = await newRepo("compact");
    const repo = new GitRepo({ url: server.url(t.name), http: client(), cacheDir: cacheRoot, maxPacks: 3 });
    let last = "";
    for (let i = 0; i < 6; i++) {
      last = await t.commit({ [`apps/cm-${i}.yaml`]: cm(`cm-${i}`, String(i)) }, `c${i}`);
      await repo.ensureCommit("main", last);
      expect((await packs(repo)).length).toBeLessThanOrEqual(3);
    }
    const files = await repo.readFiles(last, "apps", yamlOnly, LIMITS);
    expect(files.map((f) => f.path)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `apps/cm-${i}.yaml`));
    expect(await repo.packCount()).toBeLessThanOrEqual(3);
  });

  it("readManifests parses the tree at a commit and reports problems with repo-relative paths", async () => {
    const t = await newRepo("manifests");
    await t.commit({
      "deploy/base/cm.yaml": cm("a", "1"),
      "deploy/more.yml": `${cm("b", "2")}---\n${cm("c", "3")}`,
      "deploy/ns.json": JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "team" } }),
      "deploy/notes.txt": "ignored",
      "other/x.yaml": cm("outside", "x"),
    });
    const bad = await t.commit({ "deploy/base/broken.yaml": "kind: ConfigMap\nmetadata: {name: z}\n" });
    const repo = new GitRepo({ url: server.url(t.name), http: client(), cacheDir: cacheRoot });
    await repo.ensureCommit("main", bad);
    const err = await readManifests(repo, bad, "deploy").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileProblemError);
    expect((err as FileProblemError).problems).toEqual([
      expect.objectContaining({ file: "deploy/base/broken.yaml", line: 1, field: "apiVersion" }),
    ]);
    await t.commit({ "deploy/base/broken.yaml": null });
    const fixed = await t.head();
    await repo.ensureCommit("main", fixed);
    const ms = await readManifests(repo, fixed, "deploy");
    expect(ms.map((m) => `${m.source.file}:${m.source.line} ${m.object.kind}/${m.object.metadata.name}`)).toEqual([
      "deploy/base/cm.yaml:1 ConfigMap/a",
      "deploy/more.yml:1 ConfigMap/b",
      "deploy/more.yml:8 ConfigMap/c",
      "deploy/ns.json:1 Namespace/team",
    ]);

    // Limits name the file that crossed them.
    const big = await readManifests(repo, fixed, "deploy", { maxFileBytes: 70 }).catch((e: unknown) => e);
    expect((big as GitSourceError).code).toBe("limit");
    expect((big as Error).message).toContain("deploy/more.yml");
    const many = await readManifests(repo, fixed, "deploy", { maxFiles: 2 }).catch((e: unknown) => e);
    expect((many as GitSourceError).code).toBe("limit");
    expect((many as Error).message).toContain("deploy/ns.json");
  });
});
