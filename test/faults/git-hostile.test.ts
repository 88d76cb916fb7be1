// A hostile or broken git server: 500s, a hang, garbage, an endless body, a huge ref advertisement
// (v1 and v2), and a repository with a huge blob. Each gives a clear GitSourceError (retryable or
// not, as the case deserves), nothing is cached or read, and this process's RSS stays bounded.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitHttp, type GitHttpClient } from "../../src/git/http.js";
import { GitRepo, GitSourceError } from "../../src/git/repo.js";
import { pkt } from "../../src/git/refs.js";
import type { TestRepo } from "../bed/testrepo.js";
import { newTestRepo, tempDir, testEnv } from "../setup/env.js";

type Mode = "500" | "hang" | "garbage" | "endless" | "refs-v1" | "refs-v2";
let mode: Mode = "500";
let server: Server;
let base = "";
const sockets = new Set<Socket>();
const clients: GitHttpClient[] = [];
const repos: TestRepo[] = [];
const SHA = "a".repeat(40);

/** Writes `lines` lines produced by `line(i)`, respecting backpressure, until done or the client leaves. */
function stream(res: ServerResponse, n: number, line: (i: number) => Buffer, end?: Buffer): void {
  let i = 0;
  const pump = (): void => {
    while (i < n) {
      if (res.destroyed) return;
      const chunk: Buffer[] = [];
      for (let k = 0; k < 1000 && i < n; k++) chunk.push(line(i++));
      if (!res.write(Buffer.concat(chunk))) {
        res.once("drain", pump);
        return;
      }
    }
    res.end(end);
  };
  pump();
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  const adv = { "content-type": "application/x-git-upload-pack-advertisement" };
  switch (mode) {
    case "500":
      res.writeHead(500, { "content-type": "text/plain" }).end("internal error\n");
      return;
    case "hang":
      return; // never answers
    case "garbage":
      res.writeHead(200, adv).end(randomBytes(4096));
      return;
    case "endless":
      stream(res, Number.MAX_SAFE_INTEGER, () => randomBytes(1024));
      return;
    case "refs-v1":
      res.writeHead(200, adv);
      res.write(Buffer.concat([pkt("# service=git-upload-pack\n"), Buffer.from("0000")]));
      stream(res, 1_000_000, (i) => pkt(`${SHA} refs/heads/b${i}${i === 0 ? "\0multi_ack" : ""}\n`), Buffer.from("0000"));
      return;
    case "refs-v2":
      if (req.method === "GET") {
        res.writeHead(200, adv).end(Buffer.concat([pkt("version 2\n"), pkt("ls-refs\n"), pkt("fetch=shallow\n"), Buffer.from("0000")]));
        return;
      }
      res.writeHead(200, { "content-type": "application/x-git-upload-pack-result" });
      // Ignores ref-prefix and sends a million branches.
      stream(res, 1_000_000, (i) => pkt(`${SHA} refs/heads/b${i}\n`), Buffer.from("0000"));
      return;
  }
}

let peakRss = 0;
let sampler: NodeJS.Timeout;
const baseline = (): number => process.memoryUsage().rss;

beforeAll(async () => {
  server = createServer(handle);
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
});

afterAll(async () => {
  clearInterval(sampler);
  for (const c of clients) c.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  for (const r of repos) await r.destroy();
});

async function hostileRepo(): Promise<GitRepo> {
  const http = createGitHttp({ timeoutMs: 1500 });
  clients.push(http);
  return new GitRepo({ url: `${base}/r-${randomBytes(3).toString("hex")}.git`, http, cacheDir: await tempDir("git-hostile"), fetchTimeoutMs: 8000 });
}

async function failure(p: Promise<unknown>): Promise<GitSourceError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GitSourceError);
  return e as GitSourceError;
}

/** Runs `fn` and returns how far the peak RSS rose above the RSS before it, MiB. */
async function rssRise(fn: () => Promise<void>): Promise<number> {
  global.gc?.();
  const before = baseline();
  peakRss = before;
  await fn();
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  return (peakRss - before) / 2 ** 20;
}

const report: Record<string, string> = {};

describe("a hostile git server", () => {
  it("500s: listing and fetching are retryable network errors, nothing is cached", async () => {
    mode = "500";
    const repo = await hostileRepo();
    const l = await failure(repo.listHeads());
    expect([l.code, l.retryable]).toEqual(["network", true]);
    expect(l.message).toMatch(/HTTP 500/);
    const f = await failure(repo.ensureCommit("main", SHA));
    expect([f.code, f.retryable]).toEqual(["network", true]);
    expect(f.message).toMatch(/HTTP 500/);
    expect(await repo.hasCommit(SHA)).toBe(false);
  });

  it("a hang: listing and fetching time out as retryable network errors", async () => {
    mode = "hang";
    const repo = await hostileRepo();
    const l = await failure(repo.listHeads());
    expect([l.code, l.retryable]).toEqual(["network", true]);
    expect(l.message).toMatch(/timed out/);
    const f = await failure(repo.ensureCommit("main", SHA));
    expect([f.code, f.retryable]).toEqual(["network", true]);
    expect(await repo.hasCommit(SHA)).toBe(false);
  });

  it("garbage: a protocol error, not retried as if it were the network", async () => {
    mode = "garbage";
    const repo = await hostileRepo();
    const l = await failure(repo.listHeads());
    expect([l.code, l.retryable]).toEqual(["protocol", false]);
    expect(l.message).toMatch(/not git pkt-line data/);
    const f = await failure(repo.ensureCommit("main", SHA));
    expect(f.retryable).toBe(false);
    expect(await repo.hasCommit(SHA)).toBe(false);
  });

  it("an endless body: a limit error after a bounded read", async () => {
    mode = "endless";
    const repo = await hostileRepo();
    let l: GitSourceError | undefined;
    report.endless = `${(await rssRise(async () => void (l = await failure(repo.listHeads())))).toFixed(0)} MiB`;
    expect([l!.code, l!.retryable]).toEqual(["limit", false]);
    expect(l!.message).toMatch(/more than 8388608 bytes/);
  });

  it("a million refs (v1 advertisement, and v2 ignoring ref-prefix): a limit error, memory bounded", async () => {
    for (const m of ["refs-v1", "refs-v2"] as const) {
      mode = m;
      const repo = await hostileRepo();
      let l: GitSourceError | undefined;
      const rise = await rssRise(async () => void (l = await failure(repo.listHeads())));
      report[m] = `${rise.toFixed(0)} MiB`;
      expect([l!.code, l!.retryable], m).toEqual(["limit", false]);
      // Bounded by the 8 MiB listing cap, not by what the server sends (~60 MB here).
      expect(rise, m).toBeLessThan(128);
    }
  });

  it("a 150 MiB blob in the repo: other paths read fine, the blob is refused from its header, memory bounded", async () => {
    const env = testEnv();
    const t = await newTestRepo("hostile-blob");
    repos.push(t);
    const big = randomBytes(150 * 2 ** 20).toString("base64").slice(0, 150 * 2 ** 20);
    const sha = await t.commit({ "deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n", "assets/huge.bin": big });
    const http = createGitHttp({ auth: { token: env.gitToken }, timeoutMs: 30_000 });
    clients.push(http);
    const repo = new GitRepo({ url: env.gitUrl(t.name), http, cacheDir: await tempDir("git-hostile-blob") });
    const limits = { maxFileBytes: 1 << 20, maxTotalBytes: 8 << 20, maxFiles: 100 };
    let refused: GitSourceError | undefined;
    const rise = await rssRise(async () => {
      await repo.ensureCommit("main", sha);
      const files = await repo.readFiles(sha, "deploy", () => true, limits);
      expect(files.map((f) => f.path)).toEqual(["deploy/cm.yaml"]);
      refused = await failure(repo.readFiles(sha, "", () => true, limits));
      const one = await failure(repo.readFileBytes(sha, "assets/huge.bin", 1 << 20));
      expect(one.code).toBe("limit");
    });
    report.blob150 = `${rise.toFixed(0)} MiB`;
    expect(refused!.code).toBe("limit");
    expect(refused!.message).toMatch(/assets\/huge\.bin .* is 157286400 bytes, over the limit/);
    expect(rise).toBeLessThan(128);
    console.log(`[git-hostile] peak RSS rise: ${JSON.stringify(report)}`);
  });
});
