// Apps cannot touch each other or plumber's own state (real apiserver, real git server, the
// reconciler): a manifest naming plumber's control record cannot approve a revision, one naming
// its state record cannot make an app record a revision, and an object another app owns is
// refused with both names — no owner flip, no prune by the loser — unless the manifest opts in
// to adoption.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadConfig } from "../../src/config/load.js";
import { silentLogger } from "../../src/log.js";
import { RepoPoller } from "../../src/reconcile/poller.js";
import { buildRuntime } from "../../src/reconcile/runtime.js";
import { chunkObjectName } from "../../src/state/chunks.js";
import { controlObjectName } from "../../src/state/control.js";
import { StateStore, stateObjectName } from "../../src/state/store.js";
import { fleet, type Fleet } from "./fleet-support.js";
import { configMap, getObject } from "./support.js";

const open: Fleet[] = [];
afterEach(() => {
  for (const f of open.splice(0)) f.close();
});

async function start(files: Record<string, string>, apps: Record<string, Record<string, unknown>>): Promise<Fleet> {
  const f = await fleet(files, apps);
  open.push(f);
  return f;
}

type Cm = { metadata: { resourceVersion: string; labels?: Record<string, string> }; data?: Record<string, string> };
const cmPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;
const message = (r: unknown) => (r && typeof r === "object" && "message" in r ? String((r as { message: string }).message) : JSON.stringify(r));

describe("plumber's own state is out of every app's reach", () => {
  it("a ConfigMap plumber-control-<app> in the state namespace cannot approve the app's unreviewed revision", async () => {
    const f = await start({ "prod/a.yaml": configMap("a", { v: "1" }) }, { prod: { path: "prod", approval: "manual" }, evil: { path: "evil", branch: "evil" } });
    const prod = f.apps.prod!;
    const unreviewed = await f.repo.head("main");
    // Another app, on a branch of its own, ships the approval plumber approve would write.
    const control = stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: controlObjectName(prod.name), namespace: f.stateNamespace }, data: { approvedRevision: unreviewed } });
    await f.repo.commit({ "evil/control.yaml": control }, "approve prod behind its back", { branch: "evil" });

    for (let i = 0; i < 3; i++) {
      const res = await f.cycle();
      expect(res.prod?.kind).toBe("held");
      // Refused once, then held at the failed revision (no retry until the branch moves).
      expect(res.evil?.kind).toBe(i === 0 ? "failed" : "held");
      expect(message(res.evil)).toContain(`state namespace "${f.stateNamespace}"`);
    }
    expect((await getObject<Cm>(f.kube, cmPath(f.stateNamespace, controlObjectName(prod.name))))?.data?.approvedRevision).toBeUndefined();
    expect(await getObject(f.kube, cmPath(prod.namespace, "a"))).toBeUndefined();
    expect((await f.state("prod"))?.phase).toBe("WaitingApproval");
  });

  it("a ConfigMap plumber-app-<app> cannot make the app record a revision, and the state Namespace itself is refused", async () => {
    const f = await start({ "prod/a.yaml": configMap("a", { v: "1" }) }, { prod: { path: "prod", approval: "manual" }, evil: { path: "evil", branch: "evil" } });
    const prod = f.apps.prod!;
    const neverApplied = await f.repo.head("main");
    const fake = stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: stateObjectName(prod.name), namespace: f.stateNamespace },
      data: { app: prod.name, revision: neverApplied, goodRevision: neverApplied, phase: "Ready", lastResult: "Applied" },
    });
    const ns = stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: f.stateNamespace } });
    await f.repo.commit({ "evil/state.yaml": fake, "evil/ns.yaml": ns }, "record a revision for prod", { branch: "evil" });

    const res = await f.cycle();
    expect(res.evil?.kind).toBe("failed");
    expect(message(res.evil)).toContain(`Namespace ${f.stateNamespace} is plumber's state namespace`);
    expect(message(res.evil)).toContain(`ConfigMap ${f.stateNamespace}/${stateObjectName(prod.name)}`);

    // A restarted plumber reads prod's state from the cluster: still nothing recorded as deployed.
    f.rt.close();
    const rt = await buildRuntime(await loadConfig(f.configFile), { log: silentLogger(), cacheDir: join(f.configFile, "..", "cache2") });
    try {
      const poller = new RepoPoller(rt.repos.get("plumbing")!, rt.apps, silentLogger());
      const again = await poller.cycle();
      expect(again.apps.find((a) => a.app === prod.name)?.result.kind).toBe("held");
      const state = await new StateStore(f.kube, f.stateNamespace).load(prod.name);
      expect(state?.revision).toBeUndefined();
      expect(state?.phase).toBe("WaitingApproval");
      expect(await getObject(f.kube, cmPath(prod.namespace, "a"))).toBeUndefined();
    } finally {
      rt.close();
    }
  });

  it("a ConfigMap named like a chunk of another app's state is refused in any namespace", async () => {
    const f = await start({ "prod/a.yaml": configMap("a", { v: "1" }) }, { prod: { path: "prod" }, evil: { path: "evil", branch: "evil" } });
    const prod = f.apps.prod!;
    const evil = f.apps.evil!;
    const chunk = chunkObjectName(prod.name, "0123456789abcdef", 0);
    await f.repo.commit({ "evil/chunk.yaml": configMap(chunk, { generation: "0123456789abcdef", index: "0" }) }, "a fake state chunk", { branch: "evil" });

    const res = await f.cycle();
    expect(res.prod?.kind).toBe("applied");
    expect(res.evil?.kind).toBe("failed");
    expect(message(res.evil)).toContain(`ConfigMap ${evil.namespace}/${chunk} is named like one of plumber's own state`);
    expect(await getObject(f.kube, cmPath(evil.namespace, chunk))).toBeUndefined();
  });

  it("an app whose targetNamespace is the state namespace applies nothing", async () => {
    const f = await start({ "x/a.yaml": configMap("a", { v: "1" }) }, { x: { path: "x" } });
    // Rewrite the config: the state namespace becomes the app's target.
    const { readFile, writeFile } = await import("node:fs/promises");
    const text = await readFile(f.configFile, "utf8");
    await writeFile(f.configFile, text.replace(/path: x\n/, `path: x\n    targetNamespace: ${f.stateNamespace}\n`));
    const rt = await buildRuntime(await loadConfig(f.configFile), { log: silentLogger(), cacheDir: join(f.configFile, "..", "cache2") });
    try {
      const res = await new RepoPoller(rt.repos.get("plumbing")!, rt.apps, silentLogger()).cycle();
      const x = res.apps[0]?.result;
      expect(x?.kind).toBe("failed");
      expect(message(x)).toContain(`state namespace "${f.stateNamespace}"`);
      expect(await getObject(f.kube, cmPath(f.stateNamespace, "a"))).toBeUndefined();
    } finally {
      rt.close();
    }
  });
});

describe("two apps claiming one object", () => {
  it("the second is refused naming both apps; the first keeps it with no write over several cycles; the second dropping it does not prune it", async () => {
    const f = await start({ "a/shared.yaml": configMap("shared", { owner: "a" }), "b/base.yaml": configMap("base", { v: "1" }) }, { a: { path: "a" }, b: { path: "b" } });
    const a = f.apps.a!;
    const b = f.apps.b!;
    // a has the object before b claims it, so b comes second whatever the order the repo's apps run
    // in (two first deploys racing for it: ownership-claims.test.ts).
    expect((await f.cycle()).a?.kind).toBe("applied");
    await f.repo.commit({ "b/shared.yaml": configMap("shared", { owner: "b" }, a.namespace), "b/own.yaml": configMap("own", { v: "1" }) }, "b claims a's object");

    const first = await f.cycle();
    expect(first.a?.kind).not.toBe("failed");
    expect(first.b?.kind).toBe("failed");
    expect(message(first.b)).toContain(a.name);
    expect(message(first.b)).toContain(b.name);
    const claimed = await getObject<Cm>(f.kube, cmPath(a.namespace, "shared"));
    expect(claimed?.metadata.labels?.["plumber.dev/app"]).toBe(a.name);
    expect(claimed?.data).toEqual({ owner: "a" });

    for (let i = 0; i < 4; i++) {
      const res = await f.cycle();
      expect(res.b?.kind).not.toBe("applied");
      const now = await getObject<Cm>(f.kube, cmPath(a.namespace, "shared"));
      // Not one write: the owner never flips.
      expect(now?.metadata.resourceVersion).toBe(claimed?.metadata.resourceVersion);
    }
    expect(await getObject(f.kube, cmPath(b.namespace, "own"))).toBeUndefined();

    await f.repo.commit({ "b/shared.yaml": null }, "b lets go");
    const after = await f.cycle();
    expect(after.b?.kind).toBe("applied");
    expect(await getObject(f.kube, cmPath(b.namespace, "own"))).toBeDefined();
    const kept = await getObject<Cm>(f.kube, cmPath(a.namespace, "shared"));
    expect(kept?.metadata.resourceVersion).toBe(claimed?.metadata.resourceVersion);
    expect(kept?.metadata.labels?.["plumber.dev/app"]).toBe(a.name);
  });

  it("plumber.dev/adopt: enabled lets the second app take it explicitly; the first neither takes it back nor prunes it", async () => {
    // b reconciles first in each cycle, so it adopts while a still ships the object.
    const f = await start({ "a/shared.yaml": configMap("shared", { owner: "a" }), "a/other.yaml": configMap("other", { v: "1" }) }, { b: { path: "b", branch: "b" }, a: { path: "a" } });
    const a = f.apps.a!;
    const b = f.apps.b!;
    expect((await f.cycle()).a?.kind).toBe("applied");
    const adopt = stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "shared", namespace: a.namespace, annotations: { "plumber.dev/adopt": "enabled" } }, data: { owner: "b" } });
    await f.repo.commit({ "b/shared.yaml": adopt }, "b adopts", { branch: "b" });
    const res = await f.cycle();
    expect(res.b?.kind, message(res.b)).toBe("applied");
    const taken = await getObject<Cm>(f.kube, cmPath(a.namespace, "shared"));
    expect(taken?.metadata.labels?.["plumber.dev/app"]).toBe(b.name);
    expect(taken?.data).toEqual({ owner: "b" });

    // a still ships it, without the annotation: it does not take it back.
    for (let i = 0; i < 3; i++) await f.cycle();
    const later = await getObject<Cm>(f.kube, cmPath(a.namespace, "shared"));
    expect(later?.metadata.labels?.["plumber.dev/app"]).toBe(b.name);
    expect(later?.metadata.resourceVersion).toBe(taken?.metadata.resourceVersion);

    // a drops it: a's prune leaves an object carrying b's mark alone.
    await f.repo.commit({ "a/shared.yaml": null }, "a lets go");
    expect((await f.cycle()).a?.kind).toBe("applied");
    const kept = await getObject<Cm>(f.kube, cmPath(a.namespace, "shared"));
    expect(kept?.metadata.labels?.["plumber.dev/app"]).toBe(b.name);
    expect(kept?.metadata.resourceVersion).toBe(taken?.metadata.resourceVersion);
  });
});
