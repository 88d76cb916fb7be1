import type { CheckConfig } from "../../config/types.js";
import { checkObject, checkOnce, pruneCheckObjects, runCheck, startCheck, type CheckOutcome, type CheckPhase } from "../../checks/run.js";
import { parseManifests } from "../../manifests/parse.js";
import type { KubeObject, Manifest } from "../../types.js";
import { FileProblemError } from "../../types.js";
import { isoNow } from "../clock.js";
import type { Cycle } from "../cycle.js";
import { deadlinePassed } from "../verify-progress.js";
import { errorMessage } from "./failure.js";

/** Runs the checks of one phase in order, stopping at the first that fails; then prunes old check objects. */
export async function runChecks(c: Cycle, phase: CheckPhase, checks: CheckConfig[], rev: string): Promise<CheckOutcome[]> {
  const app = c.spec.config;
  const ctx = { revision: rev, app: app.name, cluster: app.cluster };
  const out: CheckOutcome[] = [];
  for (const check of checks) {
    const obj = await checkObjectOf(c, phase, check, rev);
    const outcome = await runCheck(check, obj, { client: c.io.client, discovery: c.io.discovery, namespace: app.namespace, phase, ctx, signal: c.signal });
    out.push(outcome);
    if (!outcome.passed) break;
  }
  if (checks.length) await pruneChecks(c);
  return out;
}

/** A check waited for across cycles: its name, and when it was first created. */
export interface RunningCheck {
  name: string;
  startedAt: string;
}

/**
 * One look at a check waited for across cycles (pre or post): created the first time (its fixed
 * name finds a run from before a restart), then read once; no outcome while it runs. `running`:
 * the entry the state kept; the one returned is what to keep now.
 */
export async function lookAtCheck(c: Cycle, phase: CheckPhase, check: CheckConfig, obj: KubeObject, running: RunningCheck | undefined): Promise<{ running: RunningCheck; out?: CheckOutcome }> {
  const opts = { client: c.io.client, discovery: c.io.discovery, namespace: c.spec.config.namespace, phase };
  let current = running?.name === check.name ? running : undefined;
  if (!current) {
    await startCheck(check, obj, opts);
    current = { name: check.name, startedAt: isoNow(c.clock) };
  }
  const out = await checkOnce(check, obj, { ...opts, deadlinePassed: deadlinePassed(c.clock.now(), current.startedAt, check.timeoutMs) });
  return { running: current, ...(out ? { out } : {}) };
}

/** The object that runs one check of `rev` (its manifest inline or read from the commit). */
export async function checkObjectOf(c: Cycle, phase: CheckPhase, check: CheckConfig, rev: string): Promise<KubeObject> {
  const app = c.spec.config;
  const manifest = await checkManifestOf(c, check, rev);
  return checkObject(check, manifest, { namespace: app.namespace, phase, ctx: { revision: rev, app: app.name, cluster: app.cluster } });
}

/** A check's manifest as configured: inline, or read from its file at `rev` (placeholders not yet substituted). */
export async function checkManifestOf(c: Cycle, check: CheckConfig, rev: string): Promise<Record<string, unknown>> {
  return check.manifest ?? (await readCheckFile(c, check, rev));
}

/** Keeps the check objects of the newest revisions; a failure to clean up fails nothing. */
export async function pruneChecks(c: Cycle): Promise<void> {
  const app = c.spec.config;
  try {
    await pruneCheckObjects(c.io.client, c.io.discovery, app.name, app.namespace, app.checks.keep);
  } catch (e) {
    c.log.warn({ err: errorMessage(e) }, "could not clean up old check objects");
  }
}

async function readCheckFile(c: Cycle, check: CheckConfig, rev: string): Promise<Record<string, unknown>> {
  const file = check.file as string;
  const slash = file.lastIndexOf("/");
  const dir = slash < 0 ? "." : file.slice(0, slash);
  const files = await c.io.repo.readFiles(rev, dir, (p) => p === file, { maxFileBytes: 1 << 20, maxTotalBytes: 1 << 20, maxFiles: 1 });
  if (files.length === 0) throw new FileProblemError([{ file, line: 1, message: `check ${check.name}: no such file at ${rev.slice(0, 12)}` }]);
  const docs = parseManifests(files);
  if (docs.length !== 1) throw new FileProblemError([{ file, line: 1, message: `check ${check.name}: the file must hold exactly one manifest, found ${docs.length}` }]);
  return (docs[0] as Manifest).object;
}

export function describeFailedCheck(f: CheckOutcome): string {
  return `${f.phase}-check ${f.name} failed (${f.object}): ${f.reason}${f.message ? `: ${f.message}` : ""}`;
}
