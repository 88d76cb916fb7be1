// The API server misbehaving under a running `plumber run` (a real child process, the built CLI,
// on a control plane of this file's own so that killing its apiserver disturbs no other test):
// 1. kube-apiserver SIGKILLed in the middle of a 500-object apply and restarted on the same etcd:
//    the same plumber process converges, and a later commit dropping the objects prunes them all.
// 2. A 429/503 storm from a TLS proxy in front of the apiserver: plumber applies the revision once
//    the storm passes, never records a half-applied revision as Applied, and waits the server's
//    Retry-After before asking again.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, request as httpsRequest, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { KubeClient, loadKubeConfig } from "../../src/kube/client.js";
import { startControlPlane, type ControlPlane } from "../../src/local/controlplane.js";
import type { TestRepo } from "../bed/testrepo.js";
import { PlumberProcess } from "../bed/plumber.js";
import { StateStore, type AppState } from "../../src/state/store.js";
import { newTestRepo, tempDir, testEnv, uniqueName } from "../setup/env.js";

const execFileP = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const cm = (name: string, data: Record<string, string>) => stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data });

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 200, context?: () => string, alive?: () => boolean): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    if (alive && !alive()) throw new Error(`plumber exited while waiting for ${what}${context ? `\n${context()}` : ""}`);
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ""}${context ? `\n${context()}` : ""}`);
    }
    await sleep(everyMs);
  }
}

interface App {
  repo: TestRepo;
  app: string;
  namespace: string;
  stateNamespace: string;
  dir: string;
  configFile: string;
}

describe("kube-apiserver faults under plumber run", () => {
  const env = testEnv();
  let cp: ControlPlane;
  let kube: KubeClient;
  const running: PlumberProcess[] = [];

  beforeAll(async () => {
    cp = await startControlPlane({ binDir: env.binDir });
    kube = await KubeClient.create(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }));
  }, 120_000);

  afterAll(async () => {
    for (const p of running) await p.kill();
    kube?.close();
    await cp?.stop();
  });

  const labelled = async (a: App): Promise<string[]> => {
    const res = await kube.request<{ items: { metadata: { name: string } }[] }>({
      method: "GET",
      path: `/api/v1/namespaces/${a.namespace}/configmaps`,
      query: { labelSelector: `plumber.dev/app=${a.app}` },
      accept: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
      list: true,
    });
    return res.body.items.map((i) => i.metadata.name).sort();
  };

  // Every ConfigMap in the namespace, labelled or not: an orphan that lost its label still counts.
  const allConfigMaps = async (a: App): Promise<string[]> => {
    const res = await kube.request<{ items: { metadata: { name: string } }[] }>({
      method: "GET",
      path: `/api/v1/namespaces/${a.namespace}/configmaps`,
      accept: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
      list: true,
    });
    return res.body.items.map((i) => i.metadata.name).filter((n) => n !== "kube-root-ca.crt").sort();
  };

  const state = (a: App): Promise<AppState | undefined> => new StateStore(kube, a.stateNamespace).load(a.app);

  const appliedAt = async (a: App, revision: string): Promise<AppState | undefined> => {
    const s = await state(a);
    return s?.revision === revision && s.lastResult === "Applied" ? s : undefined;
  };

  async function newApp(prefix: string, clusterKubeconfig: string): Promise<App> {
    const repo = await newTestRepo(prefix);
    await repo.commit({ "base.yaml": cm("base", { v: "1" }) }, "initial");
    const app = uniqueName(prefix).slice(0, 40).replace(/-+$/, "");
    const namespace = uniqueName(`${prefix}-ns`);
    const stateNamespace = uniqueName(`${prefix}-state`);
    await kube.request({ method: "POST", path: "/api/v1/namespaces", body: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }) });
    const dir = await tempDir(prefix);
    await writeFile(join(dir, "token"), env.gitToken);
    const configFile = join(dir, "plumber.yaml");
    await writeFile(
      configFile,
      stringify({
        clusters: [{ name: "local", kubeconfig: clusterKubeconfig }],
        repos: [{ name: "plumbing", url: env.gitUrl(repo.name), interval: "1s", auth: { tokenFile: "token" } }],
        apps: [{ name: app, repo: "plumbing", branch: "main", path: ".", cluster: "local", namespace }],
        state: { namespace: stateNamespace },
      }),
    );
    return { repo, app, namespace, stateNamespace, dir, configFile };
  }

  const run = (a: App, kubeconfig: string): PlumberProcess => {
    const p = PlumberProcess.start(["--config", a.configFile, "--cache-dir", join(a.dir, "cache"), "run", "--metrics-addr", "127.0.0.1:0", "--no-leader-elect"], { KUBECONFIG: kubeconfig });
    running.push(p);
    return p;
  };

  it("converges after kube-apiserver is SIGKILLed mid-apply and restarted on the same etcd, then prunes every object", async () => {
    const OBJECTS = 500;
    const a = await newApp("apikill", cp.kubeconfigPath);
    const p = run(a, cp.kubeconfigPath);
    await until("the initial revision applied", async () => appliedAt(a, await a.repo.head("main")), 60_000, 200, () => p.tail(), () => p.running);

    const bulk: Record<string, string> = {};
    const names: string[] = ["base"];
    for (let i = 0; i < OBJECTS; i++) {
      bulk[`bulk/cm-${String(i).padStart(4, "0")}.yaml`] = cm(`bulk-${i}`, { i: String(i) });
      names.push(`bulk-${i}`);
    }
    names.sort();
    await a.repo.commit(bulk, `add ${OBJECTS} objects`);
    const head = await a.repo.head("main");

    // Kill once some but not all of the objects exist: the apply is mid-write.
    const seen = await until(
      "the apply to be mid-write",
      async () => {
        const n = (await labelled(a)).length - 1;
        return n >= 1 ? n : undefined;
      },
      120_000,
      20,
    );
    expect(seen, "all objects were written before the kill could land").toBeLessThan(OBJECTS);
    const linesAtKill = p.lines.length;
    await cp.killApiserver();
    console.log(`kube-apiserver SIGKILLed with ${seen} of ${OBJECTS} objects seen`);
    // Down until plumber has noticed (a warning or worse: a failed request or cycle), not for a fixed time.
    const complained = () => p.lines.slice(linesAtKill).filter((l) => (l.level ?? 0) >= 40);
    await until("plumber to notice the apiserver is gone", async () => (complained().length > 0 ? true : undefined), 120_000, 100, () => p.tail(), () => p.running);
    await cp.startApiserver();
    // Not asserted: plumber's next cycle may already be writing again by the time this LIST runs.
    const afterRestart = (await labelled(a)).length - 1;

    const s = await until("the revision applied after the restart", () => appliedAt(a, head), 180_000, 500, () => p.tail(), () => p.running);
    expect(p.running).toBe(true);
    expect(await labelled(a)).toEqual(names);
    expect(s.inventory.length).toBe(OBJECTS + 1);
    const complaints = complained();
    console.log(`plumber logged ${complaints.length} warnings/errors after the kill, e.g. ${JSON.stringify(complaints[0] ?? {}).slice(0, 300)}`);

    const dropped: Record<string, null> = Object.fromEntries(Object.keys(bulk).map((k) => [k, null]));
    await a.repo.commit(dropped, `drop the ${OBJECTS} objects`);
    const head2 = await a.repo.head("main");
    const s2 = await until("the drop applied", () => appliedAt(a, head2), 180_000, 500, () => p.tail(), () => p.running);
    expect(await allConfigMaps(a)).toEqual(["base"]);
    expect(s2.inventory.map((e) => e.key)).toEqual([`/ConfigMap/${a.namespace}/base`]);
    expect(p.running).toBe(true);
    console.log(`after restart: ${afterRestart} objects present, converged to ${OBJECTS}, then all pruned; same plumber pid ${p.pid}`);
    await p.kill();
  }, 600_000);

  it("rides out a 429/503 storm: applies fully after it, never records a half-applied revision, waits Retry-After", async () => {
    const OBJECTS = 60;
    const dir = await tempDir("storm-proxy");
    const key = join(dir, "proxy.key");
    const crt = join(dir, "proxy.crt");
    await execFileP("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "1",
      "-subj", "/CN=plumber-storm-proxy",
      "-addext", "subjectAltName=IP:127.0.0.1",
      "-addext", "basicConstraints=critical,CA:TRUE",
    ]);
    const proxyCa = await readFile(crt, "utf8");

    interface Logged { t: number; id: string; method: string; url: string; status: number }
    const log: Logged[] = [];
    let storm = false;
    let rejected = 0;
    const upstream = new URL(cp.server);
    const proxy: Server = createServer({ key: await readFile(key), cert: proxyCa }, (req, res) => {
      const t = Date.now();
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        // A retry is the same method, URL and body: that is what identifies "the same request".
        const id = `${req.method} ${req.url} ${createHash("sha256").update(body).digest("hex")}`;
        const entry: Logged = { t, id, method: req.method ?? "", url: req.url ?? "", status: 0 };
        log.push(entry);
        if (storm && !String(req.url).includes("watch=") && Math.random() < 0.5) {
          rejected++;
          entry.status = rejected % 2 ? 429 : 503;
          res.writeHead(entry.status, { "Retry-After": "1", "Content-Type": "application/json" });
          res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason: entry.status === 429 ? "TooManyRequests" : "ServiceUnavailable", code: entry.status }));
          return;
        }
        const up = httpsRequest(
          { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host }, ca: cp.caPem },
          (ur) => {
            entry.status = ur.statusCode ?? 0;
            res.writeHead(ur.statusCode ?? 502, ur.headers);
            ur.pipe(res);
          },
        );
        up.on("error", (e) => {
          entry.status = 502;
          if (!res.headersSent) res.writeHead(502);
          res.end(String(e.message));
        });
        up.end(body);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()));
    try {
      const proxyUrl = `https://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const proxyKubeconfig = join(dir, "kubeconfig");
      await writeFile(
        proxyKubeconfig,
        stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "storm", cluster: { server: proxyUrl, "certificate-authority-data": Buffer.from(proxyCa).toString("base64") } }],
          users: [{ name: "storm", user: { token: cp.token } }],
          contexts: [{ name: "storm", context: { cluster: "storm", user: "storm", namespace: "default" } }],
          "current-context": "storm",
        }),
        { mode: 0o600 },
      );

      const a = await newApp("storm", proxyKubeconfig);
      const p = run(a, proxyKubeconfig);
      await until("the initial revision applied", async () => appliedAt(a, await a.repo.head("main")), 60_000, 200, () => p.tail(), () => p.running);

      const bulk: Record<string, string> = {};
      const names: string[] = ["base"];
      for (let i = 0; i < OBJECTS; i++) {
        bulk[`bulk/cm-${String(i).padStart(3, "0")}.yaml`] = cm(`storm-${i}`, { i: String(i) });
        names.push(`storm-${i}`);
      }
      names.sort();

      // The test's own reads go straight to the apiserver, not through the storm. Whenever the
      // state says the revision is Applied, every object of it must already exist.
      let watching = true;
      const halfApplied: string[] = [];
      let head = "";
      const watcher = (async () => {
        while (watching) {
          try {
            const s = head ? await appliedAt(a, head) : undefined;
            if (s) {
              const have = await labelled(a);
              if (have.length !== names.length) halfApplied.push(`Applied ${head} with ${have.length} of ${names.length} objects`);
            }
            if (head && s === undefined) {
              const hist = (await state(a))?.history.find((h) => h.revision === head && h.result === "Applied");
              if (hist && (await labelled(a)).length !== names.length) halfApplied.push(`history records ${head} Applied while incomplete`);
            }
          } catch {
            // a read failing now and then is not what this test is about
          }
          await sleep(100);
        }
      })();

      storm = true;
      const stormFrom = log.length;
      await a.repo.commit(bulk, `add ${OBJECTS} objects`);
      head = await a.repo.head("main");
      // Hold the storm until plumber has been turned away many times, writes included.
      await until(
        "the storm to hit plumber's writes",
        async () => {
          const hits = log.slice(stormFrom).filter((l) => l.status === 429 || l.status === 503);
          return hits.length >= 30 && hits.some((l) => l.method !== "GET") ? true : undefined;
        },
        120_000,
        100,
      );
      // ...and keep it up for a few more rounds of plumber's retries.
      const held = log.filter((l) => l.status === 429 || l.status === 503).length;
      await until("more turned-away requests", async () => (log.filter((l) => l.status === 429 || l.status === 503).length >= held + 20 ? true : undefined), 120_000, 100);
      storm = false;
      const stormedAt = Date.now();

      const s = await until("the revision applied after the storm", () => appliedAt(a, head), 120_000, 300, () => p.tail(), () => p.running);
      watching = false;
      await watcher;
      expect(p.running).toBe(true);
      expect(await labelled(a)).toEqual(names);
      expect(s.inventory.length).toBe(OBJECTS + 1);
      expect(halfApplied).toEqual([]);

      // Retry-After: 1 — no retry of a turned-away request sooner than ~1 s after it.
      const SLACK_MS = 200;
      const early: string[] = [];
      let retried = 0;
      for (let i = 0; i < log.length; i++) {
        const l = log[i]!;
        if (l.status !== 429 && l.status !== 503) continue;
        const next = log.slice(i + 1).find((m) => m.id === l.id);
        if (!next) continue;
        // An identical GET may be a later poll or a concurrent discovery lookup rather than a
        // retry: GETs count only for namespaced objects and only within 1.5 s. A write with the
        // same body is unmistakably the same request retried.
        if (l.method === "GET" && (next.t - l.t > 1500 || !l.url.includes("/namespaces/"))) continue;
        retried++;
        if (next.t - l.t < 1000 - SLACK_MS) early.push(`${l.id.slice(0, 120)}: ${l.status} then again after ${next.t - l.t} ms`);
      }
      const rejectedWrites = log.filter((l) => (l.status === 429 || l.status === 503) && l.method !== "GET").length;
      console.log(
        `storm: ${rejected} requests turned away (${rejectedWrites} writes), ${retried} retried, ${early.length} early; applied ${Math.round((Date.now() - stormedAt) / 1000)}s after the storm; ${log.length} requests through the proxy`,
      );
      // The storm turned writes away, not just reads: what "never half-applied" is about.
      expect(rejectedWrites).toBeGreaterThan(0);
      expect(retried).toBeGreaterThan(0);
      expect(early).toEqual([]);
    } finally {
      await new Promise<void>((r) => {
        proxy.close(() => r());
        proxy.closeAllConnections();
      });
    }
  }, 600_000);
});
