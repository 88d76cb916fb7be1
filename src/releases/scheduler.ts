// The release loop. Each tick reads the release's state from the cluster and
//   1. finishes what is open: creates runs whose slot was claimed but not created (a crash
//      between the two), reads the outcome of runs still going;
//   2. decides from the stored last slot what is due (slots.ts): fire the newest due slot when
//      inside the catch-up window, record the rest as missed;
//   3. chooses the revision, renders the template, applies skipIfUnchanged and the concurrency
//      policy, then CLAIMS the slot with an optimistic-concurrency write (update with the
//      resourceVersion read; 409 means another plumber claimed it first) and only then creates
//      the run, under a name derived from release and slot, so a retry cannot create it twice.
// `tick(now)` is the whole decision for one instant (tests drive it with their own clock);
// `run(signal)` calls it at each slot and, while runs are going, every trackInterval.

import type { HttpClient } from "../git/http.js";
import type { ReleaseConfig } from "../config/types.js";
import { GitSourceError, type GitRepo } from "../git/repo.js";
import { KubeApiError, type KubeClient } from "../kube/client.js";
import type { Discovery } from "../kube/discovery.js";
import type { Logger } from "../log.js";
import type { ReleaseStep } from "../observe/events.js";
import type { AppState } from "../state/store.js";
import type { KubeObject } from "../types.js";
import { sleep } from "../util/pool.js";
import { chooseRevision, TemplateReader } from "./revision.js";
import { RunClient, runName, type LiveRun } from "./runs.js";
import { CronSchedule, decideSlots, manualId, slotId, type SlotDecision } from "./slots.js";
import { OPEN_RESULTS, ReleaseStateStore, type ReleaseRecord, type ReleaseState } from "../state/release.js";
import { renderRun, TemplateError } from "./template.js";

/**
 * What happened to a release (its tick's result; src/releases/wiring.ts tells observers of it as a
 * "release" event). Emitted once, by the plumber whose write recorded it.
 */
export interface ReleaseEvent {
  type: ReleaseStep;
  release: string;
  record?: ReleaseRecord;
  message?: string;
}

export interface ReleaseSchedulerOptions {
  release: ReleaseConfig;
  repo: GitRepo;
  /** Unused: a lagged revision's history is fetched with `repo`'s own transport (GitRepo.historyMirror). Callers may drop it. */
  http?: HttpClient;
  client: KubeClient;
  discovery: Discovery;
  stateNamespace: string;
  /** The app's state in its cluster, for revision: {deployedTo}. */
  appState?: (app: string) => Promise<AppState | undefined>;
  log: Logger;
  clock?: () => Date;
  onEvent?: (e: ReleaseEvent) => void;
  /** Called before any write to the cluster (e.g. the wrong-cluster guard); throws to stop. */
  guard?: () => Promise<void>;
  /** How often runs still going are looked at. Default 15s. */
  trackIntervalMs?: number;
  /** The longest sleep between ticks. Default 5m. */
  idleIntervalMs?: number;
}

export interface TickResult {
  events: ReleaseEvent[];
  state?: ReleaseState;
  decision?: SlotDecision;
  /** The next slot after now. */
  next?: Date;
  /** A due slot could not be decided (git or the cluster unreachable): tick again soon. */
  retry?: boolean;
}

/** A permanent problem with this slot (template, revision): recorded, not retried. */
class SlotProblem extends Error {}

function isTransient(e: unknown): boolean {
  if (e instanceof KubeApiError) return e.transient;
  if (e instanceof GitSourceError) return e.retryable;
  return !(e instanceof SlotProblem || e instanceof TemplateError || (e instanceof Error && e.name === "FileProblemError"));
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

interface Prepared {
  revision: string;
  object: KubeObject;
  /** Where the revision came from, for a lagged promotion. */
  note?: string;
}

export class ReleaseScheduler {
  readonly release: ReleaseConfig;
  readonly schedule: CronSchedule;
  readonly store: ReleaseStateStore;
  readonly runs: RunClient;
  private readonly templates: TemplateReader;
  private readonly clock: () => Date;
  private readonly log: Logger;

  constructor(private readonly opts: ReleaseSchedulerOptions) {
    this.release = opts.release;
    this.schedule = new CronSchedule(opts.release.schedule, opts.release.timezone);
    this.store = new ReleaseStateStore(opts.client, opts.stateNamespace);
    this.runs = new RunClient(opts.client, opts.discovery);
    this.templates = new TemplateReader(opts.repo);
    this.clock = opts.clock ?? (() => new Date());
    this.log = opts.log.child({ release: opts.release.name });
  }

  private init(now: Date): () => ReleaseState {
    return () => ({ release: this.release.name, since: now.toISOString(), history: [] });
  }

  private emit(events: ReleaseEvent[], e: Omit<ReleaseEvent, "release">): void {
    const ev: ReleaseEvent = { release: this.release.name, ...e };
    events.push(ev);
    const fields = { run: ev.record?.run, slot: ev.record?.slot, revision: ev.record?.revision, result: ev.record?.result };
    if (ev.type === "error") this.log.warn({ ...fields, err: ev.message }, `release ${ev.type}`);
    else this.log.info({ ...fields, detail: ev.record?.message }, `release ${ev.type}`);
    try {
      this.opts.onEvent?.(ev);
    } catch (err) {
      this.log.warn({ err: message(err) }, "release event handler failed");
    }
  }

  /** Reads the state without writing (for `plumber releases`). */
  async status(now: Date = this.clock()): Promise<{ state?: ReleaseState; upcoming: Date[] }> {
    const state = await this.store.load(this.release.name);
    return { ...(state ? { state } : {}), upcoming: this.schedule.upcoming(now, 3) };
  }

  /** One decision at `now`. Throws only when the cluster cannot be read. */
  async tick(now: Date = this.clock()): Promise<TickResult> {
    const events: ReleaseEvent[] = [];
    await this.opts.guard?.();
    let state = await this.store.load(this.release.name);
    if (!state) {
      // First sight of this release: slots from now on count, none from before.
      const res = await this.store.update(this.release.name, this.init(now), (s) => ({ changed: s.resourceVersion === undefined, value: undefined }));
      state = res.state;
    }
    state = await this.finishOpen(state, now, events);

    const next = this.schedule.next(now);
    const result: TickResult = { events, state, ...(next ? { next } : {}) };
    if (this.release.suspend) return result;

    const after = new Date(Math.max(Date.parse(state.since), state.lastSlot ? Date.parse(state.lastSlot) : 0));
    const decision = decideSlots(this.schedule, after, now, this.release.catchUpMs);
    result.decision = decision;
    if (!decision.newest) return result;
    const newest = decision.newest;

    // What the due slot becomes: a run, or a record of why not.
    let fireRecord: ReleaseRecord | undefined;
    let prepared: Prepared | undefined;
    if (decision.fire) {
      const slot = decision.fire;
      const base: ReleaseRecord = { slot: slot.toISOString(), trigger: "scheduled", result: "Skipped", firedAt: now.toISOString() };
      try {
        const p = await this.prepare(slot, "scheduled", runName(this.release.name, slot, "scheduled"));
        if ("skip" in p) {
          fireRecord = { ...base, message: p.skip };
        } else if (this.release.skipIfUnchanged && state.releasedRevision === p.revision) {
          fireRecord = { ...base, revision: p.revision, message: `revision ${p.revision.slice(0, 12)} was released already (skipIfUnchanged)` };
        } else {
          const active = this.release.concurrency === "forbid" ? await this.activeRuns(p.object) : [];
          if (active.length > 0) {
            fireRecord = { ...base, revision: p.revision, message: `${active.map((r) => r.name).join(", ")} still running (concurrency: forbid)` };
          } else {
            prepared = p;
            fireRecord = {
              ...base,
              result: "Claimed",
              revision: p.revision,
              run: p.object.metadata.name,
              apiVersion: p.object.apiVersion,
              kind: p.object.kind,
              ...(p.note ? { message: p.note } : {}),
            };
          }
        }
      } catch (e) {
        if (isTransient(e)) {
          // Nothing recorded: the slot is tried again next tick while it is inside the window.
          this.emit(events, { type: "error", message: `slot ${slot.toISOString()}: ${message(e)} (will retry)` });
          result.retry = true;
          return result;
        }
        fireRecord = { ...base, result: "Failed", reason: "TemplateError", message: message(e), finishedAt: now.toISOString() };
      }
    }

    const missedRecord: ReleaseRecord | undefined =
      decision.missed.count > 0 || decision.missed.more
        ? {
            slot: (decision.missed.last ?? newest).toISOString(),
            trigger: "scheduled",
            result: "Missed",
            count: decision.missed.count,
            ...(decision.missed.first ? { firstSlot: decision.missed.first.toISOString() } : {}),
            message:
              `${decision.missed.more ? "more than " : ""}${decision.missed.count} slot(s) came due while plumber was not running` +
              (decision.fire ? "; only the newest fires" : this.release.catchUpMs !== undefined ? `; outside the catch-up window` : ""),
          }
        : undefined;

    // The claim: one conditional write records the decision for every due slot.
    const claim = await this.store.update(this.release.name, this.init(now), (s) => {
      const last = s.lastSlot ? Date.parse(s.lastSlot) : -Infinity;
      if (last >= newest.getTime()) return { changed: false, value: false };
      s.lastSlot = newest.toISOString();
      const add: ReleaseRecord[] = [];
      if (fireRecord) add.push(fireRecord);
      if (missedRecord) add.push(missedRecord);
      s.history = [...add, ...s.history];
      if (fireRecord?.result === "Claimed" && fireRecord.revision) s.releasedRevision = fireRecord.revision;
      return { changed: true, value: true };
    });
    result.state = claim.state;
    if (!claim.value) {
      this.log.debug({ slot: newest.toISOString() }, "slot already taken by another plumber");
      return result;
    }
    if (missedRecord) this.emit(events, { type: "missed", record: missedRecord });
    if (!fireRecord) return result;
    if (fireRecord.result !== "Claimed") {
      this.emit(events, { type: fireRecord.result === "Failed" ? "error" : "skipped", record: fireRecord, ...(fireRecord.message ? { message: fireRecord.message } : {}) });
      return result;
    }
    result.state = await this.complete(claim.state, fireRecord, prepared, now, events);
    return result;
  }

  /**
   * `plumber release NAME --now`: fires one run at once, recorded as manual. The concurrency
   * policy applies (forbid refuses while a run is going); skipIfUnchanged does not.
   */
  async fireNow(now: Date = this.clock(), by?: string): Promise<ReleaseRecord> {
    const events: ReleaseEvent[] = [];
    await this.opts.guard?.();
    const at = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const name = runName(this.release.name, at, "manual");
    const p = await this.prepare(at, "manual", name);
    if ("skip" in p) throw new Error(`release ${this.release.name}: ${p.skip}`);
    if (this.release.concurrency === "forbid") {
      const active = await this.activeRuns(p.object);
      if (active.length > 0) throw new Error(`release ${this.release.name}: ${active.map((r) => r.name).join(", ")} still running (concurrency: forbid)`);
    }
    const record: ReleaseRecord = {
      slot: at.toISOString(),
      trigger: "manual",
      result: "Claimed",
      run: name,
      revision: p.revision,
      apiVersion: p.object.apiVersion,
      kind: p.object.kind,
      firedAt: now.toISOString(),
      ...(by ? { by } : {}),
    };
    const claim = await this.store.update(this.release.name, this.init(now), (s) => {
      if (s.history.some((r) => r.run === name)) return { changed: false, value: false };
      s.history = [record, ...s.history];
      s.releasedRevision = p.revision;
      return { changed: true, value: true };
    });
    if (!claim.value) throw new Error(`release ${this.release.name}: ${name} was fired already`);
    const state = await this.complete(claim.state, record, p, now, events);
    return state.history.find((r) => r.run === name) ?? record;
  }

  /** The revision and the rendered run for a slot; { skip } when there is nothing to release. */
  private async prepare(slot: Date, trigger: "scheduled" | "manual", name: string): Promise<Prepared | { skip: string }> {
    const choice = await chooseRevision(this.release, { repo: this.opts.repo, appState: this.appState() }, slot);
    if ("skip" in choice) return choice;
    const object = await this.render(choice.revision, slot, trigger, name);
    return { revision: choice.revision, object, ...(choice.note ? { note: choice.note } : {}) };
  }

  private appState(): (app: string) => Promise<AppState | undefined> {
    return (
      this.opts.appState ??
      (async (app: string) => {
        throw new SlotProblem(`no connection to the cluster of app ${app}`);
      })
    );
  }

  /**
   * The commit the template is read at: the released revision itself, or, when that is a commit of
   * another repo (a deployedTo app of a code repo), the head of the release's own branch.
   */
  private async templateRevision(revision: string): Promise<string> {
    const rev = this.release.revision;
    if (rev.kind !== "deployedTo" || rev.repo === undefined) return revision;
    const head = (await this.opts.repo.listHeads()).get(this.release.branch);
    if (!head) throw new SlotProblem(`branch "${this.release.branch}" does not exist in repo ${this.release.repo}`);
    return head;
  }

  private async render(revision: string, slot: Date, trigger: "scheduled" | "manual", name: string): Promise<KubeObject> {
    const t = this.release.template;
    const template = "inline" in t ? structuredClone(t.inline) : await this.templates.read(this.release.branch, await this.templateRevision(revision), t.path);
    const label = trigger === "manual" ? manualId(slot) : slotId(slot);
    return renderRun(
      template,
      { release: this.release.name, revision, slot, timezone: this.release.timezone, trigger, runName: name, params: this.release.params },
      this.release.namespace,
      label,
    );
  }

  private async activeRuns(obj: KubeObject, except?: string): Promise<LiveRun[]> {
    const runs = await this.runs.list(obj.apiVersion, obj.kind, this.release.namespace, this.release.name);
    return runs.filter((r) => r.outcome.phase === "Running" && r.name !== except && !r.object.metadata.deletionTimestamp);
  }

  /**
   * Makes a claimed record real: cancels what `replace` replaces, creates the run (AlreadyExists
   * is fine: a retry), and records it Running. A permanent failure records it Failed.
   */
  private async complete(state: ReleaseState, record: ReleaseRecord, prepared: Prepared | undefined, now: Date, events: ReleaseEvent[]): Promise<ReleaseState> {
    const name = record.run as string;
    let obj: KubeObject;
    try {
      obj = prepared?.object ?? (await this.render(record.revision as string, new Date(record.slot), record.trigger, name));
    } catch (e) {
      if (isTransient(e)) {
        this.emit(events, { type: "error", record, message: `creating ${name}: ${message(e)} (will retry)` });
        return state;
      }
      return this.finishRecord(name, now, events, { result: "Failed", reason: "TemplateError", message: message(e) });
    }
    try {
      const replaced: string[] = [];
      if (this.release.concurrency === "replace") {
        for (const r of await this.activeRuns(obj, name)) {
          await this.runs.cancel(r.object.apiVersion, r.object.kind, this.release.namespace, r.name);
          replaced.push(r.name);
        }
      }
      const created = await this.runs.create(obj);
      let cancelledRecords: ReleaseRecord[] = [];
      const res = await this.store.update(this.release.name, this.init(now), (s) => {
        const rec = s.history.find((r) => r.run === name);
        let changed = false;
        if (rec && rec.result === "Claimed") {
          rec.result = "Running";
          changed = true;
        }
        cancelledRecords = [];
        for (const r of s.history) {
          if (r.run && replaced.includes(r.run) && OPEN_RESULTS.has(r.result)) {
            r.result = "Cancelled";
            r.reason = "Replaced";
            r.message = `replaced by ${name} (concurrency: replace)`;
            r.finishedAt = now.toISOString();
            cancelledRecords.push({ ...r });
            changed = true;
          }
        }
        return { changed, value: rec ? { ...rec } : undefined };
      });
      for (const c of cancelledRecords) this.emit(events, { type: "cancelled", record: c });
      if (res.written && res.value) {
        this.emit(events, { type: "fired", record: res.value, ...(created === "exists" ? { message: "the run existed already (created before a restart)" } : {}) });
      }
      return res.state;
    } catch (e) {
      if (isTransient(e)) {
        this.emit(events, { type: "error", record, message: `creating ${name}: ${message(e)} (will retry)` });
        return state;
      }
      return this.finishRecord(name, now, events, { result: "Failed", reason: e instanceof KubeApiError ? e.reason : "CreateFailed", message: message(e) });
    }
  }

  /** Records a final result for the record of run `name`; emits `finished` when this write did it. */
  private async finishRecord(
    name: string,
    now: Date,
    events: ReleaseEvent[],
    outcome: { result: "Succeeded" | "Failed" | "Cancelled"; reason?: string; message?: string; finishedAt?: string },
  ): Promise<ReleaseState> {
    const res = await this.store.update(this.release.name, this.init(now), (s) => {
      const rec = s.history.find((r) => r.run === name);
      if (!rec || !OPEN_RESULTS.has(rec.result)) return { changed: false, value: undefined };
      rec.result = outcome.result;
      if (outcome.reason) rec.reason = outcome.reason;
      if (outcome.message) rec.message = outcome.message;
      rec.finishedAt = outcome.finishedAt ?? now.toISOString();
      if (outcome.result !== "Succeeded" && s.releasedRevision === rec.revision) {
        // A failed release did not release its revision: skipIfUnchanged fires it again.
        const other = s.history.find((r) => r !== rec && r.run && r.revision && (OPEN_RESULTS.has(r.result) || r.result === "Succeeded"));
        if (other?.revision) s.releasedRevision = other.revision;
        else delete s.releasedRevision;
      }
      return { changed: true, value: { ...rec } };
    });
    if (res.written && res.value) this.emit(events, { type: "finished", record: res.value });
    return res.state;
  }

  /** Creates runs left Claimed and reads the outcome of runs still going. */
  private async finishOpen(state: ReleaseState, now: Date, events: ReleaseEvent[]): Promise<ReleaseState> {
    for (const rec of state.history.filter((r) => OPEN_RESULTS.has(r.result) && r.run)) {
      const name = rec.run as string;
      if (rec.result === "Claimed") {
        state = await this.complete(state, rec, undefined, now, events);
        continue;
      }
      let live: LiveRun | undefined;
      try {
        live = await this.runs.get(rec.apiVersion ?? "tekton.dev/v1", rec.kind ?? "PipelineRun", this.release.namespace, name);
      } catch (e) {
        // Not fatal for the tick: a due slot still fires; the run is looked at again next tick.
        this.emit(events, { type: "error", record: rec, message: `reading ${name}: ${message(e)}` });
        continue;
      }
      if (!live) {
        state = await this.finishRecord(name, now, events, { result: "Failed", reason: "Deleted", message: "the run was deleted before it finished" });
        continue;
      }
      if (live.outcome.phase === "Running") continue;
      state = await this.finishRecord(name, now, events, {
        result: live.outcome.phase,
        ...(live.outcome.reason ? { reason: live.outcome.reason } : {}),
        ...(live.outcome.message ? { message: live.outcome.message } : {}),
        ...(live.outcome.finishedAt ? { finishedAt: live.outcome.finishedAt } : {}),
      });
    }
    return state;
  }

  /** The wait after a tick: to the next slot, or trackInterval while runs are going, at most idleInterval. */
  delayAfter(res: TickResult, now: Date = this.clock()): number {
    let d = this.opts.idleIntervalMs ?? 5 * 60_000;
    if (res.next) d = Math.min(d, Math.max(0, res.next.getTime() - now.getTime()) + 50);
    if (res.retry || res.state?.history.some((r) => OPEN_RESULTS.has(r.result))) d = Math.min(d, this.opts.trackIntervalMs ?? 15_000);
    return d;
  }

  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      let delay: number;
      try {
        const res = await this.tick(this.clock());
        failures = 0;
        delay = this.delayAfter(res);
      } catch (e) {
        failures++;
        this.log.warn({ err: message(e), failures }, "release tick failed; retrying");
        delay = Math.min((this.opts.trackIntervalMs ?? 15_000) * 2 ** Math.min(failures - 1, 6), this.opts.idleIntervalMs ?? 5 * 60_000);
      }
      await sleep(delay, signal);
    }
  }
}
