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
    execFile(bin, ["demo"], { cwd, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
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
        "examples/demo-repo/base/tekton/pipeline.yaml",
        "examples/demo-repo/overlays/prod/kustomization.yaml",
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
    // This is the one run of the whole tour in CI: each step's outcome line is asserted here.
    const r = await demo(join(prefix, "node_modules", ".bin", "plumber"), prefix);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const steps = r.stdout.split(/^▸ /m);
    const step = (n: number) => steps.find((s) => s.startsWith(`${n}/7 `)) ?? "";
    const rev = "[0-9a-f]{12}";

    const first = step(1);
    expect(first).toMatch(/created +Namespace\/ci-plumbing/);
    expect(first).toMatch(/created +ConfigMap\/ci-plumbing\/release-settings/);
    expect(first).toMatch(/created +Pipeline\/ci-plumbing\/release/);
    expect(first).toMatch(/\[demo\] no Tekton controller runs here, so the demo plays it: PipelineRun ci-plumbing\/plumbing-nightly-post-smoke-/);
    expect(first).toMatch(new RegExp(`✓ nightly Ready at ${rev}: 8 objects created, post-check smoke passed; prod untouched`));

    const steady = step(2);
    expect(steady).toMatch(/cost: 3 rounds · nightly \d+ API requests \(0 writes, 0 dry-runs\) · prod \d+ API requests? \(0 writes, 0 dry-runs\)/);
    expect(steady).not.toMatch(/created|configured|pruned/);
    expect(steady).toContain("✓ 3 rounds: 0 writes, 0 dry-runs on either cluster");

    const drift = step(3);
    expect(drift).toMatch(/configured +ConfigMap\/ci-plumbing\/release-settings/);
    expect(drift).toMatch(/created +Task\/ci-plumbing\/git-clone/);
    expect(drift).toContain("✓ drift repaired on nightly");

    const rollback = step(4);
    const rolled = new RegExp(`✓ nightly rolled back to (${rev}) after post-check smoke failed at (${rev})`).exec(rollback);
    expect(rolled, rollback).not.toBeNull();
    expect(rollback).toMatch(/Succeeded=False/);

    const promoted = step(5);
    const bad = rolled?.[2] ?? "";
    expect(promoted).toMatch(new RegExp(`✓ prod Ready at ${rev} \\(overlays/prod: channel=stable, mirror set\\).*; ${bad} never reached prod`));
    expect(promoted).toMatch(/\$ plumber approve plumbing-prod/);

    const release = step(6);
    expect(release).toMatch(/✓ release nightly-release-\d{12} fired at the head of main, versionTag v\d{8}-[0-9a-f]{10}; recorded Succeeded/);

    const end = step(7);
    expect(end).toMatch(/^ +plumbing-prod +prod +/m);
    expect(end).toContain("✓ status shows both apps Ready");
    expect(end).toMatch(/✓ the dashboard at http:\/\/127\.0\.0\.1:\d+\/ shows both apps Ready/);
    expect(r.stdout).toContain("▸ demo done");
  }, 300_000);
});
