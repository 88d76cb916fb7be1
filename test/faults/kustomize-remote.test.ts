// kustomize stays offline. A loopback "metadata service" counts every request it gets:
// 1. remote references in every field that takes a path are refused with file:line before
//    kustomize runs (through the whole reconcile path, real git server and apiserver);
// 2. a kustomization that gets past plumber's check (handed to the runner directly) still cannot
//    reach the server: the network namespace has no route to it, and without a namespace the
//    refusing proxy catches what is not loopback. A control run with the network allowed does
//    reach it, so the zero counts mean something.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { Closure } from "../../src/kustomize/closure.js";
import { BUILD_FLAGS, detectIsolation, proxyStats, runIsolated } from "../../src/kustomize/offline.js";
import { buildClosure, kustomizeStats } from "../../src/kustomize/render.js";
import { testEnv } from "../setup/env.js";
import { harness, type Harness } from "../integration/support.js";

let server: Server;
let port = 0;
const seen: string[] = [];
const open: Harness[] = [];
const kustomize = () => `${testEnv().binDir}/kustomize`;

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(req.url?.endsWith(".yaml") ? stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "fetched" }, data: { from: "network" } }) : "aws_secret_access_key=EXFILTRATED\n");
  });
  await new Promise<void>((r) => server.listen(0, "0.0.0.0", r));
  port = (server.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
// Each test judges only the requests made while it ran.
beforeEach(() => {
  seen.length = 0;
});
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

const at = (host = "127.0.0.1") => `http://${host}:${port}`;

describe("remote references in a kustomization", () => {
  it("are refused in every field that takes a path, with file:line, before kustomize runs", async () => {
    const u = at();
    const k = [
      /* 1 */ "resources:",
      /* 2 */ "  - cm.yaml",
      /* 3 */ "  - ../base",
      /* 4 */ `  - ${u}/r.yaml`,
      /* 5 */ `bases: [${u}/org/repo.git]`,
      /* 6 */ `components: ["${u}/component?ref=main"]`,
      /* 7 */ `crds: [${u}/crd.yaml]`,
      /* 8 */ `configurations: [${u}/c.yaml]`,
      /* 9 */ `openapi: {path: "${u}/schema.json"}`,
      /* 10 */ `patchesStrategicMerge: [${u}/smp.yaml]`,
      /* 11 */ `patches: [{path: "${u}/p.yaml"}]`,
      /* 12 */ `patchesJson6902: [{path: "${u}/j.yaml", target: {kind: ConfigMap}}]`,
      /* 13 */ `replacements: [{path: "${u}/r.yaml"}]`,
      /* 14 */ "configMapGenerator:",
      /* 15 */ `  - {name: creds, files: ["creds=${u}/latest/meta-data/iam"]}`,
      /* 16 */ `  - {name: envs, envs: ["${u}/e.env"]}`,
      /* 17 */ `secretGenerator: [{name: s, env: "${u}/s.env"}]`,
      /* 18 */ `helmCharts: [{name: x, repo: "${u}/charts", valuesFile: "${u}/values.yaml", additionalValuesFiles: ["${u}/more.yaml"]}]`,
      /* 19 */ `generators: ["${u}/gen.yaml"]`,
      /* 20 */ "transformers:",
      /* 21 */ "  - t.yaml",
      /* 22 */ "  - |",
      /* 23 */ "    apiVersion: builtin",
      /* 24 */ "    kind: PatchTransformer",
      /* 25 */ "    metadata: {name: inline}",
      /* 26 */ `    path: ${u}/inline.yaml`,
      /* 27 */ `validators: ["${u}/v.yaml"]`,
    ].join("\n");
    const h = await harness(
      {
        "app/kustomization.yaml": k + "\n",
        "app/cm.yaml": stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "local" }, data: { a: "1" } }),
        "app/t.yaml": stringify({ apiVersion: "builtin", kind: "ReplacementTransformer", metadata: { name: "r" }, replacements: [{ path: `${u}/repl.yaml` }] }),
        "base/kustomization.yaml": `resources:\n  - git::${u}/org/repo//dir\n`,
      },
      { path: "app", top: { kustomize: { binary: kustomize() } } },
    );
    open.push(h);
    const runs0 = kustomizeStats.runs;
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind !== "failed") return;
    expect(res.permanent).toBe(true);
    const named = res.message.split("\n").map((l) => l.replace(/: (remote |helm charts ).*$/, ""));
    expect(named).toEqual([
      "base/kustomization.yaml:2: resources[0]", // the base is read where resources[1] names it
      "app/kustomization.yaml:4: resources[2]",
      "app/kustomization.yaml:5: bases[0]",
      "app/kustomization.yaml:6: components[0]",
      "app/kustomization.yaml:7: crds[0]",
      "app/kustomization.yaml:8: configurations[0]",
      "app/kustomization.yaml:9: openapi.path",
      "app/kustomization.yaml:10: patchesStrategicMerge[0]",
      "app/kustomization.yaml:11: patches[0].path",
      "app/kustomization.yaml:12: patchesJson6902[0].path",
      "app/kustomization.yaml:13: replacements[0].path",
      "app/kustomization.yaml:15: configMapGenerator[0].files[0]",
      "app/kustomization.yaml:16: configMapGenerator[1].envs[0]",
      "app/kustomization.yaml:17: secretGenerator[0].env",
      "app/kustomization.yaml:18: helmCharts[0].repo",
      "app/kustomization.yaml:18: helmCharts[0].valuesFile",
      "app/kustomization.yaml:18: helmCharts[0].additionalValuesFiles[0]",
      "app/kustomization.yaml:18: helmCharts",
      "app/kustomization.yaml:19: generators[0]",
      "app/t.yaml:6: replacements[0].path",
      "app/kustomization.yaml:22: transformers[1] (inline).path",
      "app/kustomization.yaml:27: validators[0]",
    ]);
    expect(res.message).toContain(`app/kustomization.yaml:15: configMapGenerator[0].files[0]: remote file "creds=${u}/latest/meta-data/iam" is refused`);
    expect(kustomizeStats.runs).toBe(runs0);
    expect(seen).toEqual([]);
  });
});

/** A kustomization that reaches for the server in three ways kustomize supports. */
function hostile(host: string): Closure {
  const u = at(host);
  const files = new Map<string, Buffer>([
    ["app/kustomization.yaml", Buffer.from(stringify({ resources: [`${u}/remote.yaml`], configMapGenerator: [{ name: "creds", files: [`creds=${u}/latest/meta-data`] }] }))],
  ]);
  return { files, kustomizations: ["app/kustomization.yaml"], bytes: 0 };
}

function otherAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return undefined;
}

describe("kustomize run by plumber", () => {
  it("cannot reach a loopback server even when plumber's check is bypassed", async () => {
    const iso = await detectIsolation(kustomize());
    // this machine runs as root with unshare: the strongest mode must be in force
    expect(["netns", "userns-netns"]).toContain(iso.mode);
    await expect(buildClosure(hostile("127.0.0.1"), "app", "app/kustomization.yaml", { binary: kustomize() })).rejects.toThrow(/kustomize build failed/);
    expect(seen).toEqual([]);

    // control: with the network allowed, the same build does reach the server
    const out = await buildClosure(hostile("127.0.0.1"), "app", "app/kustomization.yaml", { binary: kustomize(), allowRemoteBases: true });
    expect(out).toContain("EXFILTRATED");
    expect(seen.length).toBeGreaterThan(0);
  });

  it("without a network namespace, the refusing proxy takes every non-loopback request", async (ctx) => {
    const host = otherAddress();
    if (!host) return ctx.skip("no non-loopback interface to test with");
    const dir = await mkdtemp(join(tmpdir(), "plumber-kustomize-proxy-"));
    try {
      await mkdir(join(dir, "app"));
      await mkdir(join(dir, "home"));
      for (const [p, b] of hostile(host).files) await writeFile(join(dir, p), b);
      const refused0 = proxyStats.refused;
      const res = await runIsolated({
        binary: kustomize(),
        args: ["build", ...BUILD_FLAGS, join(dir, "app")],
        cwd: join(dir, "app"),
        home: join(dir, "home"),
        isolation: { mode: "proxy-only", prefix: [], description: "forced for the test" },
        timeoutMs: 60_000,
        maxOutputBytes: 1 << 20,
      });
      expect(res.kind).toBe("failed");
      expect(seen).toEqual([]);
      expect(proxyStats.refused).toBeGreaterThan(refused0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
