// The CLI as users run it: the built `plumber` against the real control plane and git server.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findRepoRoot } from "../bed/paths.js";
import { configMap, getObject, harness, type Harness } from "./support.js";

const MAIN = join(findRepoRoot(), "dist", "src", "cli", "main.js");

function plumber(h: Harness, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, "--config", h.configFile, "--cache-dir", h.cacheDir, "--log-level", "warn", ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const open: Harness[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

describe("plumber CLI", () => {
  it("validate, plan (exit 2 then 0), apply --once, status and history", async () => {
    const h = await harness({
      "a.yaml": configMap("a", { v: "1" }),
      "s.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: hunter2-very-secret\n",
    });
    open.push(h);
    const rev = await h.repo.head("main");

    const v = await plumber(h, "validate");
    expect(v.code).toBe(0);
    expect(v.stdout).toContain(`✓ ${h.app}: 2 objects at ${rev.slice(0, 12)}`);

    const p1 = await plumber(h, "plan");
    expect(p1.code).toBe(2);
    expect(p1.stdout).toContain(`+++ merged/ConfigMap/${h.namespace}/a`);
    expect(p1.stdout).toContain("2 to create");
    expect(p1.stdout).not.toContain("hunter2-very-secret");

    const a = await plumber(h, "apply", "--once");
    expect(a.code).toBe(0);
    expect((await getObject(h.kube, `/api/v1/namespaces/${h.namespace}/configmaps/a`))?.data).toEqual({ v: "1" });

    const p2 = await plumber(h, "plan");
    expect(p2.code).toBe(0);
    expect(p2.stdout).toContain("0 to create, 0 to configure, 0 to prune, 2 unchanged");

    const s = await plumber(h, "status", "--json");
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject([{ app: h.app, revision: rev.slice(0, 12), result: "Applied", phase: "Ready", drift: "none" }]);

    const hist = await plumber(h, "history", h.app, "--json");
    expect(JSON.parse(hist.stdout)).toMatchObject([{ revision: rev, result: "Applied" }]);
  });

  it("reports config errors with file:line:column and exits 1", async () => {
    const h = await harness({ "a.yaml": configMap("a", { v: "1" }) });
    open.push(h);
    const { writeFile, readFile } = await import("node:fs/promises");
    const text = await readFile(h.configFile, "utf8");
    await writeFile(h.configFile, text.replace("interval: 1s", "interval: 1s\n    color: blue"));
    const r = await plumber(h, "validate");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/plumber\.yaml:\d+:\d+: repos\[0\]\.color: /);
  });
});
