// Contested fields: another field manager (an HPA, an operator, a person's script) keeps taking
// back fields plumber applied. Repairing every interval is a write war (Flux's behaviour); plumber
// repairs the first drift at once, and when the same object drifts again after a repair it is
// *contested*: it names the managers (status, log, an Event) and backs off per object — the k-th
// time it is taken back, the next repair waits 2^k drift checks (2, 4, 8 … intervals), at most
// an hour — until the contest ends (a check finds it in place) or git changes the object.
import type { DriftReport } from "../engine/engine.js";
import type { InventoryEntry } from "../engine/inventory.js";
import type { KubeClient } from "../kube/client.js";
import type { Logger } from "../log.js";
import { describeId, parseIdKey } from "../manifests/identity.js";
import { readStateData, writeNotes } from "../state/notes.js";

export const CONTEST_CAP_MS = 60 * 60_000;

export interface ContestNotice {
  kind: "contested" | "resolved";
  key: string;
  managers: string[];
  /** Times it was taken back after a repair, in a row. */
  strikes: number;
  /** Drift checks until the next repair (contested only). */
  nextInChecks?: number;
}

interface Entry {
  strikes: number;
  /** Drift checks since plumber last repaired it. */
  checks: number;
  repairedAt: number;
  /** The manifest hash when it was last repaired: a new one (git changed it) starts over. */
  dh?: string;
  managers: string[];
  /** Repaired at the last check that allowed it, and not seen drifted since. */
  awaiting: boolean;
}

export interface ContestVerdict {
  /** Drifted keys to repair now. */
  repair: string[];
  /** Drifted keys whose repair the backoff puts off. */
  deferred: string[];
  notices: ContestNotice[];
}

/** The backoff, per object: pure, one call per drift check, with an injected clock. */
export class ContestBackoff {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly capMs: number;

  constructor(opts: { now?: () => number; capMs?: number } = {}) {
    this.now = opts.now ?? Date.now;
    this.capMs = opts.capMs ?? CONTEST_CAP_MS;
  }

  /**
   * One drift check. `drifted`: keys whose managed fields changed; `contested`: the managers that
   * own them now; `dh`: each key's manifest hash in the inventory.
   */
  review(drifted: string[], contested: ReadonlyMap<string, string[]>, dh: ReadonlyMap<string, string | undefined>): ContestVerdict {
    const now = this.now();
    const out: ContestVerdict = { repair: [], deferred: [], notices: [] };
    const drift = new Set(drifted);
    for (const [key, e] of this.entries) {
      if (drift.has(key)) continue;
      // In place (or gone, or out of the inventory): the contest, if any, is over.
      if (e.strikes > 0) out.notices.push({ kind: "resolved", key, managers: e.managers, strikes: e.strikes });
      this.entries.delete(key);
    }
    for (const key of drifted) {
      let e = this.entries.get(key);
      if (e && e.dh !== dh.get(key)) {
        if (e.strikes > 0) out.notices.push({ kind: "resolved", key, managers: e.managers, strikes: e.strikes });
        this.entries.delete(key);
        e = undefined;
      }
      if (!e) {
        // A first drift (someone's kubectl edit) is repaired at once.
        this.entries.set(key, { strikes: 0, checks: 0, repairedAt: now, dh: dh.get(key), managers: contested.get(key) ?? [], awaiting: true });
        out.repair.push(key);
        continue;
      }
      e.checks++;
      if (e.awaiting) {
        // Taken back after plumber's repair: contested.
        e.awaiting = false;
        e.strikes++;
        e.managers = contested.get(key) ?? e.managers;
        out.notices.push({ kind: "contested", key, managers: e.managers, strikes: e.strikes, nextInChecks: Math.max(0, this.waitChecks(e) - e.checks) });
      }
      if (e.checks >= this.waitChecks(e) || now - e.repairedAt >= this.capMs) {
        e.checks = 0;
        e.repairedAt = now;
        e.awaiting = true;
        out.repair.push(key);
      } else out.deferred.push(key);
    }
    return out;
  }

  private waitChecks(e: Entry): number {
    // Beyond 2^20 checks the hour cap decides anyway.
    return 2 ** Math.min(e.strikes, 20);
  }

  /** Objects contested now, with their managers, sorted by key. */
  contested(): { key: string; managers: string[]; strikes: number }[] {
    return [...this.entries]
      .filter(([, e]) => e.strikes > 0)
      .map(([key, e]) => ({ key, managers: e.managers, strikes: e.strikes }))
      .sort((a, b) => a.key.localeCompare(b.key));
  }
}

const FIELD_MANAGER = "plumber";

/**
 * Managers that wrote the object in the same second as plumber's last apply or later: managedFields
 * times have a resolution of one second, so a writer that takes a field right after plumber's
 * repair (within the second) is neither later nor sharing the field it took. Used only for an
 * object that drifted again after a repair, when the engine names no one.
 */
export function writersSinceApply(obj: unknown, manager: string): string[] {
  const entries = (obj as { metadata?: { managedFields?: Array<{ manager?: string; operation?: string; time?: string; subresource?: string }> } }).metadata?.managedFields ?? [];
  const main = entries.filter((e) => !e.subresource && typeof e.manager === "string");
  const applied = Math.max(0, ...main.filter((e) => e.manager === manager && e.operation === "Apply").map((e) => Date.parse(e.time ?? "") || 0));
  if (applied === 0) return [];
  return [...new Set(main.filter((e) => e.manager !== manager && (Date.parse(e.time ?? "") || 0) >= applied).map((e) => e.manager as string))].sort();
}

/** The engine's contesting managers per drifted key, completed by writersSinceApply where it names none. */
export function contestingManagersOf(drift: Pick<DriftReport, "drifted" | "live" | "contested">): Map<string, string[]> {
  const who = new Map(drift.contested ?? []);
  for (const key of drift.drifted) {
    if (who.get(key)?.length) continue;
    const live = drift.live.get(key);
    const recent = live ? writersSinceApply(live, FIELD_MANAGER) : [];
    if (recent.length) who.set(key, recent);
  }
  return who;
}

/** "ConfigMap ns/x" from an inventory key. */
export function describeKey(key: string): string {
  try {
    return describeId(parseIdKey(key));
  } catch {
    return key;
  }
}

export function describeManagers(managers: string[]): string {
  return managers.length ? managers.map((m) => `"${m}"`).join(", ") : "another writer";
}

/** What status shows for each contested object: the `contested` key of the state ConfigMap. */
export interface ContestedObject {
  object: string;
  managers: string[];
}

export interface ContestContext {
  app: string;
  client: KubeClient;
  /** The state namespace. */
  namespace: string;
  log: Logger;
}

/**
 * The backoff wired to an app's drift repair: filters the drift report, logs, keeps the
 * `contested` status key in line (written only when the set of contested objects or their
 * managers changes), and queues notices for the cycle event (`drain`).
 */
export class ContestTracker {
  readonly backoff: ContestBackoff;
  private pending: ContestNotice[] = [];
  private deferredCount = 0;
  /** The contested note as recorded in the cluster; undefined until read (once per process, at the first drift). */
  private recorded?: string;
  private seenDrift = false;

  constructor(opts: { now?: () => number; capMs?: number } = {}) {
    this.backoff = new ContestBackoff(opts);
  }

  /** Returns the drift report without the repairs the backoff puts off. */
  async review(drift: DriftReport, inventory: InventoryEntry[], ctx: ContestContext): Promise<DriftReport> {
    const dh = new Map(inventory.map((e) => [e.key, e.dh]));
    const v = this.backoff.review(drift.drifted, contestingManagersOf(drift), dh);
    for (const n of v.notices) {
      const fields = { object: describeKey(n.key), managers: n.managers, strikes: n.strikes };
      if (n.kind === "contested") ctx.log.warn({ ...fields, nextInChecks: n.nextInChecks }, `${describeKey(n.key)}: fields plumber applied are taken back by ${describeManagers(n.managers)}; repairing with backoff`);
      else ctx.log.info(fields, `${describeKey(n.key)}: no longer contested`);
    }
    // Drained into every "cycle" event (AppReconciler); bounded all the same.
    this.pending = [...this.pending, ...v.notices].slice(-100);
    this.deferredCount += v.deferred.length;
    // Nothing drifted and nothing contested in memory: no request at all (a steady state costs
    // no read either). A note left by an earlier process is read, and corrected, at the first drift.
    this.seenDrift ||= drift.drifted.length > 0;
    if (this.seenDrift) await this.recordNote(ctx);
    return { ...drift, drifted: v.repair };
  }

  private async recordNote(ctx: ContestContext): Promise<void> {
    const now: ContestedObject[] = this.backoff.contested().map((c) => ({ object: describeKey(c.key), managers: c.managers }));
    const note = now.length ? JSON.stringify(now) : "";
    try {
      this.recorded ??= (await readStateData(ctx.client, ctx.namespace, ctx.app))?.contested ?? "";
      if (this.recorded === note) return;
      await writeNotes(ctx.client, ctx.namespace, ctx.app, "contest", note ? { contested: note } : {});
      this.recorded = note;
    } catch (e) {
      this.recorded = undefined;
      ctx.log.warn({ err: e instanceof Error ? e.message : String(e) }, "could not record the contested objects in status; trying again next check");
    }
  }

  /** Notices since the last call, and how many repairs were put off. */
  drain(): { notices: ContestNotice[]; deferred: number; contested: number } {
    const out = { notices: this.pending, deferred: this.deferredCount, contested: this.backoff.contested().length };
    this.pending = [];
    this.deferredCount = 0;
    return out;
  }
}

/** The `contested` key of a state ConfigMap, parsed; [] when absent or unreadable. */
export function parseContested(raw: string | undefined): ContestedObject[] {
  if (!raw) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? (v as ContestedObject[]).filter((x) => x && typeof x.object === "string" && Array.isArray(x.managers)) : [];
  } catch {
    return [];
  }
}
