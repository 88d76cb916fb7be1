// One scratch root per test run, and proof that the run left nothing else in the temp dir.
//
// The root is <tmp>/plumber-run-XXXXXX; TMPDIR (and TMP, TEMP) point into it for the whole run,
// so whatever the run creates with os.tmpdir() or mktemp — in the runner, its workers and every
// child process — lands inside it and goes when it is removed. At the end, anything new in the
// real temp dir that is plumber's (plumber-*, kustomize-*) and not some run's root was made by code that
// ignores TMPDIR: finish() names it and fails the run.
//
// Also a vitest globalSetup on its own (the default export), for projects without a control plane.
import { rmSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnReaper, type Reaper } from "../../src/local/reaper.js";

const ROOT_PREFIX = "plumber-run-";
/** This project names its temp files plumber-*; kustomize (run by plumber) names its own kustomize-*. */
const OURS = /^(plumber|kustomize)-/;
const TMP_VARS = ["TMPDIR", "TMP", "TEMP"] as const;

export interface Scratch {
  /** The run's root: removed by finish(), or by a watchdog if the runner is killed. */
  root: string;
  /** What TMPDIR points to during the run (inside root). */
  tmp: string;
  /** Restores TMPDIR, removes root, and throws naming anything the run left outside it. */
  finish(): Promise<void>;
}

export interface ScratchOptions {
  /** The temp dir to watch and make the root in; default os.tmpdir() (before redirection). */
  base?: string;
  /** Set TMPDIR/TMP/TEMP to the root's tmp/ (default true). */
  redirect?: boolean;
}

export async function startScratch(opts: ScratchOptions = {}): Promise<Scratch> {
  const base = opts.base ?? tmpdir();
  const started = Date.now();
  const before = new Set(await readdir(base));
  const root = await mkdtemp(join(base, ROOT_PREFIX));
  const tmp = join(root, "tmp");
  await mkdir(tmp);
  const reaper: Reaper = spawnReaper({ pids: [], dirs: [root] });
  const removeSync = () => rmSync(root, { recursive: true, force: true });
  process.on("exit", removeSync);
  const saved = new Map(TMP_VARS.map((k) => [k, process.env[k]]));
  if (opts.redirect ?? true) for (const k of TMP_VARS) process.env[k] = tmp;

  let finished: Promise<void> | undefined;
  const finish = (): Promise<void> =>
    (finished ??= (async () => {
      for (const [k, v] of saved) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await rm(root, { recursive: true, force: true, maxRetries: 3 });
      reaper.disarm();
      process.off("exit", removeSync);
      const left = (await readdir(base)).filter((name) => !before.has(name) && OURS.test(name) && !name.startsWith(ROOT_PREFIX) && madeSince(join(base, name), started));
      if (left.length > 0) {
        throw new Error(
          `the test run left ${left.length} entr${left.length === 1 ? "y" : "ies"} in ${base}, outside its scratch root ${root}:\n` +
            left.map((n) => `  ${join(base, n)}`).join("\n") +
            "\nwhatever made them ignores TMPDIR: create temp files with os.tmpdir() or tempDir() (test/setup/env.ts) and remove them.",
        );
      }
    })());
  return { root, tmp, finish };
}

function madeSince(path: string, t: number): boolean {
  try {
    // ctime, not birthtime: not every filesystem records a birth time; the slack covers coarse clocks.
    return statSync(path).ctimeMs >= t - 1000;
  } catch {
    return false;
  }
}

/**
 * A globalSetup teardown that fails the run when `fn` throws: vitest only prints teardown errors
 * ("error during close") and still exits 0.
 */
export function failingTeardown(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (err) {
      process.exitCode = 1;
      throw err;
    }
  };
}

const SHARED = Symbol.for("plumber.test.scratch");
interface Shared {
  scratch: Promise<Scratch>;
  users: number;
}
type WithShared = typeof globalThis & { [SHARED]?: Shared };

/**
 * The run's one scratch root, for every globalSetup of the run. vitest runs the globalSetups of
 * all projects in one process, in no fixed order: each starting its own root would nest one inside
 * the other's TMPDIR, and whichever came second would own the workers' temp dir. The root goes when
 * its last user finishes. Kept on globalThis because vitest may load this module once per project.
 */
export function sharedScratch(opts: ScratchOptions = {}): Promise<Scratch> {
  const g = globalThis as WithShared;
  const shared = (g[SHARED] ??= { scratch: startScratch(opts), users: 0 });
  shared.users++;
  let done = false;
  return shared.scratch.then((s) => ({
    ...s,
    finish: async () => {
      if (done) return;
      done = true;
      if (--shared.users > 0) return;
      delete g[SHARED];
      await s.finish();
    },
  }));
}

export default async function setup(): Promise<() => Promise<void>> {
  const scratch = await sharedScratch();
  return failingTeardown(scratch.finish);
}
