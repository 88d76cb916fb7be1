// Config reload: validated first; an invalid config is refused and the old one keeps running.
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.js";
import type { PlumberConfig } from "../../src/config/types.js";
import { silentLogger } from "../../src/log.js";
import { ConfigReloader } from "../../src/service/reload.js";

function config(interval: string, extra: Record<string, unknown> = {}): string {
  return stringify({
    clusters: [{ name: "local" }],
    repos: [{ name: "plumbing", url: "https://git.example.com/plumbing.git", interval }],
    apps: [{ name: "tasks", repo: "plumbing", branch: "main", path: ".", cluster: "local", namespace: "ci" }],
    ...extra,
  });
}

const open: ConfigReloader[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) r.stop();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function setup(apply?: (c: PlumberConfig) => Promise<void>, pollMs = 50) {
  const dir = await mkdtemp(join(tmpdir(), "plumber-reload-"));
  dirs.push(dir);
  const path = join(dir, "plumber.yaml");
  await writeFile(path, config("1m"));
  const applied: PlumberConfig[] = [];
  const results: string[] = [];
  const checks = { n: 0 };
  const r = new ConfigReloader({
    path,
    current: await loadConfig(path),
    log: silentLogger(),
    pollMs,
    debounceMs: 20,
    apply: async (c) => {
      await apply?.(c);
      applied.push(c);
    },
    onResult: (x) => results.push(x),
    onCheck: () => checks.n++,
  });
  open.push(r);
  await r.start();
  /** Waits for `n` more looks at the file (polls or watch events) to finish. */
  const looks = async (n: number): Promise<void> => {
    const target = checks.n + n;
    await until(() => checks.n >= target);
  };
  return { dir, path, r, applied, results, looks };
}

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const t = Date.now();
  while (!cond()) {
    if (Date.now() - t > ms) throw new Error("timed out");
    await new Promise((res) => setTimeout(res, 20));
  }
};

describe("config reload", () => {
  it("applies a changed valid file, refuses an invalid one once, and ignores no-op changes", async () => {
    const { path, applied, results, looks } = await setup();
    await writeFile(path, config("2m"));
    await until(() => applied.length === 1);
    expect(applied[0]?.repos[0]?.intervalMs).toBe(120_000);

    await writeFile(path, config("2m").replace("interval: 2m", "interval: soon"));
    await until(() => results.includes("refused"));
    await looks(3);
    // Refused once, not at every poll, and nothing applied.
    expect(results).toEqual(["applied", "refused"]);
    expect(applied).toHaveLength(1);

    // Comments only: same config, nothing to do.
    await writeFile(path, "# comment\n" + config("2m"));
    await looks(3);
    expect(applied).toHaveLength(1);
    expect(results).toEqual(["applied", "refused"]);
  });

  it("follows a ConfigMap-volume style symlink swap (a rename in the directory)", async () => {
    const { dir, path, applied } = await setup();
    const tmp = join(dir, ".tmp.yaml");
    await writeFile(tmp, config("3m"));
    await rename(tmp, path);
    await until(() => applied.length === 1);
    expect(applied[0]?.repos[0]?.intervalMs).toBe(180_000);
  });

  it("SIGHUP-style reload re-applies even an unchanged config; a config whose runtime cannot be built is refused", async () => {
    let fail = false;
    const { path, r, applied } = await setup(async () => {
      if (fail) throw new Error("repos[plumbing].auth.tokenFile: cannot read /nope: ENOENT");
    });
    expect(await r.reload("signal")).toBe("applied");
    expect(applied).toHaveLength(1);
    fail = true;
    await writeFile(path, config("4m"));
    expect(await r.reload("signal")).toBe("refused");
    expect(applied).toHaveLength(1);
  });

  it("a SIGHUP while a look at the file is running is answered by its own reload", async () => {
    // No polling: nothing else looks at the file meanwhile.
    const { r, applied } = await setup(undefined, 0);
    const look = r.reload("file");
    const hup = r.reload("signal");
    expect(await look).toBe("unchanged");
    expect(await hup).toBe("applied");
    expect(applied).toHaveLength(1);
  });
});
