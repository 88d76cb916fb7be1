// Release runs in the cluster: create (idempotently, by a deterministic name), cancel the way each
// kind supports, and read the outcome from status conditions.
//
//   PipelineRun  cancel: spec.status "Cancelled"          outcome: condition Succeeded True/False
//   TaskRun      cancel: spec.status "TaskRunCancelled"   outcome: condition Succeeded True/False
//   Job          cancel: delete, propagationPolicy Background (pods go with it)
//                                                        outcome: condition Complete / Failed True

import type { KubeClient } from "../kube/client.js";
import { KubeApiError } from "../kube/client.js";
import { resourcePath, type Discovery, type ResourceMapping } from "../kube/discovery.js";
import type { KubeObject } from "../types.js";
import { manualId, slotId } from "./slots.js";
import { RELEASE_LABEL } from "./template.js";

export const MAX_NAME = 63;

/**
 * A run's name: `<release>-<yyyymmddhhmm>` of the slot in UTC, or
 * `<release>-manual-<yyyymmddhhmmss>` for `plumber release NAME --now`. The release part is
 * shortened so the whole stays within 63 characters and the slot part survives.
 */
export function runName(release: string, at: Date, trigger: "scheduled" | "manual"): string {
  const suffix = trigger === "manual" ? `-manual-${manualId(at)}` : `-${slotId(at)}`;
  const head = release.slice(0, MAX_NAME - suffix.length).replace(/-+$/, "");
  return `${head}${suffix}`;
}

export type RunPhase = "Running" | "Succeeded" | "Failed" | "Cancelled";

export interface RunOutcome {
  phase: RunPhase;
  reason?: string;
  message?: string;
  finishedAt?: string;
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

const CANCEL_REASONS = new Set(["Cancelled", "PipelineRunCancelled", "TaskRunCancelled", "StoppedRunFinally", "CancelledRunFinally"]);

/** The outcome a run's status shows. */
export function runOutcome(obj: { kind?: string; status?: unknown }): RunOutcome {
  const status = (obj.status ?? {}) as { conditions?: Condition[]; completionTime?: string };
  const conds = Array.isArray(status.conditions) ? status.conditions : [];
  const withDetails = (phase: RunPhase, c: Condition, at?: string): RunOutcome => {
    const out: RunOutcome = { phase };
    if (c.reason) out.reason = c.reason;
    if (c.message) out.message = c.message;
    const t = at ?? c.lastTransitionTime;
    if (t) out.finishedAt = t;
    return out;
  };
  if (obj.kind === "Job") {
    const complete = conds.find((c) => c.type === "Complete" && c.status === "True");
    if (complete) return withDetails("Succeeded", { ...complete, reason: complete.reason ?? "Complete" }, status.completionTime);
    const failed = conds.find((c) => c.type === "Failed" && c.status === "True");
    if (failed) return withDetails("Failed", { ...failed, reason: failed.reason ?? "Failed" });
    return { phase: "Running" };
  }
  const succeeded = conds.find((c) => c.type === "Succeeded");
  if (succeeded?.status === "True") return withDetails("Succeeded", succeeded);
  if (succeeded?.status === "False") {
    return withDetails(succeeded.reason && CANCEL_REASONS.has(succeeded.reason) ? "Cancelled" : "Failed", succeeded);
  }
  return { phase: "Running" };
}

export interface LiveRun {
  name: string;
  object: KubeObject;
  outcome: RunOutcome;
}

export class RunClient {
  constructor(
    private readonly client: KubeClient,
    private readonly discovery: Discovery,
  ) {}

  async mapping(apiVersion: string, kind: string): Promise<ResourceMapping> {
    await this.discovery.ensureLoaded();
    let m = this.discovery.lookup(apiVersion, kind);
    if (!m) {
      await this.discovery.refresh();
      m = this.discovery.lookup(apiVersion, kind);
    }
    if (!m) throw new KubeApiError(404, "NotFound", `the cluster does not serve ${apiVersion} ${kind} (is Tekton installed?)`, "discovery");
    return m;
  }

  /** Creates the run; an existing run of that name (a retry after a crash) counts as created. */
  async create(obj: KubeObject): Promise<"created" | "exists"> {
    const m = await this.mapping(obj.apiVersion, obj.kind);
    try {
      await this.client.request({ method: "POST", path: resourcePath(m, obj.metadata.namespace), body: JSON.stringify(obj) });
      return "created";
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 409 && e.reason === "AlreadyExists") return "exists";
      throw e;
    }
  }

  async get(apiVersion: string, kind: string, namespace: string, name: string): Promise<LiveRun | undefined> {
    const m = await this.mapping(apiVersion, kind);
    const obj = await this.client.getOptional<KubeObject>(resourcePath(m, namespace, name));
    return obj ? { name, object: obj, outcome: runOutcome({ kind, status: obj.status }) } : undefined;
  }

  /** The release's runs of this kind in the namespace (by label), with their outcomes. */
  async list(apiVersion: string, kind: string, namespace: string, release: string): Promise<LiveRun[]> {
    const m = await this.mapping(apiVersion, kind);
    const res = await this.client.request<{ items?: KubeObject[] }>({
      method: "GET",
      path: resourcePath(m, namespace),
      query: { labelSelector: `${RELEASE_LABEL}=${release}` },
      list: true,
    });
    // Items of a list carry no apiVersion and kind of their own.
    return (res.body.items ?? []).map((o) => ({ name: o.metadata.name, object: { ...o, apiVersion, kind }, outcome: runOutcome({ kind, status: o.status }) }));
  }

  /** Cancels a run the way its kind supports; a run that is already gone is fine. */
  async cancel(apiVersion: string, kind: string, namespace: string, name: string): Promise<void> {
    const m = await this.mapping(apiVersion, kind);
    const path = resourcePath(m, namespace, name);
    try {
      if (kind === "Job") {
        await this.client.request({
          method: "DELETE",
          path,
          body: JSON.stringify({ apiVersion: "v1", kind: "DeleteOptions", propagationPolicy: "Background" }),
        });
        return;
      }
      const status = kind === "TaskRun" ? "TaskRunCancelled" : "Cancelled";
      await this.client.request({
        method: "PATCH",
        path,
        contentType: "application/merge-patch+json",
        body: JSON.stringify({ spec: { status } }),
      });
    } catch (e) {
      if (e instanceof KubeApiError && e.notFound) return;
      throw e;
    }
  }
}
