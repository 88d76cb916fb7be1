// targetNamespace, allowedNamespaces and allowClusterScoped against the real kube-apiserver.
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { uniqueName } from "../setup/env.js";
import { configMap, getObject, harness, type Harness } from "./support.js";

const open: Harness[] = [];
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

async function start(files: Record<string, string>, opts?: Parameters<typeof harness>[1]): Promise<Harness> {
  const h = await harness(files, opts);
  open.push(h);
  return h;
}

const cm = (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;
const clusterRole = (name: string) => stringify({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name }, rules: [] });

describe("namespace policy", () => {
  it("targetNamespace forces every namespaced object into one namespace", async () => {
    const h = await start(
      { "a.yaml": configMap("a", { v: "1" }, "kube-public"), "b.yaml": configMap("b", { v: "1" }) },
      { app: { namespace: "elsewhere", targetNamespace: "placeholder" } },
    );
    await h.reconfigure({ app: { namespace: "elsewhere", targetNamespace: h.namespace } });
    expect((await h.cycle()).kind).toBe("applied");
    expect((await getObject(h.kube, cm(h.namespace, "a")))?.data).toEqual({ v: "1" });
    expect((await getObject(h.kube, cm(h.namespace, "b")))?.data).toEqual({ v: "1" });
    expect(await getObject(h.kube, cm("kube-public", "a"))).toBeUndefined();
  });

  it("an object outside allowedNamespaces fails the revision before any write, naming file:line and the namespace", async () => {
    const h = await start({ "ok.yaml": configMap("ok", { v: "1" }) }, { app: { allowedNamespaces: ["placeholder"] } });
    await h.reconfigure({ app: { allowedNamespaces: [h.namespace] } });
    expect((await h.cycle()).kind).toBe("applied");
    await h.repo.commit({ "ok.yaml": configMap("ok", { v: "2" }), "multi.yaml": configMap("fine", { v: "1" }) + "---\n" + configMap("bad", { v: "1" }, "kube-system") }, "one object outside");
    h.counts();
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind !== "failed") return;
    expect(res.permanent).toBe(true);
    expect(res.message).toContain('multi.yaml:8: metadata.namespace: namespace "kube-system" of ConfigMap bad is not allowed');
    expect(h.counts()).toMatchObject({ writes: 1, dryRuns: 0 }); // the status record, nothing else
    expect((await getObject(h.kube, cm(h.namespace, "ok")))?.data).toEqual({ v: "1" });
    expect(await getObject(h.kube, cm(h.namespace, "fine"))).toBeUndefined();
    expect(await getObject(h.kube, cm("kube-system", "bad"))).toBeUndefined();
  });

  it("allowClusterScoped: false refuses cluster-scoped kinds before any write", async () => {
    const role = uniqueName("plumber-fleet-role");
    const h = await start({ "ok.yaml": configMap("ok", { v: "1" }) }, { app: { allowClusterScoped: false } });
    expect((await h.cycle()).kind).toBe("applied");
    await h.repo.commit({ "ok.yaml": configMap("ok", { v: "2" }), "role.yaml": clusterRole(role) }, "a cluster-scoped kind");
    h.counts();
    const res = await h.cycle();
    expect(res.kind).toBe("failed");
    if (res.kind !== "failed") return;
    expect(res.message).toContain(`role.yaml:1: kind: ClusterRole ${role} is cluster-scoped`);
    expect(h.counts()).toMatchObject({ writes: 1, dryRuns: 0 }); // the status record, nothing else
    expect((await getObject(h.kube, cm(h.namespace, "ok")))?.data).toEqual({ v: "1" });
    expect(await getObject(h.kube, `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role}`)).toBeUndefined();
  });
});
