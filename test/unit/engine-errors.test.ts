import { describe, expect, it } from "vitest";
import { errorText, immutableFields } from "../../src/engine/errors.js";
import { KubeApiError } from "../../src/kube/client.js";

const invalid = (message: string, causes: { reason?: string; message?: string; field?: string }[]) =>
  new KubeApiError(422, "Invalid", message, "PATCH /x", { name: "x", kind: "RoleBinding", causes });

describe("immutable field errors", () => {
  it("names the fields from the Status causes and says how to opt in to recreate", () => {
    const e = invalid('RoleBinding.rbac.authorization.k8s.io "x" is invalid: roleRef: Invalid value: ...: cannot change roleRef', [
      { reason: "FieldValueInvalid", message: "Invalid value: ...: cannot change roleRef", field: "roleRef" },
    ]);
    expect(immutableFields(e)).toEqual(["roleRef"]);
    expect(errorText(e)).toMatch(/^immutable field roleRef cannot be changed in place; set the annotation plumber\.dev\/force: enabled/);
  });

  it("finds every immutable cause and ignores other invalid fields", () => {
    const e = invalid("Service is invalid", [
      { message: "Invalid value: \"10.0.0.9\": field is immutable", field: "spec.clusterIP" },
      { message: "Invalid value: []string{...}: may not change once set", field: "spec.clusterIPs[0]" },
      { message: "Required value", field: "spec.ports" },
    ]);
    expect(immutableFields(e)).toEqual(["spec.clusterIP", "spec.clusterIPs[0]"]);
  });

  it("is not an immutable error when nothing says so", () => {
    const e = invalid("ConfigMap is invalid: data: Invalid value", [{ message: "Invalid value", field: "data" }]);
    expect(immutableFields(e)).toEqual([]);
    expect(errorText(e)).toBe("Invalid: ConfigMap is invalid: data: Invalid value");
    expect(immutableFields(new KubeApiError(409, "Conflict", "field is immutable", "x"))).toEqual([]);
  });
});
