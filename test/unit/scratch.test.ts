// The test run's scratch root (test/setup/scratch.ts): it takes the run's temp files and names
// whatever the run left in the temp dir outside it.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sharedScratch, startScratch } from "../setup/scratch.js";

let base: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "plumber-scratch-test-"));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe("test run scratch root", () => {
  it("points TMPDIR inside the root for the run, restores it and removes the root at the end", async () => {
    const was = process.env.TMPDIR;
    const s = await startScratch({ base });
    try {
      expect(s.root.startsWith(join(base, "plumber-run-"))).toBe(true);
      expect(process.env.TMPDIR).toBe(s.tmp);
      expect(tmpdir()).toBe(s.tmp);
      await writeFile(join(tmpdir(), "plumber-inside"), "x");
    } finally {
      await s.finish();
    }
    expect(process.env.TMPDIR).toBe(was);
    expect(existsSync(s.root)).toBe(false);
  });

  it("fails naming what the run left outside the root, and still removes the root", async () => {
    const s = await startScratch({ base, redirect: false });
    await mkdir(join(base, "plumber-it-leak"));
    await writeFile(join(base, "plumber-cfg-leak"), "x");
    const err = await s.finish().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain(`left 2 entries in ${base}, outside its scratch root ${s.root}`);
    expect(err?.message).toContain(join(base, "plumber-it-leak"));
    expect(err?.message).toContain(join(base, "plumber-cfg-leak"));
    expect(existsSync(s.root)).toBe(false);
  });

  it("ignores what was there before, what is not plumber's, and other runs' roots", async () => {
    await mkdir(join(base, "plumber-old"));
    const s = await startScratch({ base, redirect: false });
    await mkdir(join(base, "someone-elses"));
    await mkdir(join(base, "plumber-run-concurrent"));
    await expect(s.finish()).resolves.toBeUndefined();
  });

  it("gives every globalSetup of the run the same root, whatever their order, and removes it after the last", async () => {
    const was = process.env.TMPDIR;
    // Both start before either resolves: the projects' setups run concurrently.
    const [a, b] = await Promise.all([sharedScratch({ base }), sharedScratch({ base })]);
    expect(b.root).toBe(a.root);
    expect(tmpdir()).toBe(a.tmp);
    await a.finish();
    await a.finish(); // a second finish of one user does not count as the other's
    expect(existsSync(a.root)).toBe(true);
    expect(tmpdir()).toBe(a.tmp);
    await b.finish();
    expect(existsSync(a.root)).toBe(false);
    expect(process.env.TMPDIR).toBe(was);
    const c = await sharedScratch({ base });
    expect(c.root).not.toBe(a.root);
    await c.finish();
  });
});
