// Object reads through one long-lived `git cat-file --batch-command` child per gitdir.
// `info` gives an object's type and size from its header, so limits are checked before a byte of
// content crosses into this process; `contents` is requested only for objects within the limit.
// Every request has a deadline; on timeout or a protocol surprise the child is killed and the
// caller treats the cache as suspect.
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { killGroup, spawnGit } from "./cli.js";

export interface ObjectInfo {
  type: "blob" | "tree" | "commit" | "tag";
  size: number;
}

export class ObjectReadError extends Error {
  constructor(
    message: string,
    readonly kind: "timeout" | "broken",
  ) {
    super(message);
    this.name = "ObjectReadError";
  }
}

const IDLE_CLOSE_MS = 5_000;
const HEADER_RE = /^([0-9a-f]{40}) (blob|tree|commit|tag) (\d+)$/;

interface Pending {
  oid: string;
  withContent: boolean;
  resolve: (v: { info: ObjectInfo; content?: Buffer } | undefined) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Requests are pipelined: each is written as soon as it is asked for and answered in order, so
 * reading the 200 files of an app costs about one round trip to the child, not 400.
 */
export class ObjectReader {
  private child: ChildProcessWithoutNullStreams | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private header: ObjectInfo | undefined;
  /** Written and not yet answered, oldest first: the child answers in the order it was asked. */
  private pending: Pending[] = [];
  private idle: NodeJS.Timeout | undefined;

  constructor(
    private readonly gitdir: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly timeoutMs: number,
  ) {}

  /** Type and size, or undefined when the object is not in the gitdir. */
  async info(oid: string): Promise<ObjectInfo | undefined> {
    return (await this.send(oid, false))?.info;
  }

  /** The object's bytes, or undefined when missing. Call info first when the size matters. */
  async contents(oid: string): Promise<{ info: ObjectInfo; content: Buffer } | undefined> {
    const r = await this.send(oid, true);
    return r ? { info: r.info, content: r.content! } : undefined;
  }

  /** Ends the child; requests still waiting fail (their answers would come from a stream nobody reads). */
  close(why: Error = new ObjectReadError("git cat-file closed", "broken")): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    const c = this.child;
    this.child = undefined;
    this.buf = Buffer.alloc(0);
    this.header = undefined;
    const waiting = this.pending;
    this.pending = [];
    if (c) {
      c.stdin.end();
      killGroup(c);
    }
    for (const p of waiting) p.reject(why);
  }

  private send(oid: string, withContent: boolean): Promise<{ info: ObjectInfo; content?: Buffer } | undefined> {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    const child = this.ensureChild();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.failAll(new ObjectReadError(`reading object ${oid} timed out after ${this.timeoutMs} ms`, "timeout")), this.timeoutMs);
      this.pending.push({
        oid,
        withContent,
        timer,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.stdin.write(`${withContent ? "contents" : "info"} ${oid}\n`);
    });
  }

  /** The head request is answered: the next one's answer may already be in the buffer. */
  private answered(v: { info: ObjectInfo; content?: Buffer } | undefined): void {
    const p = this.pending.shift();
    p?.resolve(v);
    if (this.pending.length === 0) this.armIdle();
  }

  private armIdle(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = setTimeout(() => this.close(), IDLE_CLOSE_MS);
    this.idle.unref();
  }

  private ensureChild(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const child = spawnGit(["--git-dir", this.gitdir, "cat-file", "--batch-command"], this.env);
    this.child = child;
    // An idle reader must not keep a CLI command's process alive; a pending read holds its own timer.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
    child.stdin.on("error", () => undefined);
    child.stderr.resume();
    child.stdout.on("data", (c: Buffer) => {
      if (this.child !== child) return;
      this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
      this.drain();
    });
    const gone = (why: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.failAll(new ObjectReadError(`git cat-file ${why}`, "broken"));
    };
    child.on("error", (e) => gone(`failed: ${e.message}`));
    child.on("close", (code) => gone(`exited (${code})`));
    return child;
  }

  private drain(): void {
    while (this.child) {
      const p = this.pending[0];
      if (!p) {
        if (this.buf.length > 0) this.breakWith("sent output nobody asked for");
        return;
      }
      if (this.header === undefined) {
        const nl = this.buf.indexOf(10);
        if (nl < 0) {
          if (this.buf.length > 256) this.breakWith("sent an overlong header");
          return;
        }
        const line = this.buf.subarray(0, nl).toString("latin1");
        this.buf = this.buf.subarray(nl + 1);
        if (line === `${p.oid} missing`) {
          this.answered(undefined);
          continue;
        }
        const m = HEADER_RE.exec(line);
        if (!m || m[1] !== p.oid) {
          this.breakWith(`answered ${JSON.stringify(line.slice(0, 100))} for ${p.oid}`);
          return;
        }
        const info: ObjectInfo = { type: m[2] as ObjectInfo["type"], size: Number(m[3]) };
        if (!p.withContent) {
          this.answered({ info });
          continue;
        }
        this.header = info;
      }
      const size = this.header.size;
      if (this.buf.length < size + 1) return;
      const content = Buffer.from(this.buf.subarray(0, size));
      if (this.buf[size] !== 10) {
        this.breakWith(`object ${p.oid} not terminated by a newline`);
        return;
      }
      this.buf = this.buf.subarray(size + 1);
      const info = this.header;
      this.header = undefined;
      this.answered({ info, content });
    }
  }

  /** Every request still waiting fails with `e`, and the child goes (its stream is no longer trusted). */
  private failAll(e: Error): void {
    this.close(e);
  }

  private breakWith(why: string): void {
    this.failAll(new ObjectReadError(`git cat-file ${why}`, "broken"));
  }
}

/** A parsed tree entry (git's binary tree format: "<mode> <name>\0<20-byte oid>"). */
export interface RawTreeEntry {
  mode: string;
  name: string;
  oid: string;
}

export function parseTree(buf: Buffer): RawTreeEntry[] {
  const out: RawTreeEntry[] = [];
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(32, i);
    const nul = sp < 0 ? -1 : buf.indexOf(0, sp + 1);
    if (sp < 0 || nul < 0 || nul + 21 > buf.length) throw new Error("malformed tree object");
    const mode = buf.subarray(i, sp).toString("latin1");
    const name = buf.subarray(sp + 1, nul).toString("utf8");
    const oid = buf.subarray(nul + 1, nul + 21).toString("hex");
    out.push({ mode: mode.length === 5 ? `0${mode}` : mode, name, oid });
    i = nul + 21;
  }
  return out;
}

/** The tree oid named by a commit object's first line. */
export function commitTree(buf: Buffer): string {
  const m = /^tree ([0-9a-f]{40})\n/.exec(buf.subarray(0, 46).toString("latin1"));
  if (!m) throw new Error("malformed commit object");
  return m[1]!;
}
