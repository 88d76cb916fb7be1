// A field contested by another writer: a competitor in the test takes a field back with an Update
// as field manager "hpa-like" after every plumber cycle. plumber repairs the first drift at once,
// then backs off per object (2, 4, 8 … drift checks), names the manager in status, and starts
// over when git changes the object. Writes are counted by resourceVersion, not by time.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { statusCommand } from "../../src/cli/commands.js";
import type { CommandContext } from "../../src/cli/context.js";
import { loadConfig } from "../../src/config/load.js";
import type { KubeClient } from "../../src/kube/client.js";
import { silentLogger } from "../../src/log.js";
import { buildRuntime } from "../../src/reconcile/runtime.js";
import { parseContested } from "../../src/reconcile/contested.js";
import { Daemon } from "../../src/service/daemon.js";
import { Metrics } from "../bed/plumber.js";
import { stateObjectName } from "../../src/state/store.js";
import { configMap, harness, type Harness } from "./support.js";

interface Cm {
  metadata: { resourceVersion: string; managedFields?: Array<{ manager: string; operation: string; fieldsV1?: { "f:data"?: Record<string, unknown> } }> };
  data?: Record<string, string>;
}

const open: Harness[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

function cmPath(h: Harness, name: string): string {
  return `/api/v1/namespaces/${h.namespace}/configmaps/${name}`;
}

/** The competitor: an Update (PUT) as manager "hpa-like" setting data.v. Returns the new resourceVersion. */
async function contest(kube: KubeClient, path: string, value: string): Promise<string> {
  const live = (await kube.getOptional<Cm & Record<string, unknown>>(path)) as Cm & Record<string, unknown>;
  const next = { ...live, data: { ...(live.data ?? {}), v: value } };
  const res = await kube.request<Cm>({ method: "PUT", path, query: { fieldManager: "hpa-like" }, body: JSON.stringify(next) });
  return res.body.metadata.resourceVersion;
}

/** Who owns data.v now. */
function ownerOfV(obj: Cm): string[] {
  return (obj.metadata.managedFields ?? []).filter((m) => m.fieldsV1?.["f:data"]?.["f:v"] !== undefined).map((m) => m.manager);
}

describe("contested fields", () => {
  it("backs off per object while another manager keeps taking a field, names it, and starts over when git changes the object", async () => {
    const h = await harness({ "a.yaml": configMap("a", { v: "git" }), "b.yaml": configMap("b", { v: "git" }) });
    open.push(h);
    expect((await h.cycle()).kind).toBe("applied");
    const path = cmPath(h, "a");
    const state = () => h.kube.getOptional<Cm>(`/api/v1/namespaces/${h.stateNamespace}/configmaps/${stateObjectName(h.app)}`);

    // N cycles, the competitor taking data.v back before each one.
    const N = 16;
    const repairedAt: number[] = [];
    for (let i = 1; i <= N; i++) {
      const rv = await contest(h.kube, path, `hpa-${i}`);
      await h.cycle();
      const live = (await h.kube.getOptional<Cm>(path)) as Cm;
      if (live.metadata.resourceVersion !== rv) {
        // plumber wrote it: the value is git's and plumber's apply owns the field again.
        expect(live.data?.v).toBe("git");
        expect(ownerOfV(live)).toEqual(["plumber"]);
        repairedAt.push(i);
      } else expect(ownerOfV(live)).toEqual(["hpa-like"]);
    }
    // Every interval without a backoff (16 writes); with it: 1, 3, 7, 15.
    console.log(`plumber repaired the contested object at cycles ${repairedAt.join(", ")} of ${N}`);
    expect(repairedAt).toEqual([1, 3, 7, 15]);
    expect(repairedAt.length).toBeLessThanOrEqual(1 + Math.log2(N));

    // Status names the manager: the state's contested key (written when the set changed), the
    // live drift column and the contested column of `plumber status`.
    const rec = (await state()) as Cm;
    expect(parseContested(rec.data?.contested)).toEqual([{ object: `ConfigMap ${h.namespace}/a`, managers: ["hpa-like"] }]);
    const config = await loadConfig(h.configFile);
    const lines: string[] = [];
    const ctx: CommandContext = { config, log: silentLogger(), runtime: () => buildRuntime(config, { log: silentLogger(), cacheDir: join(h.dir, "status-cache") }) };
    await statusCommand(ctx, (l) => lines.push(l), [], true);
    const row = (JSON.parse(lines.join("\n")) as Record<string, string>[])[0];
    expect(row?.contested).toBe(`ConfigMap ${h.namespace}/a by hpa-like`);
    expect(row?.drift).toBe('1 drifted (contested by "hpa-like"), 0 missing');

    // Git changes the object: applied with the commit, and the backoff starts over — the next
    // take-back is repaired at once, not after 16 checks.
    await h.repo.commit({ "a.yaml": configMap("a", { v: "git2" }) }, "change a");
    expect((await h.cycle()).kind).toBe("applied");
    expect((await h.kube.getOptional<Cm>(path))?.data?.v).toBe("git2");
    const rv = await contest(h.kube, path, "hpa-again");
    expect((await h.cycle()).kind).toBe("repaired");
    const live = (await h.kube.getOptional<Cm>(path)) as Cm;
    expect(live.metadata.resourceVersion).not.toBe(rv);
    expect(live.data?.v).toBe("git2");

    // The competitor gives up: the object stays repaired, the contest is over and the key goes.
    expect((await h.cycle()).kind).toBe("unchanged");
    expect((await state())?.data?.contested).toBeUndefined();
    // b, never contested, was never written again.
    const b = (await h.kube.getOptional<Cm>(cmPath(h, "b"))) as Cm;
    expect(ownerOfV(b)).toEqual(["plumber"]);
    h.counts();
    for (let i = 0; i < 3; i++) expect((await h.cycle()).kind).toBe("unchanged");
    expect(h.counts().writes).toBe(0);
  });

  it("the daemon: a FieldsContested Event naming the manager, and plumber_contested_objects", async () => {
    const h = await harness({ "a.yaml": configMap("a", { v: "git" }) });
    open.push(h);
    h.rt.close();
    const stop = new AbortController();
    const daemon = new Daemon({
      configPath: h.configFile,
      config: await loadConfig(h.configFile),
      log: silentLogger(),
      cacheDir: join(h.dir, "daemon-cache"),
      metricsAddr: "127.0.0.1:0",
      leaderElection: { enabled: false },
      reloadPollMs: 60_000,
      stop: stop.signal,
    });
    const running = daemon.run();
    const path = cmPath(h, "a");
    const until = async <T>(what: string, fn: () => Promise<T | undefined | false>): Promise<T> => {
      const t = Date.now();
      for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() - t > 60_000) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // The competitor: takes the field back whenever plumber has it.
    let competing = true;
    const competitor = (async () => {
      while (competing) {
        const live = await h.kube.getOptional<Cm>(path);
        if (live && ownerOfV(live).includes("plumber")) await contest(h.kube, path, `hpa-${Date.now()}`).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const ev = await until("FieldsContested event", async () => {
        const list = await h.kube.request<{ items: Array<{ reason: string; type: string; note: string; regarding: { name: string } }> }>({
          method: "GET",
          path: `/apis/events.k8s.io/v1/namespaces/${h.stateNamespace}/events`,
        });
        return list.body.items.find((e) => e.regarding.name === stateObjectName(h.app) && e.reason === "FieldsContested");
      });
      expect(ev.type).toBe("Warning");
      expect(ev.note).toMatch(new RegExp(`^ConfigMap ${h.namespace}/a: fields plumber applied were taken back by "hpa-like" after its repair \\(once\\); plumber repairs it with backoff`));
      const m = await until("contested gauge", async () => {
        const x = new Metrics(await (await fetch(`http://${daemon.address}/metrics`)).text());
        return x.value("plumber_contested_objects", { app: h.app }) === 1 && (x.value("plumber_drift_repairs_deferred_total", { app: h.app }) ?? 0) >= 1 && x;
      });
      expect(m.value("plumber_contested_objects", { app: h.app })).toBe(1);
    } finally {
      competing = false;
      await competitor;
      stop.abort();
      expect(await running).toBe(0);
    }
  });
});
