import { describe, expect, it } from "vitest";
import {
  applyOrder,
  kindRank,
  pruneOrder,
  sortKey,
  stageOf,
  UNKNOWN_KIND_RANK,
  type OrderId,
} from "../../src/engine/order.js";

function id(group: string, kind: string, name: string, namespace = ""): OrderId {
  return { group, kind, namespace, name };
}

const ident = (o: OrderId): OrderId => o;
const label = (o: OrderId): string => `${o.group}/${o.kind}/${o.namespace}/${o.name}`;

/** Deterministic Fisher-Yates with a small LCG. */
function shuffle<T>(items: readonly T[], seed: number): T[] {
  const a = [...items];
  let s = seed >>> 0;
  for (let i = a.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

const sample: OrderId[] = [
  id("apps", "Deployment", "web", "shop"),
  id("", "ConfigMap", "web-config", "shop"),
  id("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "policy"),
  id("tekton.dev", "Task", "build", "ci"),
  id("tekton.dev", "Pipeline", "release", "ci"),
  id("triggers.tekton.dev", "EventListener", "github", "ci"),
  id("", "Namespace", "shop"),
  id("", "Namespace", "ci"),
  id("apiextensions.k8s.io", "CustomResourceDefinition", "tasks.tekton.dev"),
  id("apiextensions.k8s.io", "CustomResourceDefinition", "pipelines.tekton.dev"),
  id("", "Service", "web", "shop"),
  id("serving.knative.dev", "Service", "hello", "shop"),
  id("", "ServiceAccount", "builder", "ci"),
  id("rbac.authorization.k8s.io", "ClusterRole", "builder"),
  id("rbac.authorization.k8s.io", "RoleBinding", "builder", "ci"),
  id("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "inject"),
  id("", "Secret", "token", "ci"),
  id("networking.k8s.io", "Ingress", "web", "shop"),
  id("batch", "CronJob", "cleanup", "shop"),
];

describe("stageOf", () => {
  it("puts CRDs and Namespaces in stage 0, the rest in stage 1", () => {
    expect(stageOf("apiextensions.k8s.io", "CustomResourceDefinition")).toBe(0);
    expect(stageOf("", "Namespace")).toBe(0);
    expect(stageOf("", "ConfigMap")).toBe(1);
    expect(stageOf("tekton.dev", "Task")).toBe(1);
  });

  it("is group-sensitive", () => {
    expect(stageOf("example.com", "Namespace")).toBe(1);
    expect(stageOf("", "CustomResourceDefinition")).toBe(1);
    expect(stageOf("apiextensions.k8s.io", "Namespace")).toBe(1);
  });
});

describe("sortKey", () => {
  it("is [stage, rank, kind, group, namespace, name]", () => {
    expect(sortKey(id("apps", "Deployment", "web", "shop"))).toEqual([1, kindRank("apps", "Deployment"), "Deployment", "apps", "shop", "web"]);
    expect(sortKey(id("", "Namespace", "shop"))).toEqual([0, 0, "Namespace", "", "", "shop"]);
  });

  it("ranks built-ins by group and custom kinds together", () => {
    expect(kindRank("", "Service")).toBeLessThan(UNKNOWN_KIND_RANK);
    expect(kindRank("serving.knative.dev", "Service")).toBe(UNKNOWN_KIND_RANK);
    expect(kindRank("", "Deployment")).toBe(UNKNOWN_KIND_RANK);
    expect(kindRank("apps", "Deployment")).toBeLessThan(UNKNOWN_KIND_RANK);
    expect(kindRank("tekton.dev", "Task")).toBe(UNKNOWN_KIND_RANK);
    expect(kindRank("admissionregistration.k8s.io", "MutatingWebhookConfiguration")).toBeGreaterThan(UNKNOWN_KIND_RANK);
    expect(kindRank("example.com", "MutatingWebhookConfiguration")).toBe(UNKNOWN_KIND_RANK);
  });
});

describe("applyOrder", () => {
  const ordered = applyOrder(sample, ident).map(label);

  it("applies Namespaces then CRDs before everything else", () => {
    expect(ordered.slice(0, 4)).toEqual([
      "/Namespace//ci",
      "/Namespace//shop",
      "apiextensions.k8s.io/CustomResourceDefinition//pipelines.tekton.dev",
      "apiextensions.k8s.io/CustomResourceDefinition//tasks.tekton.dev",
    ]);
  });

  it("follows the Helm/Flux install order for built-ins", () => {
    const pos = (l: string): number => ordered.indexOf(l);
    expect(pos("/ConfigMap/shop/web-config")).toBeLessThan(pos("apps/Deployment/shop/web"));
    expect(pos("/ServiceAccount/ci/builder")).toBeLessThan(pos("/Secret/ci/token"));
    expect(pos("/Secret/ci/token")).toBeLessThan(pos("/ConfigMap/shop/web-config"));
    expect(pos("rbac.authorization.k8s.io/ClusterRole//builder")).toBeLessThan(pos("rbac.authorization.k8s.io/RoleBinding/ci/builder"));
    expect(pos("rbac.authorization.k8s.io/RoleBinding/ci/builder")).toBeLessThan(pos("/Service/shop/web"));
    expect(pos("/Service/shop/web")).toBeLessThan(pos("apps/Deployment/shop/web"));
    expect(pos("apps/Deployment/shop/web")).toBeLessThan(pos("batch/CronJob/shop/cleanup"));
    expect(pos("batch/CronJob/shop/cleanup")).toBeLessThan(pos("networking.k8s.io/Ingress/shop/web"));
  });

  it("puts custom kinds after built-ins, sorted by kind, and webhooks last", () => {
    expect(ordered.slice(-7)).toEqual([
      "networking.k8s.io/Ingress/shop/web",
      "triggers.tekton.dev/EventListener/ci/github",
      "tekton.dev/Pipeline/ci/release",
      "serving.knative.dev/Service/shop/hello",
      "tekton.dev/Task/ci/build",
      "admissionregistration.k8s.io/MutatingWebhookConfiguration//inject",
      "admissionregistration.k8s.io/ValidatingWebhookConfiguration//policy",
    ]);
  });

  it("orders webhooks and admission policies among themselves", () => {
    const items = [
      id("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", "b"),
      id("admissionregistration.k8s.io", "ValidatingAdmissionPolicy", "p"),
      id("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "v"),
      id("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "m"),
      id("zzz.example.com", "Zebra", "z"),
    ];
    expect(applyOrder(items, ident).map((o) => o.kind)).toEqual([
      "Zebra",
      "MutatingWebhookConfiguration",
      "ValidatingWebhookConfiguration",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
    ]);
  });

  it("breaks ties by group, then namespace, then name", () => {
    const items = [
      id("b.example.com", "Widget", "x", "ns1"),
      id("a.example.com", "Widget", "y", "ns2"),
      id("a.example.com", "Widget", "x", "ns2"),
      id("a.example.com", "Widget", "z", "ns1"),
    ];
    expect(applyOrder(items, ident).map(label)).toEqual([
      "a.example.com/Widget/ns1/z",
      "a.example.com/Widget/ns2/x",
      "a.example.com/Widget/ns2/y",
      "b.example.com/Widget/ns1/x",
    ]);
  });

  it("is deterministic for shuffled input and does not mutate it", () => {
    const copy = [...sample];
    for (let seed = 1; seed <= 20; seed++) {
      expect(applyOrder(shuffle(sample, seed), ident).map(label)).toEqual(ordered);
    }
    expect(sample).toEqual(copy);
  });

  it("is stable for items of equal identity", () => {
    const items = [
      { tag: "first", o: id("", "ConfigMap", "same", "ns") },
      { tag: "before", o: id("", "ConfigMap", "a", "ns") },
      { tag: "second", o: id("", "ConfigMap", "same", "ns") },
    ];
    expect(applyOrder(items, (t) => t.o).map((t) => t.tag)).toEqual(["before", "first", "second"]);
  });

});

describe("pruneOrder", () => {
  it("is the exact reverse of applyOrder", () => {
    const apply = applyOrder(sample, ident).map(label);
    const prune = pruneOrder(shuffle(sample, 7), ident).map(label);
    expect(prune).toEqual([...apply].reverse());
    expect(prune[0]).toBe("admissionregistration.k8s.io/ValidatingWebhookConfiguration//policy");
    expect(prune[prune.length - 1]).toBe("/Namespace//ci");
  });
});

