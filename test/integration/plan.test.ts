// `plumber plan` as users run it (the built CLI, real apiserver, real git server): the same
// request as an apply, with the writes left out. A first deploy that creates its own namespace
// plans every object; the app's namespace policy, plumber's reserved objects and the self-config
// check refuse in the plan exactly as they do at apply; server warnings show in plan, log, status.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { readTree } from "../../src/cli/demo-world.js";
import { findRepoRoot } from "../bed/paths.js";
import { testEnv, uniqueName } from "../setup/env.js";
import { configMap, getObject, harness, type AppOptions, type Harness } from "./support.js";

const MAIN = join(findRepoRoot(), "dist", "src", "cli", "main.js");

function plumber(h: Harness, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, "--config", h.configFile, "--cache-dir", h.cacheDir, "--log-level", "warn", ...args], { timeout: 90_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const open: Harness[] = [];
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f().catch(() => {});
  for (const h of open.splice(0)) h.close();
});

async function start(files: Record<string, string>, opts: AppOptions = {}): Promise<Harness> {
  const h = await harness(files, opts);
  open.push(h);
  return h;
}

describe("plumber plan", () => {
  it("on examples/demo-repo's nightly overlay against an empty cluster: exits 2 and lists every object, those in the new namespace as create with a note", async () => {
    const NS = "ci-plumbing";
    const h = await start(await readTree(join(findRepoRoot(), "examples", "demo-repo")), {
      path: "overlays/nightly",
      top: { kustomize: { binary: `${testEnv().binDir}/kustomize` } },
    });
    const nsPath = `/api/v1/namespaces/${NS}`;
    expect(await getObject(h.kube, nsPath)).toBeUndefined();
    cleanup.push(async () => {
      await h.kube.request({ method: "DELETE", path: nsPath });
    });

    const p = await plumber(h, "plan");
    expect(p.stderr).not.toMatch(/NotFound/);
    expect(p.code).toBe(2);
    expect(p.stdout).toContain(`+ create Namespace/${NS}`);
    const deferred = [`ConfigMap/${NS}/release-settings`, `Task/${NS}/git-clone`, `Task/${NS}/build-image`, `Pipeline/${NS}/release`, `Pipeline/${NS}/smoke-tests`, `ServiceAccount/${NS}/pipelinerun-cleaner`, `CronJob/${NS}/cleanup-pipelineruns`];
    for (const subject of deferred) {
      const line = p.stdout.split("\n").find((l) => l.startsWith(`+ create ${subject}`));
      expect(line, `${subject} in:\n${p.stdout}`).toBeDefined();
      // Not dry-run: its namespace does not exist yet; the engine says so.
      expect(line).toMatch(new RegExp(`\\(not dry-run: .*${NS}.*\\)$`));
    }
    expect(p.stdout).toMatch(/8 to create, 0 to configure, 0 to prune, 0 unchanged/);
    // A plan writes nothing.
    expect(await getObject(h.kube, nsPath)).toBeUndefined();

    const a = await plumber(h, "apply", "--once");
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const again = await plumber(h, "plan");
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).toContain("0 to create, 0 to configure, 0 to prune, 8 unchanged");
  });

  it("refuses what apply refuses: the namespace policy, plumber's state namespace, an invalid plumber config", async () => {
    const elsewhere = uniqueName("other");
    const h = await start({ "a.yaml": configMap("a", { v: "1" }), "b.yaml": configMap("b", { v: "1" }, elsewhere) });
    await h.reconfigure({ app: { allowedNamespaces: [h.namespace] } });
    const policy = await plumber(h, "plan");
    expect(policy.code).toBe(1);
    expect(policy.stdout).toMatch(/b\.yaml:\d+: metadata\.namespace: namespace "[^"]+" of ConfigMap b is not allowed/);

    await h.repo.commit({ "b.yaml": configMap("b", { v: "1" }, h.stateNamespace) }, "into the state namespace");
    await h.reconfigure({});
    const reserved = await plumber(h, "plan");
    expect(reserved.code).toBe(1);
    expect(reserved.stdout).toContain(`state namespace "${h.stateNamespace}"`);

    const selfConfig = stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "plumber-config", annotations: { "plumber.dev/config": "true" } },
      data: { "plumber.yaml": "clusters: not-a-list\n" },
    });
    await h.repo.commit({ "b.yaml": selfConfig }, "a broken plumber config");
    const guarded = await plumber(h, "plan");
    expect(guarded.code).toBe(1);
    expect(guarded.stdout).toMatch(/b\.yaml:1: .*plumber-config.*not a valid plumber config/);
    // None of it was written, and plumber's own state was not touched by a plan.
    expect(await getObject(h.kube, `/api/v1/namespaces/${h.namespace}/configmaps/a`)).toBeUndefined();
    expect(await getObject(h.kube, `/api/v1/namespaces/${h.stateNamespace}`)).toBeUndefined();
  });

  it("server warnings (a deprecated API version) show in plan, in the apply log and in status", async () => {
    const group = `${uniqueName("warn")}.example.com`;
    const crd = {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: `gadgets.${group}` },
      spec: {
        group,
        scope: "Namespaced",
        names: { kind: "Gadget", plural: "gadgets", singular: "gadget", listKind: "GadgetList" },
        versions: [
          { name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } } },
          {
            name: "v1beta1",
            served: true,
            storage: false,
            deprecated: true,
            deprecationWarning: `${group}/v1beta1 Gadget is deprecated; use ${group}/v1`,
            schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
          },
        ],
      },
    };
    const gadget = stringify({ apiVersion: `${group}/v1beta1`, kind: "Gadget", metadata: { name: "g" }, spec: { size: 1 } });
    const h = await start({ "g.yaml": gadget });
    await h.kube.request({ method: "POST", path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body: JSON.stringify(crd) });
    cleanup.push(async () => {
      await h.kube.request({ method: "DELETE", path: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.${group}` });
    });
    await waitEstablished(h, `gadgets.${group}`);

    const p = await plumber(h, "plan");
    expect(p.code, p.stdout + p.stderr).toBe(2);
    expect(p.stdout).toContain(`! Gadget/${h.namespace}/g: warning: ${group}/v1beta1 Gadget is deprecated`);

    const a = await plumber(h, "--log-level", "info", "apply", "--once");
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(a.stdout + a.stderr).toContain(`${group}/v1beta1 Gadget is deprecated`);

    const s = await plumber(h, "status", "--json");
    expect(s.code).toBe(0);
    const rows = JSON.parse(s.stdout) as Record<string, string>[];
    expect(rows[0]?.warnings).toContain(`Gadget/${h.namespace}/g: ${group}/v1beta1 Gadget is deprecated`);
    const table = await plumber(h, "status");
    expect(table.stdout).toContain("WARNINGS");
  });
});

async function waitEstablished(h: Harness, name: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const crd = await getObject<{ status?: { conditions?: { type: string; status: string }[] } }>(h.kube, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    if (crd?.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`CRD ${name} not established`);
}
