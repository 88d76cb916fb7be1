// The gates one at a time, and the loop that runs them in order: pure reads, no cluster.
import { describe, expect, it } from "vitest";
import type { AppConfig } from "../../src/config/types.js";
import type { DependencyStatus } from "../../src/deps/graph.js";
import { approvalGate, dependsOnGate, evaluateGates, firstBlock, GATES, signatureGate, windowsGate, type GateContext, type NamedGate } from "../../src/reconcile/gates.js";
import { appSpec } from "../../src/reconcile/spec.js";
import type { AppState } from "../../src/state/store.js";
import type { SyncWindow } from "../../src/windows/windows.js";

const A = "a".repeat(40);
const B = "b".repeat(40);

function app(extra: Partial<AppConfig> = {}): AppConfig {
  return {
    name: "web",
    repo: "r",
    branch: "main",
    path: ".",
    cluster: "c",
    namespace: "web",
    windows: [],
    dependsOn: [],
    allowClusterScoped: true,
    prune: true,
    allowEmpty: false,
    applyConcurrency: 4,
    checks: { pre: [], post: [], keep: 3 },
    healthTimeoutMs: 60_000,
    rollback: "auto",
    approval: "none",
    ...extra,
  };
}

const ready: AppState = { app: "web", phase: "Ready", revision: A, goodRevision: A, inventory: [], history: [] };

function ctx(extra: Partial<GateContext> & { config?: Partial<AppConfig> } = {}): GateContext {
  const { config, ...rest } = extra;
  return { spec: appSpec(app(config)), state: ready, control: {}, target: B, pinned: false, now: new Date("2026-03-10T10:00:00Z"), ...rest };
}

const allowAt11: SyncWindow = { kind: "allow", schedule: "0 11 * * *", durationMs: 600_000, timezone: "UTC", allowDriftRepair: true };
const freeze: SyncWindow = { kind: "deny", schedule: "0 10 * * *", durationMs: 3_600_000, timezone: "UTC", allowDriftRepair: false };

describe("gates", () => {
  it("signature: refuses for good what the verifier refuses, passes what it accepts or when nothing is verified", async () => {
    const asked: string[] = [];
    const verifyCommit = async (sha: string) => {
      asked.push(sha);
      return sha === B ? `commit ${B.slice(0, 12)} is not signed` : undefined;
    };
    expect(await signatureGate(ctx({ verifyCommit }))).toEqual({ verdict: "refuse", message: `commit ${B.slice(0, 12)} is not signed`, permanent: true, reason: "SignatureInvalid" });
    expect(await signatureGate(ctx({ verifyCommit, target: A }))).toEqual({ verdict: "pass" });
    expect(asked).toEqual([B, A]);
    expect(await signatureGate(ctx())).toEqual({ verdict: "pass" });
  });

  it("dependsOn: holds, with drift still repaired, on the first dependency not healthy at its head; passes when all are", async () => {
    const deps: Record<string, DependencyStatus> = {
      base: { state: { ...ready, app: "base" }, head: A },
      db: { state: { ...ready, app: "db" }, head: B },
    };
    const dependency = async (n: string) => deps[n] ?? {};
    expect(await dependsOnGate(ctx({ dependency, config: { dependsOn: ["base"] } }))).toEqual({ verdict: "pass" });
    expect(await dependsOnGate(ctx({ dependency, config: { dependsOn: ["base", "db", "gone"] } }))).toEqual({
      verdict: "hold",
      message: `revision ${B.slice(0, 12)} waits: dependency db is not yet at ${B.slice(0, 12)} (at ${A.slice(0, 12)})`,
      driftRepair: true,
    });
    expect(await dependsOnGate(ctx({ dependency, config: { dependsOn: ["gone"] } }))).toMatchObject({ verdict: "hold", message: expect.stringContaining("dependency gone has not been deployed yet") });
    // Without a way to ask (a library user), nothing is waited for.
    expect(await dependsOnGate(ctx({ config: { dependsOn: ["gone"] } }))).toEqual({ verdict: "pass" });
  });

  it("windows: decided at the context's time, not the wall clock; a deny window can stop drift repair too", async () => {
    const outside = await windowsGate(ctx({ config: { windows: [allowAt11] } }));
    expect(outside).toEqual({ verdict: "hold", message: `revision ${B.slice(0, 12)} waits for a sync window: outside the allow windows (next opens at 2026-03-10T11:00:00.000Z)`, driftRepair: true });
    expect(await windowsGate(ctx({ config: { windows: [allowAt11] }, now: new Date("2026-03-10T11:05:00Z") }))).toEqual({ verdict: "pass" });
    expect(await windowsGate(ctx({ config: { windows: [allowAt11, freeze] } }))).toMatchObject({ verdict: "hold", driftRepair: false, message: expect.stringContaining('deny window "0 10 * * *"') });
    expect(await windowsGate(ctx())).toEqual({ verdict: "pass" });
  });

  it("approval: manual apps wait for the revision to be approved; an approved or pinned revision passes", async () => {
    const manual = { approval: "manual" as const };
    expect(await approvalGate(ctx({ config: manual }))).toEqual({ verdict: "approval", message: `revision ${B.slice(0, 12)} waits for approval: plumber approve web ${B.slice(0, 12)}` });
    expect(await approvalGate(ctx({ config: manual, control: { approvedRevision: A } }))).toMatchObject({ verdict: "approval" });
    expect(await approvalGate(ctx({ config: manual, control: { approvedRevision: B } }))).toEqual({ verdict: "pass" });
    expect(await approvalGate(ctx({ config: manual, pinned: true }))).toEqual({ verdict: "pass" });
    expect(await approvalGate(ctx())).toEqual({ verdict: "pass" });
  });

  it("the loop runs the gates in their order, stops at the first block unless asked for all", async () => {
    expect(GATES.map((g) => g.name)).toEqual(["signature", "dependsOn", "windows", "approval"]);
    const c = ctx({ config: { approval: "manual", windows: [allowAt11] } });
    const first = await evaluateGates(c);
    expect(first.map((o) => [o.gate, o.verdict.verdict])).toEqual([["signature", "pass"], ["dependsOn", "pass"], ["windows", "hold"]]);
    expect(firstBlock(first)?.gate).toBe("windows");
    const all = await evaluateGates(c, { all: true });
    expect(all.map((o) => o.verdict.verdict)).toEqual(["pass", "pass", "hold", "approval"]);
    expect(firstBlock(await evaluateGates(ctx()))).toBeUndefined();
    // The list is data: a gate added to it is asked like the others, in its place.
    const seen: string[] = [];
    const spy = (name: string): NamedGate => ({ name, gate: async () => (seen.push(name), { verdict: "pass" }) });
    await evaluateGates(c, { gates: [spy("one"), ...GATES.slice(0, 1), spy("two")] });
    expect(seen).toEqual(["one", "two"]);
  });
});
