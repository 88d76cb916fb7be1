// Running the git CLI safely: a clean environment (no system/global config, no prompts, only
// http(s) transports, credentials only in the environment), a deadline and a kill on every child,
// and bounded stdout/stderr.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";

export interface GitCliSettings {
  /** Full Authorization header value, sent with http.extraHeader (never on the command line). */
  authorization?: string;
  /** CA bundle file for http.sslCAInfo (which replaces git's default roots: it must hold them too). */
  caFile?: string;
  /** Seconds below 1 KiB/s after which git aborts a transfer (http.lowSpeedTime). */
  lowSpeedSeconds?: number;
  /** HOME for git: a directory only plumber writes, so no .netrc or .gitconfig of anyone else is read. */
  home: string;
}

export class GitCliError extends Error {
  constructor(
    message: string,
    readonly kind: "timeout" | "exit" | "spawn" | "too-large",
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(message);
    this.name = "GitCliError";
  }
}

/** Config for every git child, passed as GIT_CONFIG_KEY_n/VALUE_n (the values never show in `ps`). */
export function gitEnv(settings: GitCliSettings): NodeJS.ProcessEnv {
  const cfg: [string, string][] = [
    ["protocol.allow", "never"],
    ["protocol.https.allow", "always"],
    ["protocol.http.allow", "always"],
    // The listing already followed same-origin redirects; git must not carry the header elsewhere.
    ["http.followRedirects", "false"],
    ["protocol.version", "2"],
    ["credential.helper", ""],
    ["core.askPass", ""],
    ["gc.auto", "0"],
    ["maintenance.auto", "false"],
    ["fetch.writeCommitGraph", "false"],
    // Malformed objects from a hostile server are refused before they reach the cache.
    ["transfer.fsckObjects", "true"],
    ["core.fsyncObjectFiles", "true"],
    ["advice.detachedHead", "false"],
  ];
  if (settings.lowSpeedSeconds !== undefined) {
    cfg.push(["http.lowSpeedLimit", "1024"], ["http.lowSpeedTime", String(Math.max(1, Math.ceil(settings.lowSpeedSeconds)))]);
  }
  if (settings.authorization !== undefined) cfg.push(["http.extraHeader", `Authorization: ${settings.authorization}`]);
  if (settings.caFile !== undefined) cfg.push(["http.sslCAInfo", settings.caFile]);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: settings.home,
    LC_ALL: "C",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "",
    SSH_ASKPASS: "",
    GIT_PROTOCOL_FROM_USER: "0",
    GIT_CONFIG_COUNT: String(cfg.length),
  };
  cfg.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  return env;
}

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Largest stdout kept; more kills the child. Default 1 MiB. */
  maxStdout?: number;
  /** Called every 250 ms while the child runs; a returned message kills it (e.g. a disk budget). */
  watch?: () => Promise<string | undefined>;
}

const MAX_STDERR = 16 * 1024;

/** Starts git in its own process group, so a kill also ends its helpers (remote-https, index-pack). */
export function spawnGit(args: string[], env: NodeJS.ProcessEnv): ChildProcessWithoutNullStreams {
  return spawn("git", args, { env, stdio: ["pipe", "pipe", "pipe"], detached: true });
}

export function killGroup(child: { pid?: number; kill(sig: NodeJS.Signals): boolean }): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Runs `git args...`; resolves with stdout when it exits 0, else rejects with GitCliError. */
export function runGit(args: string[], opts: RunOptions): Promise<Buffer> {
  const maxStdout = opts.maxStdout ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawnGit(args, opts.env);
    } catch (e) {
      reject(new GitCliError(`git ${args[0]}: ${(e as Error).message}`, "spawn", "", null));
      return;
    }
    const out: Buffer[] = [];
    let outLen = 0;
    let stderr = "";
    let failure: GitCliError | undefined;
    const fail = (e: GitCliError) => {
      failure ??= e;
      killGroup(child);
    };
    const timer = setTimeout(
      () => fail(new GitCliError(`git ${args[0]} timed out after ${opts.timeoutMs} ms`, "timeout", stderr, null)),
      opts.timeoutMs,
    );
    let watching = false;
    const watcher = opts.watch
      ? setInterval(() => {
          if (watching) return;
          watching = true;
          opts.watch!()
            .then((msg) => {
              if (msg) fail(new GitCliError(msg, "too-large", stderr, null));
            })
            .catch(() => undefined)
            .finally(() => {
              watching = false;
            });
        }, 250)
      : undefined;
    child.stdin.end();
    child.stdout.on("data", (c: Buffer) => {
      outLen += c.length;
      if (outLen > maxStdout) {
        fail(new GitCliError(`git ${args[0]}: output over ${maxStdout} bytes`, "too-large", stderr, null));
        return;
      }
      out.push(c);
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < MAX_STDERR) stderr += d.slice(0, MAX_STDERR - stderr.length);
    });
    child.on("error", (e) => fail(new GitCliError(`git ${args[0]}: ${e.message}`, "spawn", stderr, null)));
    child.on("close", (code) => {
      clearTimeout(timer);
      if (watcher) clearInterval(watcher);
      if (failure) {
        reject(new GitCliError(failure.message, failure.kind, stderr, code));
        return;
      }
      if (code !== 0) {
        reject(new GitCliError(`git ${args[0]} exited with ${code}: ${lastLines(stderr)}`, "exit", stderr, code));
        return;
      }
      resolve(Buffer.concat(out, outLen));
    });
  });
}

/** The last meaningful lines of git's stderr, for an error message (git never prints our header). */
export function lastLines(stderr: string, n = 3): string {
  return stderr
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !/^(remote: )?(Counting|Compressing|Receiving|Resolving|Enumerating|Total)\b/.test(l))
    .slice(-n)
    .join("; ");
}
