// Where the local control plane's binaries come from (src/local/binaries.ts) and where the demo
// finds the files it ships with (src/local/package.ts).
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { binariesCacheDir, ensureBinaries, REQUIRED_BINARIES } from "../../src/local/binaries.js";
import { packageFile, packageRoot } from "../../src/local/package.js";
import { findRepoRoot } from "../bed/paths.js";

const saved = { ...process.env };
const dirs: string[] = [];
afterEach(async () => {
  for (const k of ["PLUMBER_BIN_DIR", "PLUMBER_CACHE", "XDG_CACHE_HOME", "HOME"]) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function binDir(names: readonly string[]): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "plumber-bin-test-"));
  dirs.push(d);
  for (const n of names) {
    await writeFile(join(d, n), "#!/bin/sh\n");
    await chmod(join(d, n), 0o755);
  }
  return d;
}

describe("ensureBinaries", () => {
  it("uses PLUMBER_BIN_DIR as it is when it holds all four binaries", async () => {
    const d = await binDir(REQUIRED_BINARIES);
    process.env.PLUMBER_BIN_DIR = d;
    await expect(ensureBinaries()).resolves.toBe(d);
  });

  it("names what PLUMBER_BIN_DIR lacks instead of building", async () => {
    const d = await binDir(["kube-apiserver", "etcd"]);
    process.env.PLUMBER_BIN_DIR = d;
    await expect(ensureBinaries()).rejects.toThrow(`PLUMBER_BIN_DIR=${d} lacks kubectl, kustomize`);
  });

  it("caches where scripts/build-binaries.sh does", () => {
    process.env.PLUMBER_CACHE = "/c/plumber";
    expect(binariesCacheDir()).toBe("/c/plumber");
    delete process.env.PLUMBER_CACHE;
    process.env.XDG_CACHE_HOME = "/xdg";
    expect(binariesCacheDir()).toBe("/xdg/plumber");
    delete process.env.XDG_CACHE_HOME;
    process.env.HOME = "/home/u";
    expect(binariesCacheDir()).toBe("/home/u/.cache/plumber");
  });
});

describe("the package's own files", () => {
  it("are found from the module's own location (package.test.ts runs the demo from an install)", () => {
    expect(packageRoot()).toBe(findRepoRoot());
    expect(packageFile("examples", "demo-repo")).toBe(join(findRepoRoot(), "examples", "demo-repo"));
  });

  it("skip a package.json that is not plumber's on the way up", async () => {
    const d = await mkdtemp(join(tmpdir(), "plumber-pkg-test-"));
    dirs.push(d);
    await writeFile(join(d, "package.json"), JSON.stringify({ name: "not-plumber" }));
    expect(() => packageRoot(d)).toThrow(`plumber's package.json not found at or above ${d}`);
  });

  it("a missing one is named, with the package it was looked for in", () => {
    expect(() => packageFile("examples", "nope")).toThrow(`${join(findRepoRoot(), "examples", "nope")} is missing: the plumber at ${findRepoRoot()} was installed without examples/nope`);
  });
});
