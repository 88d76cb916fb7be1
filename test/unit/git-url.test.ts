import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createGitHttp, type GitRequestInfo } from "../../src/git/http.js";
import { isValidBranchName, normalizeRepoDir } from "../../src/git/repo.js";
import { redactUrl, validateRepoUrl } from "../../src/git/url.js";

describe("validateRepoUrl", () => {
  it("accepts http(s) and normalizes", () => {
    expect(validateRepoUrl("https://git.example.com/org/repo.git")).toBe("https://git.example.com/org/repo.git");
    expect(validateRepoUrl("HTTPS://Git.Example.COM:443/org/repo/")).toBe("https://git.example.com/org/repo");
    expect(validateRepoUrl("http://127.0.0.1:8080/r.git//")).toBe("http://127.0.0.1:8080/r.git");
  });

  it("refuses other schemes and scp-like addresses", () => {
    for (const u of ["ssh://git@host/repo.git", "git://host/repo.git", "file:///srv/repo.git", "git@github.com:org/repo.git", "/srv/repo"]) {
      expect(() => validateRepoUrl(u), u).toThrow(/http|not a valid URL/);
    }
  });

  it("refuses embedded credentials without echoing them", () => {
    let msg = "";
    try {
      validateRepoUrl("https://bob:hunter2@git.example.com/repo.git");
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/credentials/);
    expect(msg).not.toContain("hunter2");
    expect(() => validateRepoUrl("https://tok@git.example.com/repo.git")).toThrow(/credentials/);
  });

  it("refuses query strings, fragments, empty and whitespace", () => {
    expect(() => validateRepoUrl("https://h/r.git?x=1")).toThrow(/query/);
    expect(() => validateRepoUrl("https://h/r.git#main")).toThrow(/fragment/);
    expect(() => validateRepoUrl("")).toThrow(/empty/);
    expect(() => validateRepoUrl("https://h/r .git")).toThrow(/whitespace/);
  });
});

describe("redactUrl", () => {
  it("hides user info and query values but keeps git's service parameter", () => {
    const r = redactUrl("https://bob:hunter2@h.example/r.git/info/refs?service=git-upload-pack&private_token=abc");
    expect(r).not.toContain("hunter2");
    expect(r).not.toContain("bob");
    expect(r).not.toContain("abc");
    expect(r).toContain("service=git-upload-pack");
    expect(redactUrl("not a url //user:pw@x")).not.toContain("pw");
    expect(redactUrl("https://h/r.git")).toBe("https://h/r.git");
  });
});

describe("repository paths and branch names", () => {
  it("normalizes dirs and refuses escapes", () => {
    expect(normalizeRepoDir("")).toBe("");
    expect(normalizeRepoDir(".")).toBe("");
    expect(normalizeRepoDir("./apps//prod/")).toBe("apps/prod");
    expect(normalizeRepoDir("apps/./prod")).toBe("apps/prod");
    for (const bad of ["../x", "apps/../../x", "apps/..", "/etc", "a\\b", "a\u0000b"]) {
      expect(() => normalizeRepoDir(bad), bad).toThrow();
    }
  });

  it("checks branch names like git check-ref-format", () => {
    for (const ok of ["main", "release/1.2", "feature-x_y"]) expect(isValidBranchName(ok), ok).toBe(true);
    for (const bad of ["", "../x", "a..b", "a b", "a:b", "/a", "a/", ".hidden", "x.lock", "a@{1}", "a//b", "@"]) {
      expect(isValidBranchName(bad), bad).toBe(false);
    }
  });
});

describe("createGitHttp", () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });
  async function serve(handler: http.RequestListener): Promise<string> {
    server = http.createServer(handler);
    server.keepAliveTimeout = 100;
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  async function readAll(body: AsyncIterableIterator<Uint8Array> | undefined): Promise<string> {
    const parts: Buffer[] = [];
    if (body) for await (const c of body) parts.push(Buffer.from(c));
    return Buffer.concat(parts).toString("utf8");
  }

  it("sends Authorization up front (Bearer or Basic), a POST body, and reports each request", async () => {
    const seen: { auth?: string; body: string; method?: string }[] = [];
    const base = await serve((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen.push({ auth: req.headers.authorization, body, method: req.method });
        res.writeHead(200, { "content-type": "text/plain" }).end("hello");
      });
    });
    const infos: GitRequestInfo[] = [];
    const bearer = createGitHttp({ auth: { token: "tkn" }, timeoutMs: 2000, onRequest: (i) => infos.push(i) });
    const r = await bearer.request({ url: `${base}/r.git/info/refs?service=git-upload-pack`, method: "GET" });
    expect(r.statusCode).toBe(200);
    expect(await readAll(r.body)).toBe("hello");
    const r2 = await bearer.request({
      url: `${base}/r.git/git-upload-pack`,
      method: "POST",
      body: [Buffer.from("ab"), Buffer.from("cd")] as unknown as AsyncIterableIterator<Uint8Array>,
    });
    expect(r2.statusCode).toBe(200);
    const basic = createGitHttp({ auth: { username: "u", password: "p" }, timeoutMs: 2000 });
    await basic.request({ url: `${base}/x`, method: "GET" });
    expect(seen).toEqual([
      { auth: "Bearer tkn", body: "", method: "GET" },
      { auth: "Bearer tkn", body: "abcd", method: "POST" },
      { auth: `Basic ${Buffer.from("u:p").toString("base64")}`, body: "", method: "GET" },
    ]);
    expect(infos).toEqual([
      { method: "GET", url: `${base}/r.git/info/refs?service=git-upload-pack`, status: 200 },
      { method: "POST", url: `${base}/r.git/git-upload-pack`, status: 200 },
    ]);
    bearer.close();
    basic.close();
  });

  it("times out with an error naming the URL but no credentials", async () => {
    const base = await serve(() => {
      /* never answers */
    });
    const infos: GitRequestInfo[] = [];
    const c = createGitHttp({ auth: { token: "sekret-token" }, timeoutMs: 150, onRequest: (i) => infos.push(i) });
    const err = await c.request({ url: `${base}/slow.git/info/refs?service=git-upload-pack` }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/timed out after 150 ms/);
    expect((err as Error).message).toContain(`${base}/slow.git/info/refs`);
    expect((err as Error).message).not.toContain("sekret-token");
    expect(infos).toEqual([{ method: "GET", url: `${base}/slow.git/info/refs?service=git-upload-pack`, status: 0 }]);
    c.close();
    server!.closeAllConnections();
  });

  it("bounds the response size", async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200);
      res.write(Buffer.alloc(4096));
      res.end(Buffer.alloc(4096));
    });
    const c = createGitHttp({ timeoutMs: 2000, maxResponseBytes: 5000 });
    await expect(c.request({ url: `${base}/big` })).rejects.toThrow(/exceeds the limit of 5000 bytes/);
    const ok = createGitHttp({ timeoutMs: 2000, maxResponseBytes: 8192 });
    expect((await readAll((await ok.request({ url: `${base}/big` })).body)).length).toBe(8192);
    c.close();
    ok.close();
  });

  it("follows same-origin redirects but refuses to carry credentials elsewhere", async () => {
    const base = await serve((req, res) => {
      if (req.url === "/old.git/info/refs") res.writeHead(301, { location: "/new.git/info/refs" }).end();
      else if (req.url === "/away") res.writeHead(302, { location: "http://example.invalid/x" }).end();
      else res.writeHead(200).end(req.headers.authorization ?? "");
    });
    const c = createGitHttp({ auth: { token: "t" }, timeoutMs: 2000 });
    const r = await c.request({ url: `${base}/old.git/info/refs` });
    expect(r.statusCode).toBe(200);
    expect(await readAll(r.body)).toBe("Bearer t");
    await expect(c.request({ url: `${base}/away` })).rejects.toThrow(/another origin/);
    c.close();
  });

  it("refuses unusable auth settings without echoing them", () => {
    expect(() => createGitHttp({ auth: { token: "a\nb" }, timeoutMs: 1000 })).toThrow(/line breaks/);
    expect(() => createGitHttp({ auth: { token: "abc", password: "def" }, timeoutMs: 1000 })).toThrow(/either token or password/);
    expect(() => createGitHttp({ timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});
