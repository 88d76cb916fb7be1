// Kustomize rendering against the real kustomize binary, kube-apiserver and git server.
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { kustomizeStats } from "../../src/kustomize/render.js";
import { StateStore } from "../../src/state/store.js";
import { testEnv } from "../setup/env.js";
import { configMap, getObject, harness, type Harness } from "./support.js";

const open: Harness[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

async function start(files: Record<string, string>, opts?: Parameters<typeof harness>[1]): Promise<Harness> {
  const h = await harness(files, { ...opts, top: { kustomize: { binary: `${testEnv().binDir}/kustomize` } } });
  open.push(h);
  return h;
}

const cmPath = (h: Harness, name: string) => `/api/v1/namespaces/${h.namespace}/configmaps/${name}`;

const base = {
  "base/kustomization.yaml": stringify({ resources: ["settings.yaml"] }),
  "base/settings.yaml": configMap("settings", { channel: "stable", size: "1" }),
};

describe("kustomize apps", () => {
  it("renders an overlay with a base in a parent directory and applies it; steady state never re-renders", async () => {
    const h = await start(
      {
        ...base,
        "overlays/prod/kustomization.yaml": stringify({
          resources: ["../../base"],
          namePrefix: "prod-",
          commonLabels: { tier: "plumbing" },
          patches: [{ path: "patch.yaml" }],
        }),
        "overlays/prod/patch.yaml": configMap("settings", { channel: "nightly" }),
      },
      { path: "overlays/prod" },
    );
    const runs0 = kustomizeStats.runs;
    const res = await h.cycle();
    expect(res.kind).toBe("applied");
    expect(kustomizeStats.runs).toBe(runs0 + 1);
    const cm = await getObject(h.kube, cmPath(h, "prod-settings"));
    expect(cm?.data).toEqual({ channel: "nightly", size: "1" });
    expect(cm?.metadata.labels).toMatchObject({ tier: "plumbing" });

    for (let i = 0; i < 3; i++) expect((await h.cycle()).kind).toBe("unchanged");
    // drift repair renders the current revision again: from the cache, not with kustomize
    await h.kube.request({ method: "DELETE", path: cmPath(h, "prod-settings") });
    expect((await h.cycle()).kind).toBe("repaired");
    expect(kustomizeStats.runs).toBe(runs0 + 1);

    // a new commit renders once
    await h.repo.commit({ "overlays/prod/patch.yaml": configMap("settings", { channel: "beta" }) }, "beta");
    expect((await h.cycle()).kind).toBe("applied");
    expect((await getObject(h.kube, cmPath(h, "prod-settings")))?.data).toEqual({ channel: "beta", size: "1" });
    expect(kustomizeStats.runs).toBe(runs0 + 2);
    expect((await h.cycle()).kind).toBe("unchanged");
    expect(kustomizeStats.runs).toBe(runs0 + 2);
  });

  it("refuses a remote base, naming the kustomization file and the entry, and applies nothing", async () => {
    const h = await start(
      {
        ...base,
        "app/kustomization.yaml": stringify({ resources: ["../base"] }),
      },
      { path: "app" },
    );
    expect((await h.cycle()).kind).toBe("applied");
    const good = await h.repo.head("main");
    await h.repo.commit(
      {
        "base/settings.yaml": configMap("settings", { channel: "changed" }),
        "base/kustomization.yaml": stringify({ resources: ["settings.yaml", "https://github.com/example/plumbing//tasks?ref=v1"] }),
      },
      "remote base",
    );
    const runs0 = kustomizeStats.runs;
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind !== "failed") return;
    expect(res.permanent).toBe(true);
    expect(res.message).toContain("base/kustomization.yaml:3");
    expect(res.message).toContain('remote base "https://github.com/example/plumbing//tasks?ref=v1" is refused');
    expect(kustomizeStats.runs).toBe(runs0);
    expect((await getObject(h.kube, cmPath(h, "settings")))?.data).toEqual({ channel: "stable", size: "1" });
    const state = await new StateStore(h.kube, h.stateNamespace).load(h.app);
    expect(state?.revision).toBe(good);
    expect((await h.cycle()).kind).toBe("held");
  });

  it("reports a kustomize build error like a parse error: nothing applied", async () => {
    const h = await start(
      {
        "app/kustomization.yaml": stringify({ resources: ["cm.yaml"], patches: [{ path: "patch.yaml" }] }),
        "app/cm.yaml": configMap("settings", { channel: "stable" }),
        "app/patch.yaml": configMap("no-such-object", { channel: "x" }),
      },
      { path: "app" },
    );
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind !== "failed") return;
    expect(res.permanent).toBe(true);
    expect(res.message).toMatch(/^app\/kustomization\.yaml:1: kustomize build failed: .*no-such-object/);
    expect(res.message).not.toContain("plumber-kustomize-");
    expect(await getObject(h.kube, cmPath(h, "settings"))).toBeUndefined();
  });

  it("refuses one object twice in kustomize's output (kustomize sees two namespaces, plumber one) before any write, naming both lines", async () => {
    const h = await start({ ...base, "app/kustomization.yaml": stringify({ resources: ["../base"] }) }, { path: "app" });
    expect((await h.cycle()).kind).toBe("applied");
    // No namespace in one, the app's namespace in the other: distinct to kustomize, the same
    // object once plumber defaults the namespace.
    await h.repo.commit(
      {
        "app/kustomization.yaml": stringify({ resources: ["../base", "copy.yaml"] }),
        "app/copy.yaml": configMap("settings", { channel: "copy" }, h.namespace),
      },
      "duplicate through kustomize",
    );
    h.counts();
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind !== "failed") return;
    expect(res.permanent).toBe(true);
    const found = new RegExp(`^app/kustomization\\.yaml:(\\d+): metadata\\.name: duplicate object ConfigMap/${h.namespace}/settings: also defined at app/kustomization\\.yaml:(\\d+)$`).exec(res.message);
    expect(found, res.message).not.toBeNull();
    expect(found![1]).not.toBe(found![2]);
    expect(h.counts()).toMatchObject({ writes: 1, dryRuns: 0 }); // the status record, nothing else
    expect((await getObject(h.kube, cmPath(h, "settings")))?.data).toEqual({ channel: "stable", size: "1" });
  });

  it("names the entry of a file the kustomization reads that is not in the commit, without running kustomize", async () => {
    const h = await start({ "app/kustomization.yaml": stringify({ resources: ["missing.yaml"] }) }, { path: "app" });
    const runs0 = kustomizeStats.runs;
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind !== "failed") return;
    expect(res.permanent).toBe(true);
    expect(res.message).toBe('app/kustomization.yaml:2: resources[0]: "missing.yaml" does not exist in the commit (looked for "app/missing.yaml")');
    expect(kustomizeStats.runs).toBe(runs0);
  });
});
