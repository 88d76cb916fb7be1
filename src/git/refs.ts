// Branch listing over smart HTTP, bounded whatever the server sends.
// Protocol v2: `ls-refs` with `ref-prefix refs/heads/`, so a server with a million tags or pull
// request refs sends only branches. The capability advertisement (GET info/refs) is fetched once
// per repository and cached, so a steady-state poll is one POST. A server that answers in v0/v1
// is still understood (its advertisement holds every ref, so the byte/ref caps matter there).
// Both answers are read with a byte cap and a ref cap; going over is a clear "limit" error.
import { GitSourceError, statusError, transportError } from "./errors.js";
import type { GitHttpResponse, HttpClient, LimitedGitHttpRequest } from "./http.js";

export interface RefLimits {
  /** Largest ref listing accepted, bytes. */
  maxBytes: number;
  /** Most branches accepted. */
  maxRefs: number;
}

export const DEFAULT_REF_LIMITS: RefLimits = { maxBytes: 8 * 1024 * 1024, maxRefs: 50_000 };

/** What a server said in its v2 capability advertisement; cached per repository. */
export interface V2Capabilities {
  objectFormat: boolean;
}

const USER_AGENT = "git/2 plumber";
const SHA_RE = /^[0-9a-f]{40}$/;

export interface ListResult {
  heads: Map<string, string>;
  /** The v2 capabilities to reuse next time (undefined when the server speaks v0/v1). */
  caps: V2Capabilities | undefined;
}

/**
 * Lists refs/heads/* of `url`. `caps` from an earlier call skips the GET. `shown` is the URL for
 * messages (no credentials).
 */
export async function listBranches(
  http: HttpClient,
  url: string,
  shown: string,
  limits: RefLimits,
  caps: V2Capabilities | undefined,
): Promise<ListResult> {
  if (caps) {
    try {
      return { heads: await lsRefs(http, url, shown, limits, caps), caps };
    } catch (e) {
      // The server may have changed (upgrade, proxy): a non-limit failure re-discovers once.
      if (e instanceof GitSourceError && (e.code === "limit" || e.code === "auth" || e.code === "not-found" || e.retryable)) throw e;
    }
  }
  const what = `listing branches of ${shown}`;
  const res = await send(http, {
    url: `${url}/info/refs?service=git-upload-pack`,
    method: "GET",
    headers: { "git-protocol": "version=2", "user-agent": USER_AGENT, accept: "*/*" },
    maxResponseBytes: limits.maxBytes,
  }, what, limits);
  const body = await readBody(res, what, limits);
  const ct = (res.headers?.["content-type"] ?? "").split(";")[0]!.trim();
  if (ct !== "application/x-git-upload-pack-advertisement") {
    throw new GitSourceError(
      `${what}: not a git smart-HTTP server (content-type ${JSON.stringify(ct.slice(0, 80))} for info/refs)`,
      "protocol",
      false,
    );
  }
  const lines = pktLines(body, what);
  let i = 0;
  if (lines[i]?.kind === "data" && lines[i]!.text.startsWith("# service=")) {
    i++;
    if (lines[i]?.kind === "flush") i++;
  }
  if (lines[i]?.kind === "data" && lines[i]!.text.replace(/\n$/, "") === "version 2") {
    const capsNow: V2Capabilities = { objectFormat: false };
    let hasLsRefs = false;
    for (i++; i < lines.length && lines[i]!.kind === "data"; i++) {
      const cap = lines[i]!.text.replace(/\n$/, "");
      if (cap === "ls-refs" || cap.startsWith("ls-refs=")) hasLsRefs = true;
      if (cap.startsWith("object-format=")) {
        if (cap !== "object-format=sha1") {
          throw new GitSourceError(`${what}: the repository uses ${cap}; only sha1 repositories are supported`, "protocol", false);
        }
        capsNow.objectFormat = true;
      }
    }
    if (!hasLsRefs) throw new GitSourceError(`${what}: the server speaks protocol v2 without ls-refs`, "protocol", false);
    return { heads: await lsRefs(http, url, shown, limits, capsNow), caps: capsNow };
  }
  return { heads: parseV1(lines.slice(i), what, limits), caps: undefined };
}

async function lsRefs(http: HttpClient, url: string, shown: string, limits: RefLimits, caps: V2Capabilities): Promise<Map<string, string>> {
  const what = `listing branches of ${shown}`;
  const parts = [pkt("command=ls-refs\n"), pkt(`agent=${USER_AGENT.replace(" ", "-")}\n`)];
  if (caps.objectFormat) parts.push(pkt("object-format=sha1\n"));
  parts.push(Buffer.from("0001"), pkt("ref-prefix refs/heads/\n"), Buffer.from("0000"));
  const res = await send(http, {
    url: `${url}/git-upload-pack`,
    method: "POST",
    headers: {
      "content-type": "application/x-git-upload-pack-request",
      accept: "application/x-git-upload-pack-result",
      "git-protocol": "version=2",
      "user-agent": USER_AGENT,
    },
    body: [Buffer.concat(parts)],
    maxResponseBytes: limits.maxBytes,
  }, what, limits);
  const body = await readBody(res, what, limits);
  const heads = new Map<string, string>();
  const lines = pktLines(body, what);
  let flushed = false;
  for (const l of lines) {
    if (l.kind !== "data") {
      flushed = l.kind === "flush";
      break;
    }
    if (l.text.startsWith("ERR ")) throw new GitSourceError(`${what}: server error: ${l.text.slice(4, 200).trim()}`, "protocol", false);
    const line = l.text.replace(/\n$/, "");
    const sp = line.indexOf(" ");
    const oid = line.slice(0, sp);
    const rest = line.slice(sp + 1);
    const name = rest.split(" ")[0]!;
    if (sp !== 40 || !SHA_RE.test(oid) || name === "") throw new GitSourceError(`${what}: malformed ls-refs line ${JSON.stringify(line.slice(0, 100))}`, "protocol", false);
    if (!name.startsWith("refs/heads/")) continue;
    heads.set(name.slice("refs/heads/".length), oid);
    if (heads.size > limits.maxRefs) throw tooManyRefs(what, limits);
  }
  if (!flushed) throw new GitSourceError(`${what}: truncated ls-refs response (no flush packet)`, "protocol", false);
  return heads;
}

function parseV1(lines: PktLine[], what: string, limits: RefLimits): Map<string, string> {
  const heads = new Map<string, string>();
  let flushed = false;
  for (const l of lines) {
    if (l.kind !== "data") {
      flushed = l.kind === "flush";
      break;
    }
    if (l.text.startsWith("ERR ")) throw new GitSourceError(`${what}: server error: ${l.text.slice(4, 200).trim()}`, "protocol", false);
    const line = l.text.replace(/\n$/, "").split("\0")[0]!;
    const oid = line.slice(0, 40);
    const name = line.slice(41);
    if (!SHA_RE.test(oid) || line[40] !== " ") throw new GitSourceError(`${what}: malformed ref advertisement line`, "protocol", false);
    if (!name.startsWith("refs/heads/") || name.endsWith("^{}")) continue;
    heads.set(name.slice("refs/heads/".length), oid);
    if (heads.size > limits.maxRefs) throw tooManyRefs(what, limits);
  }
  if (!flushed) throw new GitSourceError(`${what}: truncated ref advertisement (no flush packet)`, "protocol", false);
  return heads;
}

function tooManyRefs(what: string, limits: RefLimits): GitSourceError {
  return new GitSourceError(`${what}: more than ${limits.maxRefs} branches`, "limit", false);
}

async function send(http: HttpClient, req: LimitedGitHttpRequest, what: string, limits: RefLimits): Promise<GitHttpResponse> {
  let res: GitHttpResponse;
  try {
    res = await http.request(req);
  } catch (e) {
    const err = transportError(what, e);
    if (err.code === "limit") {
      throw new GitSourceError(`${what}: the server sent more than ${limits.maxBytes} bytes of refs (the listing limit)`, "limit", false, { cause: e });
    }
    throw err;
  }
  if (res.statusCode !== 200) {
    await drain(res);
    throw statusError(what, res.statusCode, res.statusMessage);
  }
  return res;
}

async function drain(res: GitHttpResponse): Promise<void> {
  if (!res.body) return;
  try {
    for await (const _ of res.body) {
      // discard
    }
  } catch {
    // already failed
  }
}

async function readBody(res: GitHttpResponse, what: string, limits: RefLimits): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  if (res.body) {
    for await (const c of res.body) {
      n += c.byteLength;
      if (n > limits.maxBytes) {
        throw new GitSourceError(`${what}: the server sent more than ${limits.maxBytes} bytes of refs`, "limit", false);
      }
      chunks.push(Buffer.from(c));
    }
  }
  return Buffer.concat(chunks, n);
}

interface PktLine {
  kind: "data" | "flush" | "delim" | "end";
  text: string;
}

export function pkt(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  return Buffer.concat([Buffer.from((b.length + 4).toString(16).padStart(4, "0"), "latin1"), b]);
}

/** Splits a pkt-line stream; anything malformed is a "protocol" error (garbage from the server). */
export function pktLines(buf: Buffer, what: string): PktLine[] {
  const out: PktLine[] = [];
  let i = 0;
  while (i < buf.length) {
    if (i + 4 > buf.length) throw garbage(what);
    const hex = buf.subarray(i, i + 4).toString("latin1");
    if (!/^[0-9a-f]{4}$/.test(hex)) throw garbage(what);
    const len = Number.parseInt(hex, 16);
    if (len === 0) out.push({ kind: "flush", text: "" });
    else if (len === 1) out.push({ kind: "delim", text: "" });
    else if (len === 2) out.push({ kind: "end", text: "" });
    else if (len < 4 || i + len > buf.length) throw garbage(what);
    else out.push({ kind: "data", text: buf.subarray(i + 4, i + len).toString("utf8") });
    i += len < 4 ? 4 : len;
  }
  return out;
}

function garbage(what: string): GitSourceError {
  return new GitSourceError(`${what}: the server's answer is not git pkt-line data`, "protocol", false);
}
