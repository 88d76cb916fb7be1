// Source health: whether a repo's ref listing works, since when it fails, and the last listing
// that worked. The poller tells it every outcome; it says when the source *changes* state
// (failing, recovered), and only then is anything written: the failure is recorded in each app's
// state ConfigMap (keys source*, written under their own field manager, see notes.ts), so
// `plumber status` on any machine shows it, and a steady state — good or failing — costs no write.
import type { Logger } from "../log.js";
import { readStateData, writeNotes } from "./notes.js";
import type { KubeClient } from "../kube/client.js";

/** What an app's state records while its source fails. */
export interface SourceRecord {
  /** ISO time of the first failed listing of this outage. */
  failingSince: string;
  /** The error of that listing (later ones may differ: the log and metrics have each). */
  error: string;
  /** ISO time of the last listing that worked, if this plumber saw one. */
  lastGoodAt?: string;
  /** The app's branch heads in that listing: branch → commit. */
  lastGoodHeads?: Record<string, string>;
}

export const SOURCE_KEYS = { failingSince: "sourceFailingSince", error: "sourceError", lastGoodAt: "sourceLastGoodAt", lastGoodHeads: "sourceLastGoodHeads" } as const;

const ERROR_MAX = 500;

export function sourceRecordToData(r: SourceRecord): Record<string, string> {
  const data: Record<string, string> = { [SOURCE_KEYS.failingSince]: r.failingSince, [SOURCE_KEYS.error]: r.error.slice(0, ERROR_MAX) };
  if (r.lastGoodAt) data[SOURCE_KEYS.lastGoodAt] = r.lastGoodAt;
  if (r.lastGoodHeads && Object.keys(r.lastGoodHeads).length) data[SOURCE_KEYS.lastGoodHeads] = JSON.stringify(r.lastGoodHeads);
  return data;
}

/** The record in a state ConfigMap's data; undefined when the source is not failing. */
export function sourceRecordFromData(data: Record<string, string> | undefined): SourceRecord | undefined {
  const since = data?.[SOURCE_KEYS.failingSince];
  if (!data || !since) return undefined;
  let heads: Record<string, string> | undefined;
  try {
    const raw = data[SOURCE_KEYS.lastGoodHeads];
    heads = raw ? (JSON.parse(raw) as Record<string, string>) : undefined;
  } catch {
    heads = undefined;
  }
  return { failingSince: since, error: data[SOURCE_KEYS.error] ?? "", lastGoodAt: data[SOURCE_KEYS.lastGoodAt] || undefined, lastGoodHeads: heads };
}

/** One line for status and Events: "failing since …: error; last good listing … (main=abc…)". */
export function describeSource(r: SourceRecord): string {
  const heads = Object.entries(r.lastGoodHeads ?? {})
    .map(([b, sha]) => `${b}=${sha.slice(0, 12)}`)
    .join(", ");
  const good = r.lastGoodAt ? `last good listing ${r.lastGoodAt}${heads ? ` (${heads})` : ""}` : "no good listing since plumber started";
  return `source failing since ${r.failingSince}: ${r.error.split("\n")[0]}; ${good}`;
}

export type SourceTransition = "failing" | "recovered";

/** A repo's source state in memory: pure, with an injected clock. */
export class SourceHealth {
  failingSince?: number;
  error?: string;
  /** Failed listings in a row. */
  failures = 0;
  lastGoodAt?: number;
  /** After a recovery: when the outage it ended had started. */
  recoveredFrom?: number;

  constructor(private readonly now: () => number = Date.now) {}

  get failing(): boolean {
    return this.failingSince !== undefined;
  }

  /** A listing worked. "recovered" when it had been failing. */
  listed(): SourceTransition | undefined {
    const was = this.failing;
    this.recoveredFrom = this.failingSince;
    this.failingSince = undefined;
    this.error = undefined;
    this.failures = 0;
    this.lastGoodAt = this.now();
    return was ? "recovered" : undefined;
  }

  /** A listing failed. "failing" on the first failure of an outage. */
  failed(error: string): SourceTransition | undefined {
    this.failures++;
    this.error = error;
    if (this.failing) return undefined;
    this.failingSince = this.now();
    return "failing";
  }

  /** An outage recorded earlier (by a previous process) started before this one saw it. */
  adopt(since: number): void {
    if (this.failingSince !== undefined && since < this.failingSince) this.failingSince = since;
  }
}

/** An app's record written: `next` when the source started failing, `previous` (the outage's) when it was cleared. */
export interface SourceChange {
  app: string;
  next?: SourceRecord;
  previous?: SourceRecord;
}

/** Where an app's source record lives: its cluster and state namespace. */
export interface SourceStore {
  load(app: string): Promise<SourceRecord | undefined>;
  /** undefined: the source works again (the keys are removed). */
  save(app: string, r: SourceRecord | undefined): Promise<void>;
}

/** A SourceStore over the apps' state ConfigMaps. */
export function clusterSourceStore(where: (app: string) => { client: KubeClient; namespace: string } | undefined): SourceStore {
  return {
    async load(app) {
      const w = where(app);
      return w ? sourceRecordFromData(await readStateData(w.client, w.namespace, app)) : undefined;
    },
    async save(app, r) {
      const w = where(app);
      if (w) await writeNotes(w.client, w.namespace, app, "source", r ? sourceRecordToData(r) : {});
    },
  };
}

/**
 * Keeps each app's recorded source state in line with the repo's, writing only when they differ.
 * What is recorded is read once per app per process (a GET), then known; a failed read or write
 * is tried again next cycle.
 */
export class SourceRecords {
  /** null: known to record nothing. Absent: not read yet. */
  private readonly recorded = new Map<string, SourceRecord | null>();
  /** Per app, its branch heads in the last listing that worked. */
  private readonly heads = new Map<string, Record<string, string>>();

  constructor(
    private readonly store: SourceStore,
    private readonly health: SourceHealth,
    private readonly log: Logger,
  ) {}

  /** After a good listing: the heads each app follows in it. */
  rememberHeads(app: string, heads: Record<string, string>): void {
    this.heads.set(app, heads);
  }

  /** The recorded state of `app`, read once. */
  private async known(app: string): Promise<SourceRecord | null> {
    const have = this.recorded.get(app);
    if (have !== undefined) return have;
    const r = (await this.store.load(app)) ?? null;
    this.recorded.set(app, r);
    return r;
  }

  /** Brings every app's record in line with the repo's health; returns the records changed. */
  async sync(apps: string[]): Promise<SourceChange[]> {
    const written: SourceChange[] = [];
    for (const app of apps) {
      try {
        const rec = await this.known(app);
        if (!this.health.failing) {
          if (rec) {
            await this.store.save(app, undefined);
            this.recorded.set(app, null);
            written.push({ app, previous: rec });
          }
          continue;
        }
        if (rec) {
          // Recorded by this process, or by an earlier one during the same outage: keep its start.
          const since = Date.parse(rec.failingSince);
          if (Number.isFinite(since)) this.health.adopt(since);
          continue;
        }
        const next: SourceRecord = {
          failingSince: new Date(this.health.failingSince as number).toISOString(),
          error: this.health.error ?? "",
          ...(this.health.lastGoodAt !== undefined ? { lastGoodAt: new Date(this.health.lastGoodAt).toISOString() } : {}),
          ...(this.heads.has(app) ? { lastGoodHeads: this.heads.get(app) } : {}),
        };
        await this.store.save(app, next);
        this.recorded.set(app, next);
        written.push({ app, next });
      } catch (e) {
        this.recorded.delete(app);
        this.log.warn({ app, err: e instanceof Error ? e.message : String(e) }, "could not record the source's status; trying again next cycle");
      }
    }
    return written;
  }

  /** What `app` records now, as far as this process knows. */
  record(app: string): SourceRecord | undefined {
    return this.recorded.get(app) ?? undefined;
  }
}
