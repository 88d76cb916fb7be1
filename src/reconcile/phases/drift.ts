import { SyncError, type Engine } from "../../engine/engine.js";
import { isoNow } from "../clock.js";
import { msSince, type Cycle, type CycleResult } from "../cycle.js";
import { driftRepaired } from "../transitions.js";
import { errorMessage, reasonOf } from "./failure.js";

/** Nothing to do, or the revision held at its failure (what a settled cycle reports). */
export function settled(c: Cycle): CycleResult {
  const s = c.state;
  return s.failedRevision ? { kind: "held", revision: s.failedRevision, message: s.message ?? "" } : { kind: "unchanged" };
}

/** Puts back what drifted from the applied revision (contested objects with backoff). */
export async function repairDrift(c: Cycle): Promise<CycleResult> {
  const state = c.state;
  if (!state.revision || state.inventory.length === 0) return settled(c);
  const revision = state.revision;
  const { engine, keyId } = await c.engine();
  if ((state.hashKeyId ?? "") !== keyId) return rehash(c, revision, engine, keyId);
  const app = c.spec.config;
  // Objects another field manager keeps taking back are repaired with backoff (contested.ts).
  const drift = await c.contest.review(await engine.detectDrift(app.name, state.inventory), state.inventory, { app: app.name, client: c.io.client, namespace: c.io.stateNamespace, log: c.log });
  if (drift.drifted.length + drift.missing.length === 0) return settled(c);
  const log = c.log.child({ revision: revision.slice(0, 12) });
  log.info({ drifted: drift.drifted.length, missing: drift.missing.length }, "drift detected; restoring");
  try {
    const manifests = await c.render(revision);
    const out = await engine.repair(app.name, manifests, app.namespace, drift, state.inventory, c.spec.namespacePolicy, { guard: c.io.objectGuard });
    c.state = driftRepaired(c.state, out.inventory, isoNow(c.clock));
    await c.save();
    log.info({ changes: out.changeSet.summary(), durationMs: msSince(c.started) }, `drift repaired: ${out.changeSet.toString()}`);
    c.emit("driftRepaired", revision, "DriftRepaired", undefined, out.changeSet.toString());
    return { kind: "repaired", revision, changeSet: out.changeSet };
  } catch (e) {
    if (e instanceof SyncError) c.state = { ...c.state, inventory: e.inventory };
    const message = `drift repair failed: ${errorMessage(e)}`;
    log.error({ err: message }, "drift repair failed");
    return { kind: "failed", revision, message, permanent: false, ...reasonOf(e) };
  }
}

/**
 * The inventory's hashes were made with another key, or none (state of a plumber from before
 * keyed hashes): they cannot be compared with what the engine computes now, and drift repair
 * would take every object for drifted and rewrite it. Instead the applied revision is synced
 * once: every object is dry-run, only those that really differ are written (genuine drift), and
 * the inventory is stored with hashes under the current key.
 */
async function rehash(c: Cycle, revision: string, engine: Engine, keyId: string): Promise<CycleResult> {
  const log = c.log.child({ revision: revision.slice(0, 12) });
  try {
    const out = await engine.sync(c.syncRequest(await c.render(revision)));
    c.state = { ...c.state, inventory: out.inventory, hashKeyId: keyId, updatedAt: isoNow(c.clock) };
    await c.save();
    log.info({ changes: out.changeSet.summary(), durationMs: msSince(c.started) }, `stored hashes recomputed under this installation's key: ${out.changeSet.toString()}`);
    if (!out.changeSet.changed) return settled(c);
    c.emit("driftRepaired", revision, "DriftRepaired", undefined, out.changeSet.toString());
    return { kind: "repaired", revision, changeSet: out.changeSet };
  } catch (e) {
    if (e instanceof SyncError) c.state = { ...c.state, inventory: e.inventory };
    const message = `recomputing stored hashes failed: ${errorMessage(e)}`;
    log.error({ err: message }, "recomputing stored hashes failed");
    return { kind: "failed", revision, message, permanent: false, ...reasonOf(e) };
  }
}
