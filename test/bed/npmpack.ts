// The published package as users get it: `npm pack` of the repo, installed offline into a fresh
// prefix with exactly the dependency versions of the repo's lockfile (npm ci resolves them from
// the npm cache the repo's own `npm ci` filled, so no registry is needed).
import { execFile } from "node:child_process";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${cmd} ${args.join(" ")} (in ${cwd}) failed: ${err.message}\n${stderr}`));
      else res(stdout);
    });
  });
}

export interface Packed {
  tarball: string;
  /** Paths inside the package, as `npm pack` lists them. */
  files: string[];
}

/** `npm pack` of `repoRoot` into `dest` (lifecycle scripts off: dist/ must be built already). */
export async function npmPack(repoRoot: string, dest: string): Promise<Packed> {
  const out = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dest], repoRoot, 60_000);
  const [info] = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>;
  if (!info) throw new Error(`npm pack printed no package: ${out}`);
  return { tarball: join(dest, basename(info.filename)), files: info.files.map((f) => f.path) };
}

interface LockEntry {
  dev?: boolean;
  link?: boolean;
  [k: string]: unknown;
}

/**
 * Installs `tarball` into `prefix` (an empty dir) with `npm ci --offline`: the lockfile written
 * there is the repo's production entries plus the tarball as the one direct dependency.
 * Returns the installed package's directory.
 */
export async function installOffline(repoRoot: string, tarball: string, prefix: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as Record<string, unknown> & { name: string; version: string };
  const lock = JSON.parse(await readFile(join(repoRoot, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
  const local = basename(tarball);
  await copyFile(tarball, join(prefix, local));
  const spec = `file:${local}`;
  const packages: Record<string, unknown> = {
    "": { dependencies: { [pkg.name]: spec } },
    [`node_modules/${pkg.name}`]: {
      version: pkg.version,
      resolved: spec,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path && !entry.dev && !entry.link) packages[path] = entry;
  }
  await writeFile(join(prefix, "package.json"), JSON.stringify({ private: true, dependencies: { [pkg.name]: spec } }));
  await writeFile(join(prefix, "package-lock.json"), JSON.stringify({ name: "plumber-install", lockfileVersion: 3, requires: true, packages }));
  await run("npm", ["ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], prefix, 120_000);
  return join(prefix, "node_modules", pkg.name);
}
