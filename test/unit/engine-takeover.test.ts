import { describe, expect, it } from "vitest";
import { LAST_APPLIED_ANNOTATION, planTakeover, takeoverNote } from "../../src/engine/takeover.js";
import type { KubeObject } from "../../src/types.js";

const entry = (manager: string, operation: string, extra: Record<string, unknown> = {}) => ({ manager, operation, apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: { "f:data": {} }, ...extra });

function obj(managedFields: unknown[], annotations?: Record<string, string>): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", resourceVersion: "9", managedFields, ...(annotations ? { annotations } : {}) } };
}

describe("planTakeover", () => {
  it("renames kubectl's Update entries to plumber's Apply entry and drops the last-applied annotation", () => {
    const live = obj([entry("kubectl-client-side-apply", "Update"), entry("kube-controller-manager", "Update"), entry("kubectl-edit", "Update")], { [LAST_APPLIED_ANNOTATION]: "{}", keep: "x" });
    const t = planTakeover(live, "plumber");
    expect(t?.managers).toEqual(["kubectl-client-side-apply", "kubectl-edit"]);
    expect(t?.patch).toEqual([
      { op: "test", path: "/metadata/resourceVersion", value: "9" },
      {
        op: "replace",
        path: "/metadata/managedFields",
        value: [entry("plumber", "Apply"), entry("kube-controller-manager", "Update"), entry("plumber", "Apply")],
      },
      { op: "remove", path: "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration" },
    ]);
    expect(takeoverNote(t!)).toBe(`took over fields from kubectl-client-side-apply, kubectl-edit; dropped ${LAST_APPLIED_ANNOTATION}`);
  });

  it("leaves status-subresource entries, Apply entries and other managers alone", () => {
    const live = obj([entry("kubectl", "Update", { subresource: "status" }), entry("kubectl-client-side-apply", "Apply"), entry("helm", "Update")]);
    expect(planTakeover(live, "plumber")).toBeUndefined();
  });

  it("takes over before-first-apply and plain kubectl", () => {
    expect(planTakeover(obj([entry("before-first-apply", "Update"), entry("kubectl", "Update")]), "plumber")?.managers).toEqual(["before-first-apply", "kubectl"]);
  });
});
