// What must hold before a new revision is applied, as an ordered list of small gates evaluated by
// one loop (the order is data, as in gitops-engine's sync phases). A gate only reads; what a
// verdict leads to (status, a hold, a failure) is the machine's business, so `plan` runs the very
// same gates with nothing written.
import { dependencyBlocker, type DependencyStatus } from "../deps/graph.js";
import type { AppControl } from "../state/control.js";
import type { AppState } from "../state/store.js";
import { evaluateWindows } from "../windows/windows.js";
import type { AppSpec } from "./spec.js";

export interface GateContext {
  spec: AppSpec;
  state: AppState;
  control: AppControl;
  /** The revision the cycle would move to. */
  target: string;
  /** The target is a pin (`plumber rollback`/`pin`): a person chose it. */
  pinned: boolean;
  /** The injected clock's time for this cycle. */
  now: Date;
  /** Where the target comes from, when not a branch head (a promotion: from which app, since when): the approval message says it. */
  provenance?: string;
  /** The status of an app this one dependsOn. */
  dependency?: (name: string) => Promise<DependencyStatus>;
  /** Signed commits: why `sha` may not be deployed, undefined when it may (fetches the commit first). */
  verifyCommit?: (sha: string) => Promise<string | undefined>;
}

export type GateVerdict =
  | { verdict: "pass" }
  /** Not now; the revision waits (status says why). `driftRepair`: the applied revision is still kept in place. */
  | { verdict: "hold"; message: string; driftRepair: boolean }
  /** Waits for `plumber approve`. */
  | { verdict: "approval"; message: string }
  /** Never as it is: the revision fails; `permanent` holds it until the branch moves or the config changes. */
  | { verdict: "refuse"; message: string; permanent: boolean; reason: string };

export type Gate = (ctx: GateContext) => Promise<GateVerdict>;

export interface NamedGate {
  name: string;
  gate: Gate;
}

const PASS: GateVerdict = { verdict: "pass" };
const short = (sha: string): string => sha.slice(0, 12);

/** repos[].verify: an unsigned or untrusted commit is refused before anything reads its manifests. */
export const signatureGate: Gate = async (c) => {
  const refused = await c.verifyCommit?.(c.target);
  return refused ? { verdict: "refuse", message: refused, permanent: true, reason: "SignatureInvalid" } : PASS;
};

/** dependsOn: every dependency healthy at the revision it should be at. */
export const dependsOnGate: Gate = async (c) => {
  if (!c.dependency) return PASS;
  for (const name of c.spec.config.dependsOn) {
    const why = dependencyBlocker(name, await c.dependency(name));
    if (why) return { verdict: "hold", message: `revision ${short(c.target)} waits: ${why}`, driftRepair: true };
  }
  return PASS;
};

/** Sync windows at the clock's time. */
export const windowsGate: Gate = async (c) => {
  const win = evaluateWindows(c.spec.config.windows, c.now);
  return win.sync ? PASS : { verdict: "hold", message: `revision ${short(c.target)} waits for a sync window: ${win.reason ?? ""}`, driftRepair: win.driftRepair };
};

/** approval: manual — a person approves each revision; a pin is already a person's choice. */
export const approvalGate: Gate = async (c) => {
  if (c.spec.config.approval !== "manual" || c.pinned || c.control.approvedRevision === c.target) return PASS;
  const from = c.provenance ? `; ${c.provenance}` : "";
  return { verdict: "approval", message: `revision ${short(c.target)} waits for approval: plumber approve ${c.spec.config.name} ${short(c.target)}${from}` };
};

export const GATES: readonly NamedGate[] = [
  { name: "signature", gate: signatureGate },
  { name: "dependsOn", gate: dependsOnGate },
  { name: "windows", gate: windowsGate },
  { name: "approval", gate: approvalGate },
];

export interface GateOutcome {
  gate: string;
  verdict: GateVerdict;
}

/**
 * The gates in order: a cycle stops at the first that does not pass (`all` false); a plan asks
 * every gate, to show everything that stands in the way.
 */
export async function evaluateGates(ctx: GateContext, opts: { all?: boolean; gates?: readonly NamedGate[] } = {}): Promise<GateOutcome[]> {
  const out: GateOutcome[] = [];
  for (const g of opts.gates ?? GATES) {
    const verdict = await g.gate(ctx);
    out.push({ gate: g.name, verdict });
    if (verdict.verdict !== "pass" && !opts.all) break;
  }
  return out;
}

/** The first verdict that is not a pass; pass when every gate passed. */
export function firstBlock(outcomes: GateOutcome[]): GateOutcome | undefined {
  return outcomes.find((o) => o.verdict.verdict !== "pass");
}
