// Readiness rules per kind, in the spirit of kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status).
// Each rule reads one live object and says whether it is Current (ready), InProgress (not yet) or
// Failed (will not get there without a change). Rules are pure: no clock, no I/O.
//
// The registry is keyed by "group/Kind" ("apps/Deployment", "batch/Job"); kinds of the core group
// are keyed by the bare Kind ("Pod", "Service"). A rule may return undefined to leave the object
// to the generic rules (a Ready condition, else Current).

import type { KubeObject } from "../types.js";

export type HealthStatus = "Current" | "InProgress" | "Failed";

export interface Health {
  status: HealthStatus;
  /** A CamelCase reason, stable enough to match on ("LessReady", "ProgressDeadlineExceeded"). */
  reason: string;
  /** For people. */
  message: string;
}

export type HealthRule = (obj: KubeObject) => Health | undefined;

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export const current = (reason: string, message: string): Health => ({ status: "Current", reason, message });
export const inProgress = (reason: string, message: string): Health => ({ status: "InProgress", reason, message });
export const failed = (reason: string, message: string): Health => ({ status: "Failed", reason, message });

// ---- reading unstructured objects ----------------------------------------------------------

function get(obj: unknown, path: readonly string[]): unknown {
  let cur: unknown = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** An integer field, or `dflt` when absent or not a number. */
export function intField(obj: unknown, path: readonly string[], dflt: number): number {
  const v = get(obj, path);
  return typeof v === "number" && Number.isFinite(v) ? v : dflt;
}

export function stringField(obj: unknown, path: readonly string[]): string | undefined {
  const v = get(obj, path);
  return typeof v === "string" ? v : undefined;
}

/** status.conditions, keeping only well-formed entries. */
export function conditionsOf(obj: unknown): Condition[] {
  const raw = get(obj, ["status", "conditions"]);
  if (!Array.isArray(raw)) return [];
  const out: Condition[] = [];
  for (const c of raw) {
    if (c === null || typeof c !== "object") continue;
    const r = c as Record<string, unknown>;
    if (typeof r.type !== "string" || typeof r.status !== "string") continue;
    out.push({
      type: r.type,
      status: r.status,
      ...(typeof r.reason === "string" && r.reason ? { reason: r.reason } : {}),
      ...(typeof r.message === "string" && r.message ? { message: r.message } : {}),
    });
  }
  return out;
}

export function conditionOf(obj: unknown, type: string): Condition | undefined {
  return conditionsOf(obj).find((c) => c.type === type);
}

/** The API group of an apiVersion: "" for the core group ("v1"). */
export function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf("/");
  return i < 0 ? "" : apiVersion.slice(0, i);
}

/** The registry key of a kind: "group/Kind", or "Kind" for the core group. */
export function groupKindKey(apiVersion: string, kind: string): string {
  const group = groupOf(apiVersion);
  return group ? `${group}/${kind}` : kind;
}

function condText(c: Condition | undefined, fallback: string): string {
  if (!c) return fallback;
  return c.message ?? c.reason ?? fallback;
}

// ---- apps ----------------------------------------------------------------------------------

/**
 * Deployment: the new ReplicaSet has all replicas updated, available and ready, no old pods are
 * left, and the Progressing/Available conditions (when the controller has set them) agree.
 * Progressing=ProgressDeadlineExceeded is Failed. A paused Deployment is not waited for.
 */
export function deploymentHealth(obj: KubeObject): Health {
  const progressing = conditionOf(obj, "Progressing");
  const availableCond = conditionOf(obj, "Available");
  if (progressing?.reason === "ProgressDeadlineExceeded") {
    return failed("ProgressDeadlineExceeded", condText(progressing, "progress deadline exceeded"));
  }
  if (get(obj, ["spec", "paused"]) === true) {
    return current("Paused", "the Deployment is paused: its rollout is not waited for");
  }
  const spec = intField(obj, ["spec", "replicas"], 1);
  const replicas = intField(obj, ["status", "replicas"], 0);
  const updated = intField(obj, ["status", "updatedReplicas"], 0);
  const ready = intField(obj, ["status", "readyReplicas"], 0);
  const available = intField(obj, ["status", "availableReplicas"], 0);

  if (spec > replicas) return inProgress("LessReplicas", `replicas: ${replicas}/${spec}`);
  if (spec > updated) return inProgress("LessUpdated", `updated: ${updated}/${spec}`);
  if (replicas > spec) return inProgress("ExtraPods", `pending termination: ${replicas - spec} old pod(s)`);
  if (updated > available) return inProgress("LessAvailable", `available: ${available}/${updated}`);
  if (spec > ready) return inProgress("LessReady", `ready: ${ready}/${spec}`);
  // The real controller always sets both conditions; judge them only when present, so a status
  // with the counts alone (as a test or a simple controller writes it) still counts.
  if (progressing && !(progressing.status === "True" && progressing.reason === "NewReplicaSetAvailable")) {
    return inProgress("ReplicaSetNotAvailable", condText(progressing, "the new ReplicaSet is not available yet"));
  }
  if (availableCond && availableCond.status !== "True") {
    return inProgress("DeploymentNotAvailable", condText(availableCond, "the Deployment is not available"));
  }
  return current("Available", `Deployment is available; replicas: ${replicas}`);
}

/**
 * StatefulSet: all replicas exist and are ready, no extra pods, and the rollout is done: with a
 * RollingUpdate partition, the pods at or above the partition are updated; otherwise every pod
 * is updated and the current revision is the update revision. With updateStrategy OnDelete pods
 * are replaced only when someone deletes them, so only their count and readiness are waited for.
 */
export function statefulSetHealth(obj: KubeObject): Health {
  const strategy = stringField(obj, ["spec", "updateStrategy", "type"]) ?? "RollingUpdate";
  const spec = intField(obj, ["spec", "replicas"], 1);
  const replicas = intField(obj, ["status", "replicas"], 0);
  const ready = intField(obj, ["status", "readyReplicas"], 0);
  const currentReplicas = intField(obj, ["status", "currentReplicas"], 0);
  const updated = intField(obj, ["status", "updatedReplicas"], 0);
  const available = intField(obj, ["status", "availableReplicas"], -1);

  if (spec > replicas) return inProgress("LessReplicas", `replicas: ${replicas}/${spec}`);
  if (spec > ready) return inProgress("LessReady", `ready: ${ready}/${spec}`);
  if (available >= 0 && spec > available) return inProgress("LessAvailable", `available: ${available}/${spec}`);
  if (replicas > spec) return inProgress("ExtraPods", `pending termination: ${replicas - spec} pod(s)`);

  if (strategy === "OnDelete") {
    return current("OnDelete", `updateStrategy OnDelete: pods are replaced only when deleted; ready: ${ready}, updated: ${updated}/${spec}`);
  }
  const partition = intField(obj, ["spec", "updateStrategy", "rollingUpdate", "partition"], -1);
  if (partition > 0) {
    const want = Math.max(0, spec - partition);
    if (updated < want) return inProgress("PartitionRollout", `updated: ${updated}/${want} (partition ${partition})`);
    return current("PartitionRolledOut", `partition rollout complete; updated: ${updated}/${want} (partition ${partition})`);
  }
  if (spec > updated) return inProgress("LessUpdated", `updated: ${updated}/${spec}`);
  const currentRevision = stringField(obj, ["status", "currentRevision"]);
  const updateRevision = stringField(obj, ["status", "updateRevision"]);
  if (currentRevision !== updateRevision) {
    return inProgress("RevisionMismatch", `current revision ${currentRevision ?? "(none)"} is not the update revision ${updateRevision ?? "(none)"} yet`);
  }
  if (spec > currentReplicas) return inProgress("LessCurrent", `current: ${currentReplicas}/${spec}`);
  return current("Ready", `all replicas ready and updated; replicas: ${replicas}`);
}

/**
 * DaemonSet: every node that should run a pod runs an updated, available one. With
 * updateStrategy OnDelete, pods are not updated until deleted, so updates are not waited for.
 */
export function daemonSetHealth(obj: KubeObject): Health {
  const desired = intField(obj, ["status", "desiredNumberScheduled"], -1);
  if (desired < 0) return inProgress("NoDesiredNumber", "the controller has not counted the nodes yet (no status.desiredNumberScheduled)");
  const scheduled = intField(obj, ["status", "currentNumberScheduled"], 0);
  const updated = intField(obj, ["status", "updatedNumberScheduled"], 0);
  const available = intField(obj, ["status", "numberAvailable"], 0);
  const ready = intField(obj, ["status", "numberReady"], 0);
  const onDelete = stringField(obj, ["spec", "updateStrategy", "type"]) === "OnDelete";

  if (desired > scheduled) return inProgress("LessCurrent", `scheduled: ${scheduled}/${desired}`);
  if (!onDelete && desired > updated) return inProgress("LessUpdated", `updated: ${updated}/${desired}`);
  if (desired > available) return inProgress("LessAvailable", `available: ${available}/${desired}`);
  if (desired > ready) return inProgress("LessReady", `ready: ${ready}/${desired}`);
  return current("Ready", `all pods scheduled and available; desired: ${desired}`);
}

// ---- batch ---------------------------------------------------------------------------------

/** Job: Complete=True is Current; Failed=True (or FailureTarget=True: it is being failed) is Failed. */
export function jobHealth(obj: KubeObject): Health {
  const conds = conditionsOf(obj);
  const isTrue = (type: string): Condition | undefined => conds.find((c) => c.type === type && c.status === "True");
  const counts = (): string => {
    const active = intField(obj, ["status", "active"], 0);
    const succeeded = intField(obj, ["status", "succeeded"], 0);
    const failedPods = intField(obj, ["status", "failed"], 0);
    return `active: ${active}, succeeded: ${succeeded}, failed: ${failedPods}`;
  };
  const failedCond = isTrue("Failed") ?? isTrue("FailureTarget");
  if (failedCond) return failed(failedCond.reason ?? "JobFailed", failedCond.message ?? `the Job failed (${counts()})`);
  const complete = isTrue("Complete");
  if (complete) return current("Complete", complete.message ?? `the Job completed (${counts()})`);
  const suspended = isTrue("Suspended");
  if (suspended) return inProgress("Suspended", suspended.message ?? "the Job is suspended");
  if (!stringField(obj, ["status", "startTime"])) return inProgress("JobNotStarted", "the Job has not started");
  return inProgress("JobRunning", `the Job is running (${counts()})`);
}

// ---- apiextensions ------------------------------------------------------------------------

/** CustomResourceDefinition: Established=True is Current; NamesAccepted=False is Failed. */
export function crdHealth(obj: KubeObject): Health {
  const names = conditionOf(obj, "NamesAccepted");
  if (names?.status === "False") return failed(names.reason ?? "NamesNotAccepted", condText(names, "the names are not accepted"));
  const established = conditionOf(obj, "Established");
  if (established?.status === "True") return current("Established", "the CRD is established");
  return inProgress("Installing", condText(established, "the CRD is not established yet"));
}

// ---- tekton.dev ---------------------------------------------------------------------------

/** Tekton PipelineRun/TaskRun/CustomRun: the Knative Succeeded condition. */
export function succeededConditionHealth(obj: KubeObject): Health {
  const c = conditionOf(obj, "Succeeded");
  if (c?.status === "True") return current(c.reason ?? "Succeeded", c.message ?? `the ${obj.kind} succeeded`);
  if (c?.status === "False") return failed(c.reason ?? "Failed", c.message ?? `the ${obj.kind} failed`);
  if (c) return inProgress(c.reason ?? "Running", c.message ?? `the ${obj.kind} is running`);
  return inProgress("NotStarted", `the ${obj.kind} has not started yet`);
}

// ---- core ----------------------------------------------------------------------------------

const IMAGE_TROUBLE = new Set(["ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"]);

/** Waiting reasons of the pod's (init) containers, as "name: Reason" strings. */
function waitingContainers(obj: KubeObject, reasons?: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const field of ["initContainerStatuses", "containerStatuses"]) {
    const list = get(obj, ["status", field]);
    if (!Array.isArray(list)) continue;
    for (const cs of list) {
      const reason = stringField(cs, ["state", "waiting", "reason"]);
      if (!reason || (reasons && !reasons.has(reason))) continue;
      out.push(`${stringField(cs, ["name"]) ?? "?"}: ${reason}`);
    }
  }
  return out;
}

/** Pod: Succeeded, or Running and Ready, is Current; Failed or crash-looping is Failed. */
export function podHealth(obj: KubeObject): Health {
  const phase = stringField(obj, ["status", "phase"]);
  switch (phase) {
    case "Succeeded":
      return current("PodSucceeded", "the pod has completed successfully");
    case "Failed":
      return failed(stringField(obj, ["status", "reason"]) ?? "PodFailed", stringField(obj, ["status", "message"]) ?? "the pod has completed, but not successfully");
    case "Running": {
      if (conditionOf(obj, "Ready")?.status === "True") return current("PodReady", "the pod is running and ready");
      const looping = waitingContainers(obj, new Set(["CrashLoopBackOff"]));
      if (looping.length > 0) return failed("ContainerCrashLooping", `containers crash-looping: ${looping.join(", ")}`);
      const waiting = waitingContainers(obj);
      return inProgress("PodRunningNotReady", waiting.length > 0 ? `the pod is running but not ready (${waiting.join(", ")})` : "the pod is running but not ready");
    }
    case "Pending": {
      const scheduled = conditionOf(obj, "PodScheduled");
      if (scheduled?.status === "False" && scheduled.reason === "Unschedulable") {
        return inProgress("PodUnschedulable", condText(scheduled, "the pod cannot be scheduled"));
      }
      const trouble = waitingContainers(obj, IMAGE_TROUBLE);
      return inProgress("PodPending", trouble.length > 0 ? `the pod is pending (${trouble.join(", ")})` : "the pod is pending");
    }
    case undefined:
      return inProgress("PodNotObserved", "the pod has no phase yet");
    default:
      return inProgress(`Pod${phase}`, `the pod is in phase ${phase}`);
  }
}

/** PersistentVolumeClaim: Bound is Current; Lost (its volume is gone) is Failed. */
export function pvcHealth(obj: KubeObject): Health {
  const phase = stringField(obj, ["status", "phase"]);
  if (phase === "Bound") return current("Bound", "the claim is bound");
  if (phase === "Lost") return failed("ClaimLost", "the claim lost its volume");
  return inProgress("NotBound", `the claim is not bound${phase ? ` (phase ${phase})` : ""}`);
}

/** Service: a LoadBalancer needs an ingress point; any other type is Current at once. */
export function serviceHealth(obj: KubeObject): Health | undefined {
  if (stringField(obj, ["spec", "type"]) !== "LoadBalancer") return current("Current", "the Service needs no readiness");
  const ingress = get(obj, ["status", "loadBalancer", "ingress"]);
  if (Array.isArray(ingress) && ingress.length > 0) {
    const first = ingress[0] as unknown;
    const where = stringField(first, ["ip"]) ?? stringField(first, ["hostname"]) ?? "assigned";
    return current("LoadBalancerReady", `load balancer ingress: ${where}`);
  }
  return inProgress("NoIngress", "the load balancer has no ingress point yet");
}

/** Namespace: phase Active. */
export function namespaceHealth(obj: KubeObject): Health {
  const phase = stringField(obj, ["status", "phase"]);
  if (phase === "Active") return current("Active", "the namespace is active");
  if (phase === "Terminating") return inProgress("Terminating", "the namespace is being deleted");
  return inProgress("NotActive", `the namespace is not active${phase ? ` (phase ${phase})` : ""}`);
}

// ---- the registry --------------------------------------------------------------------------

/** Kind rules, keyed by "group/Kind" ("Kind" alone for the core group). */
const RULES: Record<string, HealthRule> = {
  "apps/Deployment": deploymentHealth,
  "apps/StatefulSet": statefulSetHealth,
  "apps/DaemonSet": daemonSetHealth,
  "batch/Job": jobHealth,
  "apiextensions.k8s.io/CustomResourceDefinition": crdHealth,
  "tekton.dev/PipelineRun": succeededConditionHealth,
  "tekton.dev/TaskRun": succeededConditionHealth,
  "tekton.dev/CustomRun": succeededConditionHealth,
  Pod: podHealth,
  PersistentVolumeClaim: pvcHealth,
  Service: serviceHealth,
  Namespace: namespaceHealth,
};

/** The rule for a kind, if any. */
export function ruleFor(apiVersion: string, kind: string): HealthRule | undefined {
  const key = groupKindKey(apiVersion, kind);
  return Object.hasOwn(RULES, key) ? RULES[key] : undefined;
}
