// Runs kustomize so that it cannot open a network connection, whatever a kustomization says.
// The remote-reference check (closure.ts) is the first line; this is the second, for whatever a
// parser gap or a future kustomize field lets through:
//   1. a fresh network namespace (`unshare --net`, or `unshare --user --map-root-user --net`
//      when plumber is not root) with only a loopback device that is down: no route anywhere,
//      not even to 127.0.0.1 of the host;
//   2. always: HTTP(S)_PROXY/ALL_PROXY at a local listener that drops every connection, NO_PROXY
//      empty (Go's HTTP client then sends every non-loopback request there), PATH an empty
//      directory (kustomize clones remote bases with the `git` binary and inflates charts with
//      `helm`: neither can be found), no --enable-helm / --enable-alpha-plugins / --enable-exec /
//      --network, a throwaway HOME and an empty plugin home.
// Which of 1. is available is detected once per binary (by running `kustomize version` inside it).
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { delimiter, join } from "node:path";

export type IsolationMode = "netns" | "userns-netns" | "proxy-only" | "network-allowed";

export interface Isolation {
  mode: IsolationMode;
  /** argv put before the kustomize binary (the unshare wrapper), empty when none. */
  prefix: string[];
  /** One line for the log: what is in force. */
  description: string;
}

/** Connections the refusing proxy dropped: kustomize tried the network despite everything. */
export const proxyStats = { refused: 0 };

let proxy: Promise<number> | undefined;

/** A loopback listener that drops every connection (so the proxy address refuses for certain). */
function refusingProxyPort(): Promise<number> {
  proxy ??= new Promise<number>((resolve, reject) => {
    const server: Server = createServer((sock) => {
      proxyStats.refused++;
      sock.destroy();
    });
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.unref();
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? addr.port : 0);
    });
  });
  return proxy;
}

/** An executable's absolute path: `name` as is when it holds a "/", else looked up in PATH. */
export function resolveExecutable(name: string, path = process.env.PATH ?? "/usr/bin:/bin"): string | undefined {
  const ok = (p: string): boolean => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (name.includes("/")) return ok(name) ? name : undefined;
  for (const dir of path.split(delimiter)) if (dir && ok(join(dir, name))) return join(dir, name);
  return undefined;
}

const detected = new Map<string, Promise<Isolation>>();

/**
 * How kustomize runs here: the strongest isolation that actually works for this binary.
 * `allowNetwork` (config kustomize.allowRemoteBases) turns isolation off, since kustomize then
 * has to clone remote bases.
 */
export function detectIsolation(binary: string, allowNetwork = false): Promise<Isolation> {
  const key = `${binary}\0${allowNetwork}`;
  let d = detected.get(key);
  if (!d) {
    d = detect(binary, allowNetwork);
    detected.set(key, d);
  }
  return d;
}

async function detect(binary: string, allowNetwork: boolean): Promise<Isolation> {
  if (allowNetwork) {
    return { mode: "network-allowed", prefix: [], description: "kustomize may use the network: kustomize.allowRemoteBases is true (remote bases are cloned with git)" };
  }
  const bin = resolveExecutable(binary);
  const unshare = resolveExecutable("unshare");
  if (bin && unshare) {
    const candidates: [IsolationMode, string[], string][] = [
      ["netns", [unshare, "--net", "--"], "a fresh network namespace (unshare --net)"],
      ["userns-netns", [unshare, "--user", "--map-root-user", "--net", "--"], "a fresh user and network namespace (unshare --user --map-root-user --net)"],
    ];
    for (const [mode, prefix, what] of candidates) {
      if (await probe([...prefix, bin, "version"])) {
        return { mode, prefix, description: `kustomize runs offline in ${what}, with a refusing proxy and no git or helm on PATH` };
      }
    }
  }
  const why = !bin ? `kustomize binary "${binary}" not found` : !unshare ? "no unshare binary" : "unshare --net and unshare --user --net both failed here";
  return {
    mode: "proxy-only",
    prefix: [],
    description: `kustomize runs without a network namespace (${why}): only the refusing proxy, the empty PATH (no git, no helm) and plumber's refusal of remote references keep it offline; loopback addresses stay reachable`,
  };
}

function probe(argv: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: "ignore", env: { PATH: "/nonexistent" } });
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.on("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}

export interface OfflineRun {
  binary: string;
  args: string[];
  cwd: string;
  /** A scratch directory owned by this run: HOME, the empty PATH, the plugin home. */
  home: string;
  isolation: Isolation;
  timeoutMs: number;
  maxOutputBytes: number;
}

export type RunResult =
  | { kind: "ok"; stdout: Buffer }
  | { kind: "failed"; code: number | null; stderr: string }
  | { kind: "timeout" }
  | { kind: "too-large" }
  | { kind: "not-found" };

/** The environment of an isolated kustomize: nothing of plumber's own (tokens, proxies, kubeconfig). */
export async function offlineEnv(home: string, isolation: Isolation): Promise<Record<string, string>> {
  const emptyBin = join(home, "bin");
  await mkdir(emptyBin, { recursive: true });
  // kustomize's own temp dirs (clones of remote bases) go with this run's scratch, removed with it.
  const tmp = join(home, "tmp");
  await mkdir(tmp, { recursive: true });
  const env: Record<string, string> = {
    HOME: home,
    TMPDIR: tmp,
    XDG_CONFIG_HOME: join(home, ".config"),
    XDG_CACHE_HOME: join(home, ".cache"),
    KUSTOMIZE_PLUGIN_HOME: join(home, "no-plugins"),
    GIT_TERMINAL_PROMPT: "0",
  };
  if (isolation.mode === "network-allowed") {
    env.PATH = process.env.PATH ?? "/usr/bin:/bin";
    for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"]) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    return env;
  }
  const p = `http://127.0.0.1:${await refusingProxyPort()}`;
  Object.assign(env, { PATH: emptyBin, HTTP_PROXY: p, HTTPS_PROXY: p, ALL_PROXY: p, http_proxy: p, https_proxy: p, all_proxy: p, NO_PROXY: "", no_proxy: "" });
  return env;
}

/** Runs the binary under the isolation with a timeout and an output bound. */
export async function runIsolated(r: OfflineRun): Promise<RunResult> {
  const bin = resolveExecutable(r.binary);
  if (!bin) return { kind: "not-found" };
  const env = await offlineEnv(r.home, r.isolation);
  const argv = [...r.isolation.prefix, bin, ...r.args];
  return new Promise((resolve) => {
    const child = spawn(argv[0] as string, argv.slice(1), { cwd: r.cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = "";
    let verdict: RunResult | undefined;
    const kill = (v: RunResult): void => {
      verdict ??= v;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => kill({ kind: "timeout" }), r.timeoutMs);
    child.stdout.on("data", (b: Buffer) => {
      outBytes += b.byteLength;
      if (outBytes > r.maxOutputBytes) kill({ kind: "too-large" });
      else out.push(b);
    });
    child.stderr.on("data", (b: Buffer) => {
      if (err.length < 8192) err += b.toString("utf8");
    });
    child.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code === "ENOENT" ? { kind: "not-found" } : { kind: "failed", code: null, stderr: e.message });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (verdict) resolve(verdict);
      else if (code !== 0) resolve({ kind: "failed", code, stderr: err });
      else resolve({ kind: "ok", stdout: Buffer.concat(out) });
    });
  });
}

/** kustomize build flags: the load restrictor, and every network-capable feature explicitly off. */
export const BUILD_FLAGS = ["--load-restrictor", "LoadRestrictionsRootOnly", "--enable-helm=false", "--enable-alpha-plugins=false", "--enable-exec=false", "--network=false"];
