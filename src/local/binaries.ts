// Locates (or builds) the binaries of a local control plane (`plumber demo`, the test bed):
// kube-apiserver, etcd, kubectl and kustomize, all in one directory.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, mkdirSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { packageFile, packageRoot } from "./package.js";

export const REQUIRED_BINARIES = ["kube-apiserver", "etcd", "kubectl", "kustomize"] as const;

export interface EnsureBinariesOptions {
  /** Receives the build script's stderr line by line. Default: written to process.stderr. */
  log?: (line: string) => void;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function hasAll(dir: string, names: readonly string[]): boolean {
  return names.every((n) => isExecutable(join(dir, n)));
}

/** The cache scripts/build-binaries.sh builds into (same rule as the script's CACHE). */
export function binariesCacheDir(): string {
  return (
    process.env.PLUMBER_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? homedir(), ".cache"), "plumber")
  );
}

/**
 * A directory holding kube-apiserver, etcd, kubectl and kustomize.
 *
 * PLUMBER_BIN_DIR, when set, is that directory (it must hold all four). Else, if
 * KUBEBUILDER_ASSETS names a folder with kube-apiserver and etcd, those are used; kubectl and
 * kustomize come from the same folder when present there, otherwise from the source build (a
 * directory of symlinks joining the two, in the cache, is returned then). Otherwise runs the
 * package's scripts/build-binaries.sh (cached per version; waits on a concurrent build through
 * its lock).
 */
export async function ensureBinaries(opts: EnsureBinariesOptions = {}): Promise<string> {
  const given = process.env.PLUMBER_BIN_DIR;
  if (given) {
    const missing = REQUIRED_BINARIES.filter((n) => !isExecutable(join(given, n)));
    if (missing.length > 0) throw new Error(`PLUMBER_BIN_DIR=${given} lacks ${missing.join(", ")} (executable)`);
    return resolve(given);
  }
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets && hasAll(assets, ["kube-apiserver", "etcd"])) {
    const dir = resolve(assets);
    if (hasAll(dir, REQUIRED_BINARIES)) return dir;
    const built = await runBuildScript(opts);
    return mergedDir(dir, built);
  }
  return runBuildScript(opts);
}

/** kube-apiserver and etcd from `assets`, everything else from `built`, as symlinks in one dir. */
function mergedDir(assets: string, built: string): string {
  const key = createHash("sha256").update(`${assets}\0${built}`).digest("hex").slice(0, 16);
  // In the binaries cache, not the temp dir: it is reused by every later run with the same pair.
  const dir = join(binariesCacheDir(), "bin", `merged-${key}`);
  mkdirSync(dir, { recursive: true });
  for (const name of REQUIRED_BINARIES) {
    const target = hasAll(assets, [name]) ? join(assets, name) : join(built, name);
    const link = join(dir, name);
    let current: string | undefined;
    try {
      current = readlinkSync(link);
    } catch {
      current = undefined;
    }
    if (current === target) continue;
    rmSync(link, { force: true });
    symlinkSync(target, link);
  }
  return dir;
}

function runBuildScript(opts: EnsureBinariesOptions): Promise<string> {
  const root = packageRoot();
  const script = packageFile("scripts", "build-binaries.sh");
  const log = opts.log ?? ((line: string) => process.stderr.write(line + "\n"));
  return new Promise((resolvePromise, reject) => {
    const child = spawn("bash", [script], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let errBuf = "";
    const errTail: string[] = [];
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      errBuf += d;
      let nl: number;
      while ((nl = errBuf.indexOf("\n")) >= 0) {
        const line = errBuf.slice(0, nl);
        errBuf = errBuf.slice(nl + 1);
        errTail.push(line);
        if (errTail.length > 30) errTail.shift();
        log(line);
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (errBuf) {
        errTail.push(errBuf);
        log(errBuf);
      }
      const dir = stdout.trim().split("\n").pop()?.trim() ?? "";
      if (code !== 0 || !dir) {
        reject(
          new Error(
            `${script} failed (${signal ?? `exit ${code}`}); last output:\n${errTail.join("\n")}`,
          ),
        );
        return;
      }
      if (!hasAll(dir, REQUIRED_BINARIES)) {
        reject(new Error(`${script} printed ${dir}, which lacks one of ${REQUIRED_BINARIES.join(", ")}`));
        return;
      }
      resolvePromise(dir);
    });
  });
}
