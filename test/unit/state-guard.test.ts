import { describe, expect, it } from "vitest";
import { controlObjectName } from "../../src/state/control.js";
import { reservedObjectGuard } from "../../src/state/guard.js";
import { HASH_KEY_SECRET, hashKeyId } from "../../src/state/hashkey.js";
import { stateObjectName } from "../../src/state/store.js";
import { releaseStateName } from "../../src/state/release.js";

const id = (kind: string, namespace: string, name: string, group = "") => ({ group, kind, namespace, name });

describe("reservedObjectGuard", () => {
  const guard = reservedObjectGuard({ stateNamespace: "plumber" });

  it("refuses anything in the state namespace, and the state Namespace itself", () => {
    expect(guard(id("ConfigMap", "plumber", "anything"))).toMatch(/state namespace "plumber"/);
    expect(guard(id("Task", "plumber", "t", "tekton.dev"))).toMatch(/state namespace/);
    expect(guard(id("Namespace", "", "plumber"))).toMatch(/Namespace plumber is plumber's state namespace/);
  });

  it("refuses plumber's state, control and release records and its hash key by name in any namespace", () => {
    for (const name of [stateObjectName("prod"), controlObjectName("prod"), releaseStateName("nightly")]) {
      expect(guard(id("ConfigMap", "ci", name))).toMatch(/plumber's own state or control records/);
    }
    expect(guard(id("Secret", "ci", HASH_KEY_SECRET))).toMatch(/hash key/);
  });

  it("refuses the leader-election Lease: by name anywhere by default, in its namespace when known", () => {
    expect(guard(id("Lease", "ci", "plumber", "coordination.k8s.io"))).toMatch(/Lease/);
    const scoped = reservedObjectGuard({ stateNamespace: "plumber", lease: { name: "plumber-leader", namespace: "ops" } });
    expect(scoped(id("Lease", "ops", "plumber-leader", "coordination.k8s.io"))).toMatch(/Lease/);
    expect(scoped(id("Lease", "ci", "plumber-leader", "coordination.k8s.io"))).toBeUndefined();
  });

  it("allows everything else, including look-alikes of other kinds or groups", () => {
    expect(guard(id("ConfigMap", "ci", "settings"))).toBeUndefined();
    expect(guard(id("Namespace", "", "plumber-ci"))).toBeUndefined();
    expect(guard(id("Secret", "ci", stateObjectName("prod")))).toBeUndefined();
    expect(guard(id("ConfigMap", "ci", "plumber-app-x", "example.com"))).toBeUndefined();
    expect(guard(id("Lease", "ci", "other", "coordination.k8s.io"))).toBeUndefined();
  });
});

describe("hashKeyId", () => {
  it("names a key without revealing it, and is empty for no key", () => {
    const a = hashKeyId(new Uint8Array(32).fill(1));
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(hashKeyId(new Uint8Array(32).fill(2))).not.toBe(a);
    expect(hashKeyId(undefined)).toBe("");
  });
});
