import { PlanError, SyncError } from "../../engine/engine.js";
import { KubeApiError } from "../../kube/client.js";
import { FileProblemError } from "../../types.js";
import type { CheckOutcome } from "../../checks/run.js";
import { isoNow } from "../clock.js";
import type { Cycle } from "../cycle.js";
import { failed } from "../transitions.js";

/**
 * Retrying the same revision cannot help: the manifests or the server's verdict on them are at
 * fault. Read from the errors' own flags (KubeApiError.transient, the failed entries' `transient`
 * set by the engine from the error that failed them), never from their messages.
 */
export function isPermanent(e: unknown): boolean {
  if (e instanceof FileProblemError) return true;
  if (e instanceof PlanError) return !e.failure.transient && e.changeSet.entries.every((x) => x.action !== "failed" || !x.transient);
  if (e instanceof KubeApiError) return !e.transient;
  return false;
}

/**
 * The apiserver's reason behind a failure, when it answered one (WriteRefused: plumber refused its
 * own write, as a standby or shutting down): the error's own, a failed plan's cause, or the first
 * failed entry's.
 */
export function errorReason(e: unknown): string | undefined {
  if (e instanceof KubeApiError) return e.reason;
  if (e instanceof PlanError && e.failure.reason) return e.failure.reason;
  if (e instanceof PlanError || e instanceof SyncError) return e.changeSet.entries.find((x) => x.action === "failed" && x.reason)?.reason;
  return undefined;
}

/** `{ errorReason }` for a CycleResult, or nothing. */
export function reasonOf(e: unknown): { errorReason?: string } {
  const r = errorReason(e);
  return r ? { errorReason: r } : {};
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Status is written only when it changes, so a failing revision costs no write per cycle. */
export async function recordFailure(c: Cycle, revision: string, message: string, permanent: boolean, checks?: CheckOutcome[]): Promise<void> {
  const next = failed(c.state, { revision, message, permanent, specHash: c.spec.hash, now: isoNow(c.clock), checks });
  if (!next) return;
  c.state = next;
  try {
    await c.save();
  } catch (e) {
    c.log.warn({ err: errorMessage(e) }, "could not record status");
  }
}
