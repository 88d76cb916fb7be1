// Pure parts of the git layer: pkt-lines, tree/commit objects, the bounded v2/v1 branch listing
// (against a scripted HttpClient), and the environment every git child gets.
import type { GitHttpRequest, GitHttpResponse, HttpClient } from "../../src/git/http.js";
import { describe, expect, it } from "vitest";
import { gitEnv } from "../../src/git/cli.js";
import { GitSourceError } from "../../src/git/errors.js";
import { commitTree, parseTree } from "../../src/git/objects.js";
import { listBranches, pkt, pktLines } from "../../src/git/refs.js";

const A = "a".repeat(40);
const B = "b".repeat(40);

function response(status: number, contentType: string, body: Buffer): GitHttpResponse {
  return {
    url: "",
    method: "",
    statusCode: status,
    statusMessage: "",
    headers: { "content-type": contentType },
    body: (async function* () {
      yield new Uint8Array(body);
    })(),
  };
}

/** An HttpClient answering GET info/refs and POST git-upload-pack from the given bodies; records requests. */
function scripted(get: Buffer, post: Buffer | undefined): { http: HttpClient; seen: { method: string; body: string }[] } {
  const seen: { method: string; body: string }[] = [];
  const http: HttpClient = {
    async request(req: GitHttpRequest) {
      let body = "";
      if (req.body) for await (const c of req.body as AsyncIterable<Uint8Array>) body += Buffer.from(c).toString();
      seen.push({ method: req.method ?? "GET", body });
      if ((req.method ?? "GET") === "GET") return response(200, "application/x-git-upload-pack-advertisement", get);
      return response(200, "application/x-git-upload-pack-result", post ?? Buffer.alloc(0));
    },
  };
  return { http, seen };
}

const LIMITS = { maxBytes: 1 << 20, maxRefs: 100 };
const v2caps = Buffer.concat([pkt("# service=git-upload-pack\n"), Buffer.from("0000"), pkt("version 2\n"), pkt("ls-refs=unborn\n"), pkt("object-format=sha1\n"), Buffer.from("0000")]);

describe("listBranches", () => {
  it("v2: ls-refs with ref-prefix refs/heads/, then one POST per listing with cached capabilities", async () => {
    const lsrefs = Buffer.concat([pkt(`${A} refs/heads/main\n`), pkt(`${B} refs/heads/feature/x\n`), pkt(`${B} refs/tags/v1\n`), Buffer.from("0000")]);
    const { http, seen } = scripted(v2caps, lsrefs);
    const first = await listBranches(http, "https://h/r.git", "https://h/r.git", LIMITS, undefined);
    expect(first.heads).toEqual(new Map([["main", A], ["feature/x", B]]));
    expect(seen.map((s) => s.method)).toEqual(["GET", "POST"]);
    expect(seen[1]!.body).toContain("command=ls-refs");
    expect(seen[1]!.body).toContain("ref-prefix refs/heads/");
    expect(seen[1]!.body).toContain("object-format=sha1");
    const again = await listBranches(http, "https://h/r.git", "https://h/r.git", LIMITS, first.caps);
    expect(again.heads).toEqual(first.heads);
    expect(seen.map((s) => s.method)).toEqual(["GET", "POST", "POST"]);
  });

  it("v1: reads branches from the advertisement, skipping tags and peeled refs", async () => {
    const adv = Buffer.concat([
      pkt("# service=git-upload-pack\n"),
      Buffer.from("0000"),
      pkt(`${A} HEAD\0multi_ack thin-pack\n`),
      pkt(`${A} refs/heads/main\n`),
      pkt(`${B} refs/tags/v1\n`),
      pkt(`${A} refs/tags/v1^{}\n`),
      Buffer.from("0000"),
    ]);
    const { http, seen } = scripted(adv, undefined);
    const r = await listBranches(http, "https://h/r.git", "https://h/r.git", LIMITS, undefined);
    expect(r.heads).toEqual(new Map([["main", A]]));
    expect(r.caps).toBeUndefined();
    expect(seen).toHaveLength(1);
  });

  it("refuses too many branches, too many bytes, truncation and garbage with clear non-retryable errors", async () => {
    const many = Buffer.concat([...Array.from({ length: 101 }, (_, i) => pkt(`${A} refs/heads/b${i}\n`)), Buffer.from("0000")]);
    const e1 = await listBranches(scripted(v2caps, many).http, "u", "u", LIMITS, undefined).catch((e: unknown) => e);
    expect(e1).toMatchObject({ code: "limit", retryable: false, message: expect.stringMatching(/more than 100 branches/) });
    const e2 = await listBranches(scripted(v2caps, many).http, "u", "u", { maxBytes: 1000, maxRefs: 1000 }, undefined).catch((e: unknown) => e);
    expect(e2).toMatchObject({ code: "limit", message: expect.stringMatching(/more than 1000 bytes/) });
    const truncated = Buffer.concat([pkt(`${A} refs/heads/main\n`)]);
    const e3 = await listBranches(scripted(v2caps, truncated).http, "u", "u", LIMITS, undefined).catch((e: unknown) => e);
    expect(e3).toMatchObject({ code: "protocol", message: expect.stringMatching(/truncated/) });
    const e4 = await listBranches(scripted(Buffer.from("<html>hello</html>"), undefined).http, "u", "u", LIMITS, undefined).catch((e: unknown) => e);
    expect(e4).toBeInstanceOf(GitSourceError);
    expect(e4).toMatchObject({ code: "protocol", retryable: false });
  });

  it("pktLines rejects what is not pkt-line data", () => {
    expect(pktLines(Buffer.from("0008abcd00000001"), "x").map((l) => l.kind)).toEqual(["data", "flush", "delim"]);
    for (const bad of ["zzzz", "0010short", "0003", "00"]) expect(() => pktLines(Buffer.from(bad), "x"), bad).toThrow(/pkt-line/);
  });
});

describe("git objects", () => {
  it("parses tree entries (modes, names, oids) and a commit's tree", () => {
    const entry = (mode: string, name: string, oid: string) => Buffer.concat([Buffer.from(`${mode} ${name}\0`), Buffer.from(oid, "hex")]);
    const tree = Buffer.concat([entry("40000", "dir", A), entry("100644", "f.yaml", B), entry("120000", "link", A), entry("160000", "sub", B)]);
    expect(parseTree(tree)).toEqual([
      { mode: "040000", name: "dir", oid: A },
      { mode: "100644", name: "f.yaml", oid: B },
      { mode: "120000", name: "link", oid: A },
      { mode: "160000", name: "sub", oid: B },
    ]);
    expect(() => parseTree(Buffer.from("100644 broken"))).toThrow(/malformed/);
    expect(commitTree(Buffer.from(`tree ${A}\nparent ${B}\n\nmsg\n`))).toBe(A);
    expect(() => commitTree(Buffer.from("nonsense"))).toThrow(/malformed/);
  });
});

describe("gitEnv", () => {
  it("isolates git from system/global config and prompts; credentials only in GIT_CONFIG_VALUE_n", () => {
    const env = gitEnv({ authorization: "Bearer s3cret", caFile: "/x/ca.pem", lowSpeedSeconds: 2.5, home: "/x/home" });
    expect(env).toMatchObject({ GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", GIT_TERMINAL_PROMPT: "0" });
    expect(env.HOME).toBe("/x/home");
    const cfg = new Map<string, string>();
    for (let i = 0; i < Number(env.GIT_CONFIG_COUNT); i++) cfg.set(env[`GIT_CONFIG_KEY_${i}`]!, env[`GIT_CONFIG_VALUE_${i}`]!);
    expect(cfg.get("protocol.allow")).toBe("never");
    expect(cfg.get("protocol.https.allow")).toBe("always");
    expect(cfg.get("protocol.http.allow")).toBe("always");
    expect(cfg.has("protocol.file.allow")).toBe(false);
    expect(cfg.get("http.extraHeader")).toBe("Authorization: Bearer s3cret");
    expect(cfg.get("http.sslCAInfo")).toBe("/x/ca.pem");
    expect(cfg.get("http.lowSpeedTime")).toBe("3");
    expect(cfg.get("http.followRedirects")).toBe("false");
    // Nothing of the parent's environment leaks in (GIT_DIR, proxies, tokens in env vars).
    expect(Object.keys(env).every((k) => k.startsWith("GIT_") || ["PATH", "HOME", "LC_ALL", "SSH_ASKPASS"].includes(k))).toBe(true);
  });
});
