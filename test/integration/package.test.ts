// The published package: `npm pack` carries plumber and what `plumber demo` needs, and no test
// code; `plumber demo` runs from an install of it, outside the repo, on the cached binaries.
import { execFile } from "node:child_process";
import { mkdir, readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { installOffline, npmPack } from "../bed/npmpack.js";
import { findRepoRoot } from "../bed/paths.js";
import { tempDir } from "../setup/env.js";

// Nothing of the test bed, the benchmarks or their sources; src/local/ is the demo's, not a test's.
const TEST_CODE = /(^|\/)(test|bench|sandbox)\/|\.test\.|^src\/|service\/testing\./;

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

function demo(bin: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(bin, ["demo"], { cwd, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      res({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe("the npm package", () => {
  it("holds no test code, and `plumber demo` runs from an install of it", async () => {
    const root = findRepoRoot();
    const work = await tempDir("package");
    const packed = await npmPack(root, work);

    expect(packed.files.filter((f) => TEST_CODE.test(f))).toEqual([]);
    expect(packed.files).toEqual(
      expect.arrayContaining([
        "dist/src/cli/main.js",
        "dist/src/local/controlplane.js",
        "examples/demo-repo/tekton/pipeline.yaml",
        "examples/crds/tekton.yaml",
        "scripts/build-binaries.sh",
        "config/plumber.schema.json",
      ]),
    );

    const prefix = join(work, "prefix");
    await mkdir(prefix);
    const installed = await installOffline(root, packed.tarball, prefix);
    const files = (await walk(installed)).map((f) => relative(installed, f));
    expect(files.filter((f) => TEST_CODE.test(f))).toEqual([]);

    // From the install, in a directory that is not the repo: data and the build script are the package's.
    const r = await demo(join(prefix, "node_modules", ".bin", "plumber"), prefix);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const sections = r.stdout.split(/^▸ /m);
    const section = (title: string) => sections.find((s) => s.startsWith(title)) ?? "";

    const first = section("first sync");
    expect(first).toMatch(/created +Namespace\/ci-plumbing/);
    expect(first).toMatch(/created +ConfigMap\/ci-plumbing\/release-settings/);
    expect(first).toMatch(/created +Pipeline\/ci-plumbing\/release/);

    const steady = section("next poll, nothing changed");
    expect(steady).toMatch(/API requests: 0 writes, 0 dry-runs\)/);
    expect(steady).not.toMatch(/created|configured|pruned/);

    const change = section("commit ");
    expect(change).toMatch(/configured +ConfigMap\/ci-plumbing\/release-settings/);
    expect(change).toMatch(/pruned +Pipeline\/ci-plumbing\/release/);
    expect(r.stdout).toContain("▸ demo done");
  });
});
