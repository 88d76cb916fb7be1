// Kubernetes Events (events.k8s.io/v1) for deploys, failures and drift repairs, as Flux and Argo
// CD emit them, attached to the app's state ConfigMap (`kubectl describe configmap
// plumber-app-<app>` or `kubectl events --for configmap/plumber-app-<app>` shows them).
// Rate-limited like client-go's EventCorrelator: a token bucket per app (burst 25, one token
// per 5 minutes) and identical events for one app within 10 minutes are dropped. Emitting never
// blocks or fails a reconcile. Which event gets an Event, and with what reason, is decided in one
// place: eventsFor() below.
import type { KubeClient } from "../kube/client.js";
import type { Logger } from "../log.js";
import type { ContestNoticeEvent, ObservedEvent, Observer } from "../observe/events.js";
import { describeKey, describeManagers } from "../reconcile/contested.js";
import { describeSource } from "../state/source.js";
import { stateObjectName } from "../state/store.js";
import { microTime } from "./leader.js";
import { withPermissionHint } from "./permissions.js";

export type EventType = "Normal" | "Warning";

export interface PlumberEvent {
  app: string;
  type: EventType;
  /** UpperCamelCase: Deployed, ReconcileFailed, DriftRepaired. */
  reason: string;
  note: string;
}

export interface RateLimitOptions {
  burst?: number;
  refillMs?: number;
  dedupeMs?: number;
  now?: () => number;
}

export type LimitVerdict = "ok" | "rate-limited" | "duplicate";

/** Per key (an app): a token bucket, and a memory of recent identical events. */
export class EventRateLimiter {
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly dedupeMs: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly recent = new Map<string, number>();

  constructor(opts: RateLimitOptions = {}) {
    this.burst = opts.burst ?? 25;
    this.refillMs = opts.refillMs ?? 5 * 60_000;
    this.dedupeMs = opts.dedupeMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  check(key: string, fingerprint: string): LimitVerdict {
    const now = this.now();
    for (const [k, at] of this.recent) if (now - at >= this.dedupeMs) this.recent.delete(k);
    const dk = `${key}\u0000${fingerprint}`;
    if (this.recent.has(dk)) return "duplicate";
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / this.refillMs);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens < 1) return "rate-limited";
    b.tokens -= 1;
    this.recent.set(dk, now);
    return "ok";
  }
}

export interface EventRecorderOptions {
  client: KubeClient;
  /** Where the state ConfigMaps live (state.namespace). */
  namespace: string;
  /** reportingInstance: this replica. */
  identity: string;
  limiter: EventRateLimiter;
  log: Logger;
  onOutcome?: (reason: string, outcome: "emitted" | "suppressed" | "failed") => void;
}

const NOTE_MAX = 1024;
export const REPORTING_CONTROLLER = "plumber.dev/plumber";

export class EventRecorder {
  private readonly uids = new Map<string, string>();
  private readonly inflight = new Set<Promise<void>>();
  private warned = false;

  constructor(private readonly opts: EventRecorderOptions) {}

  /** Queues the event (fire and forget). */
  record(ev: PlumberEvent): void {
    const verdict = this.opts.limiter.check(`${this.opts.namespace}/${ev.app}`, `${ev.type}|${ev.reason}|${ev.note}`);
    if (verdict !== "ok") {
      this.opts.onOutcome?.(ev.reason, "suppressed");
      this.opts.log.debug({ app: ev.app, reason: ev.reason, verdict }, "event suppressed");
      return;
    }
    const p = this.emit(ev).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  /** Waits for events being sent. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  private async emit(ev: PlumberEvent): Promise<void> {
    const { client, namespace } = this.opts;
    const name = stateObjectName(ev.app);
    try {
      let uid = this.uids.get(ev.app);
      if (uid === undefined) {
        const cm = await client.getOptional<{ metadata?: { uid?: string } }>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${name}`);
        uid = cm?.metadata?.uid ?? "";
        if (uid) this.uids.set(ev.app, uid);
      }
      const nowMs = Date.now();
      const event = {
        apiVersion: "events.k8s.io/v1",
        kind: "Event",
        metadata: { name: `${name}.${(BigInt(nowMs) * 1_000_000n + BigInt(Math.floor(Math.random() * 1e6))).toString(16)}`, namespace },
        eventTime: microTime(nowMs),
        reportingController: REPORTING_CONTROLLER,
        reportingInstance: this.opts.identity.slice(0, 128),
        action: "Reconcile",
        reason: ev.reason,
        type: ev.type,
        note: ev.note.length > NOTE_MAX ? ev.note.slice(0, NOTE_MAX - 1) + "…" : ev.note,
        regarding: { apiVersion: "v1", kind: "ConfigMap", namespace, name, ...(uid ? { uid } : {}) },
      };
      await client.request({ method: "POST", path: `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`, body: JSON.stringify(event) });
      this.opts.onOutcome?.(ev.reason, "emitted");
    } catch (e) {
      this.opts.onOutcome?.(ev.reason, "failed");
      // Once per recorder at warn (a missing permission would otherwise repeat every event).
      const level = this.warned ? "debug" : "warn";
      this.warned = true;
      this.opts.log[level]({ app: ev.app, reason: ev.reason, err: e instanceof Error ? e.message : String(e) }, "could not record a Kubernetes event");
    }
  }
}

const short = (rev: string | undefined): string => (rev ? rev.slice(0, 12) : "?");

/** An Event to record in a cluster (the one the app deploys to). */
export interface ClusterEvent {
  cluster: string;
  event: PlumberEvent;
}

/**
 * The Kubernetes Events an observed event deserves: a reconcile's result (Deployed,
 * DriftRepaired, RolledBack, ReconcileFailed), objects becoming or ceasing to be contested
 * (FieldsContested, ContestResolved), an app's source failing or recovering (SourceFailing,
 * SourceRecovered). Notes are as `kubectl describe` shows them; failures are the message as is
 * (EventsObserver adds the RBAC hint to a 403).
 */
export function eventsFor(e: ObservedEvent): ClusterEvent[] {
  if (e.type === "cycle") {
    const out: ClusterEvent[] = [];
    const at = (event: PlumberEvent): ClusterEvent => ({ cluster: e.cluster, event });
    for (const n of e.contest?.notices ?? []) out.push(at(contestEvent(e.app, n)));
    const done = e.changes ?? "done";
    switch (e.outcome) {
      case "applied":
        out.push(at({ app: e.app, type: "Normal", reason: "Deployed", note: `revision ${short(e.revision)} applied: ${done}` }));
        break;
      case "repaired":
        out.push(at({ app: e.app, type: "Normal", reason: "DriftRepaired", note: `drift repaired at revision ${short(e.revision)}: ${done}` }));
        break;
      case "rolledBack":
        out.push(at({ app: e.app, type: "Warning", reason: "RolledBack", note: `revision ${short(e.failedRevision)} failed; rolled back to ${short(e.revision)}: ${e.message ?? ""}` }));
        break;
      case "failed":
        out.push(at({ app: e.app, type: "Warning", reason: "ReconcileFailed", note: e.revision ? `revision ${short(e.revision)}: ${e.message ?? ""}` : (e.message ?? "") }));
        break;
    }
    return out;
  }
  if (e.type === "source") {
    return e.changes.map((c) => ({
      cluster: c.cluster,
      event: c.next
        ? { app: c.app, type: "Warning", reason: "SourceFailing", note: `repo ${e.repo}: ${describeSource(c.next)}; the cluster keeps its current revision` }
        : { app: c.app, type: "Normal", reason: "SourceRecovered", note: `repo ${e.repo}: listing refs works again${c.previous ? ` (failing since ${c.previous.failingSince})` : ""}` },
    }));
  }
  return [];
}

/** The Event for an object becoming (or ceasing to be) contested by another field manager. */
export function contestEvent(app: string, n: ContestNoticeEvent): PlumberEvent {
  const what = describeKey(n.key);
  if (n.kind === "resolved") return { app, type: "Normal", reason: "ContestResolved", note: `${what}: no longer contested by ${describeManagers(n.managers)}` };
  const times = n.strikes === 1 ? "once" : `${n.strikes} times in a row`;
  return {
    app,
    type: "Warning",
    reason: "FieldsContested",
    note: `${what}: fields plumber applied were taken back by ${describeManagers(n.managers)} after its repair (${times}); plumber repairs it with backoff, next in ${n.nextInChecks ?? 0} drift checks (at most 1h)`,
  };
}

/** The Kubernetes Events Observer: records eventsFor(e) with the recorder of the event's cluster. */
export class EventsObserver implements Observer {
  private readonly recorders = new Map<string, EventRecorder>();

  constructor(private readonly log: Logger) {}

  /** The recorder for a cluster's events (set once the runtime's connections exist). */
  attach(cluster: string, recorder: EventRecorder): void {
    this.recorders.set(cluster, recorder);
  }

  observe(e: ObservedEvent): void {
    const failure = e.type === "cycle" && e.outcome === "failed" ? e.errorReason : undefined;
    for (const { cluster, event } of eventsFor(e)) {
      const recorder = this.recorders.get(cluster);
      if (event.reason === "ReconcileFailed" && failure === "WriteRefused") continue; // plumber's own refusal (standby, shutting down), not the app's failure
      if (event.reason === "ReconcileFailed" && failure === "Forbidden") {
        const hinted = withPermissionHint(event.note);
        this.log.error({ app: event.app, err: hinted }, "missing permission");
        recorder?.record({ ...event, note: hinted });
        continue;
      }
      recorder?.record(event);
    }
  }

  /** Waits for the events being sent. */
  async flush(): Promise<void> {
    await Promise.all([...this.recorders.values()].map((r) => r.flush()));
  }
}

