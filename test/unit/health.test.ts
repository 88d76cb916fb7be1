import { describe, expect, it } from "vitest";
import { healthOf } from "../../src/health/index.js";
import type { HealthStatus } from "../../src/health/rules.js";
import type { KubeObject } from "../../src/types.js";

type Obj = Record<string, unknown>;

function obj(apiVersion: string, kind: string, rest: Obj = {}, meta: Obj = {}): KubeObject {
  return { apiVersion, kind, metadata: { name: "x", namespace: "default", generation: 2, ...meta }, ...rest } as KubeObject;
}

const cond = (type: string, status: string, reason?: string, message?: string): Obj => ({
  type,
  status,
  lastTransitionTime: "2024-05-01T10:00:00Z",
  ...(reason ? { reason } : {}),
  ...(message ? { message } : {}),
});

// ---- Deployment ----------------------------------------------------------------------------

const progressingDone = cond("Progressing", "True", "NewReplicaSetAvailable", 'ReplicaSet "web-5d4f" has successfully progressed.');
const availableTrue = cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.");

function deployment(status: Obj | undefined, spec: Obj = { replicas: 3 }, meta: Obj = {}): KubeObject {
  return obj(
    "apps/v1",
    "Deployment",
    {
      spec: { selector: { matchLabels: { app: "web" } }, template: {}, progressDeadlineSeconds: 600, ...spec },
      ...(status ? { status } : {}),
    },
    meta,
  );
}

const rolledOut = {
  observedGeneration: 2,
  replicas: 3,
  updatedReplicas: 3,
  readyReplicas: 3,
  availableReplicas: 3,
  conditions: [availableTrue, progressingDone],
};

// ---- StatefulSet ---------------------------------------------------------------------------

function statefulSet(status: Obj, spec: Obj = {}): KubeObject {
  return obj("apps/v1", "StatefulSet", { spec: { replicas: 3, serviceName: "db", ...spec }, status: { observedGeneration: 2, ...status } });
}

const stsDone = {
  replicas: 3,
  readyReplicas: 3,
  availableReplicas: 3,
  currentReplicas: 3,
  updatedReplicas: 3,
  currentRevision: "db-7b9c",
  updateRevision: "db-7b9c",
};

// ---- DaemonSet -----------------------------------------------------------------------------

function daemonSet(status: Obj, spec: Obj = {}): KubeObject {
  return obj("apps/v1", "DaemonSet", { spec: { selector: {}, template: {}, ...spec }, status: { observedGeneration: 2, ...status } });
}

const dsDone = { desiredNumberScheduled: 4, currentNumberScheduled: 4, updatedNumberScheduled: 4, numberAvailable: 4, numberReady: 4, numberMisscheduled: 0 };

// ---- Job -----------------------------------------------------------------------------------

function job(status: Obj | undefined): KubeObject {
  return obj("batch/v1", "Job", { spec: { backoffLimit: 2, template: {} }, ...(status ? { status } : {}) }, { generation: 1 });
}

// ---- Tekton --------------------------------------------------------------------------------

function pipelineRun(kind: "PipelineRun" | "TaskRun", conditions?: Obj[]): KubeObject {
  return obj("tekton.dev/v1", kind, {
    spec: kind === "PipelineRun" ? { pipelineRef: { name: "smoke" } } : { taskRef: { name: "smoke" } },
    ...(conditions ? { status: { conditions, startTime: "2024-05-01T10:00:00Z" } } : {}),
  });
}

// ---- Pod -----------------------------------------------------------------------------------

function pod(status: Obj | undefined): KubeObject {
  return obj("v1", "Pod", { spec: { containers: [{ name: "main", image: "nginx:1.27" }] }, ...(status ? { status } : {}) }, { generation: undefined });
}

const waiting = (name: string, reason: string): Obj => ({ name, ready: false, restartCount: 4, state: { waiting: { reason, message: "..." } } });

interface Case {
  name: string;
  obj: KubeObject;
  status: HealthStatus;
  reason: string;
  message?: RegExp;
}

const cases: Case[] = [
  // generic
  {
    name: "deletion pending wins over a ready status",
    obj: deployment(rolledOut, { replicas: 3 }, { deletionTimestamp: "2024-05-01T10:00:00Z" }),
    status: "InProgress",
    reason: "Terminating",
  },
  {
    name: "status.observedGeneration behind metadata.generation",
    obj: deployment({ ...rolledOut, observedGeneration: 1 }),
    status: "InProgress",
    reason: "ObservedGenerationMismatch",
    message: /generation 2/,
  },
  {
    name: "no status.observedGeneration: no generation check (a ConfigMap-like CR)",
    obj: obj("example.com/v1", "Widget", { spec: {}, status: { phase: "whatever" } }, { generation: 7 }),
    status: "Current",
    reason: "Current",
  },
  {
    name: "Stalled=True is Failed",
    obj: obj("example.com/v1", "Widget", { status: { observedGeneration: 2, conditions: [cond("Ready", "False", "Waiting"), cond("Stalled", "True", "BadSpec", "spec.size is invalid")] } }),
    status: "Failed",
    reason: "BadSpec",
    message: /spec\.size/,
  },
  {
    name: "Reconciling=True is InProgress",
    obj: obj("example.com/v1", "Widget", { status: { observedGeneration: 2, conditions: [cond("Reconciling", "True", "Progressing")] } }),
    status: "InProgress",
    reason: "Progressing",
  },
  {
    name: "Ready=True is Current",
    obj: obj("cert-manager.io/v1", "Certificate", { status: { observedGeneration: 2, conditions: [cond("Ready", "True", "Ready", "Certificate is up to date")] } }),
    status: "Current",
    reason: "Ready",
  },
  {
    name: "Ready=False is InProgress with its reason",
    obj: obj("cert-manager.io/v1", "Certificate", { status: { observedGeneration: 2, conditions: [cond("Ready", "False", "Issuing", "Issuing certificate")] } }),
    status: "InProgress",
    reason: "Issuing",
    message: /Issuing certificate/,
  },
  {
    name: "Ready=Unknown is InProgress",
    obj: obj("example.com/v1", "Widget", { status: { conditions: [cond("Ready", "Unknown")] } }),
    status: "InProgress",
    reason: "NotReady",
  },
  { name: "ConfigMap: no status, Current", obj: obj("v1", "ConfigMap", { data: { a: "1" } }), status: "Current", reason: "Current" },
  { name: "Secret: Current", obj: obj("v1", "Secret", { type: "Opaque", data: {} }), status: "Current", reason: "Current" },
  { name: "ServiceAccount: Current", obj: obj("v1", "ServiceAccount"), status: "Current", reason: "Current" },
  { name: "ClusterRole: Current", obj: obj("rbac.authorization.k8s.io/v1", "ClusterRole", { rules: [] }), status: "Current", reason: "Current" },
  { name: "Tekton Task: Current", obj: obj("tekton.dev/v1", "Task", { spec: { steps: [] } }), status: "Current", reason: "Current" },
  { name: "Tekton Pipeline: Current", obj: obj("tekton.dev/v1", "Pipeline", { spec: { tasks: [] } }), status: "Current", reason: "Current" },

  // Deployment
  { name: "Deployment rolled out", obj: deployment(rolledOut), status: "Current", reason: "Available" },
  {
    name: "Deployment: counts and Available only (no Progressing condition), as a test controller writes it",
    obj: deployment({ observedGeneration: 2, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: [availableTrue] }, { replicas: 1 }),
    status: "Current",
    reason: "Available",
  },
  { name: "Deployment: spec.replicas defaults to 1", obj: deployment({ ...rolledOut, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 }, {}), status: "Current", reason: "Available" },
  { name: "Deployment: default 1 replica, none yet", obj: deployment({ observedGeneration: 2 }, {}), status: "InProgress", reason: "LessReplicas" },
  { name: "Deployment: no status at all", obj: deployment(undefined), status: "InProgress", reason: "LessReplicas" },
  {
    name: "Deployment: pods not all updated",
    obj: deployment({ ...rolledOut, updatedReplicas: 1, conditions: [availableTrue, cond("Progressing", "True", "ReplicaSetUpdated")] }),
    status: "InProgress",
    reason: "LessUpdated",
    message: /1\/3/,
  },
  {
    name: "Deployment: old pods still around (surge)",
    obj: deployment({ ...rolledOut, replicas: 4, conditions: [availableTrue, cond("Progressing", "True", "ReplicaSetUpdated")] }),
    status: "InProgress",
    reason: "ExtraPods",
  },
  { name: "Deployment: updated but not available", obj: deployment({ ...rolledOut, availableReplicas: 2 }), status: "InProgress", reason: "LessAvailable" },
  { name: "Deployment: available but not ready", obj: deployment({ ...rolledOut, readyReplicas: 2 }), status: "InProgress", reason: "LessReady" },
  {
    name: "Deployment: counts fine but the new ReplicaSet not reported available",
    obj: deployment({ ...rolledOut, conditions: [availableTrue, cond("Progressing", "True", "ReplicaSetUpdated")] }),
    status: "InProgress",
    reason: "ReplicaSetNotAvailable",
  },
  {
    name: "Deployment: Available=False",
    obj: deployment({ ...rolledOut, conditions: [cond("Available", "False", "MinimumReplicasUnavailable"), progressingDone] }),
    status: "InProgress",
    reason: "DeploymentNotAvailable",
  },
  {
    name: "Deployment: ProgressDeadlineExceeded is Failed",
    obj: deployment({
      observedGeneration: 2,
      replicas: 4,
      updatedReplicas: 1,
      readyReplicas: 3,
      availableReplicas: 3,
      unavailableReplicas: 1,
      conditions: [availableTrue, cond("Progressing", "False", "ProgressDeadlineExceeded", 'ReplicaSet "web-6c8d" has timed out progressing.')],
    }),
    status: "Failed",
    reason: "ProgressDeadlineExceeded",
    message: /timed out/,
  },
  { name: "Deployment: paused is not waited for", obj: deployment({ observedGeneration: 2, replicas: 3 }, { replicas: 3, paused: true }), status: "Current", reason: "Paused" },

  // StatefulSet
  { name: "StatefulSet rolled out", obj: statefulSet(stsDone), status: "Current", reason: "Ready" },
  { name: "StatefulSet: missing replicas", obj: statefulSet({ ...stsDone, replicas: 2 }), status: "InProgress", reason: "LessReplicas" },
  { name: "StatefulSet: not ready", obj: statefulSet({ ...stsDone, readyReplicas: 1 }), status: "InProgress", reason: "LessReady" },
  { name: "StatefulSet: not available (minReadySeconds)", obj: statefulSet({ ...stsDone, availableReplicas: 2 }), status: "InProgress", reason: "LessAvailable" },
  { name: "StatefulSet: scaled down, extra pods", obj: statefulSet({ ...stsDone, replicas: 4 }), status: "InProgress", reason: "ExtraPods" },
  {
    name: "StatefulSet: rolling update in progress",
    obj: statefulSet({ ...stsDone, currentReplicas: 2, updatedReplicas: 1, updateRevision: "db-8f00" }),
    status: "InProgress",
    reason: "LessUpdated",
  },
  {
    name: "StatefulSet: all updated, revision not switched yet",
    obj: statefulSet({ ...stsDone, currentReplicas: 0, updatedReplicas: 3, updateRevision: "db-8f00" }),
    status: "InProgress",
    reason: "RevisionMismatch",
  },
  {
    name: "StatefulSet: revisions agree but currentReplicas lags",
    obj: statefulSet({ ...stsDone, currentReplicas: 2 }),
    status: "InProgress",
    reason: "LessCurrent",
  },
  {
    name: "StatefulSet: partition 2 of 3, the one pod above it updated",
    obj: statefulSet(
      { ...stsDone, currentReplicas: 2, updatedReplicas: 1, updateRevision: "db-8f00" },
      { updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 2 } } },
    ),
    status: "Current",
    reason: "PartitionRolledOut",
  },
  {
    name: "StatefulSet: partition 1 of 3, one of two pods updated",
    obj: statefulSet(
      { ...stsDone, currentReplicas: 2, updatedReplicas: 1, updateRevision: "db-8f00" },
      { updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 1 } } },
    ),
    status: "InProgress",
    reason: "PartitionRollout",
    message: /1\/2/,
  },
  {
    name: "StatefulSet: OnDelete does not wait for updates",
    obj: statefulSet({ ...stsDone, currentReplicas: 3, updatedReplicas: 0, updateRevision: "db-8f00" }, { updateStrategy: { type: "OnDelete" } }),
    status: "Current",
    reason: "OnDelete",
  },
  {
    name: "StatefulSet: OnDelete still waits for ready pods",
    obj: statefulSet({ ...stsDone, readyReplicas: 2 }, { updateStrategy: { type: "OnDelete" } }),
    status: "InProgress",
    reason: "LessReady",
  },

  // DaemonSet
  { name: "DaemonSet rolled out", obj: daemonSet(dsDone), status: "Current", reason: "Ready" },
  { name: "DaemonSet: not counted yet", obj: daemonSet({}), status: "InProgress", reason: "NoDesiredNumber" },
  { name: "DaemonSet: not scheduled everywhere", obj: daemonSet({ ...dsDone, currentNumberScheduled: 3 }), status: "InProgress", reason: "LessCurrent" },
  { name: "DaemonSet: not updated everywhere", obj: daemonSet({ ...dsDone, updatedNumberScheduled: 2 }), status: "InProgress", reason: "LessUpdated", message: /2\/4/ },
  { name: "DaemonSet: not available everywhere", obj: daemonSet({ ...dsDone, numberAvailable: 3 }), status: "InProgress", reason: "LessAvailable" },
  {
    name: "DaemonSet: OnDelete does not wait for updates",
    obj: daemonSet({ ...dsDone, updatedNumberScheduled: 0 }, { updateStrategy: { type: "OnDelete" } }),
    status: "Current",
    reason: "Ready",
  },
  {
    name: "DaemonSet: no nodes to run on",
    obj: daemonSet({ desiredNumberScheduled: 0, currentNumberScheduled: 0, updatedNumberScheduled: 0, numberAvailable: 0, numberReady: 0 }),
    status: "Current",
    reason: "Ready",
  },

  // Job
  {
    name: "Job complete",
    obj: job({ startTime: "t", completionTime: "t", succeeded: 1, conditions: [cond("SuccessCriteriaMet", "True", "CompletionsReached"), cond("Complete", "True", "CompletionsReached")] }),
    status: "Current",
    reason: "Complete",
  },
  {
    name: "Job failed, with its reason and message",
    obj: job({
      startTime: "t",
      failed: 3,
      conditions: [cond("FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"), cond("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")],
    }),
    status: "Failed",
    reason: "BackoffLimitExceeded",
    message: /backoff limit/,
  },
  {
    name: "Job being failed (FailureTarget before Failed)",
    obj: job({ startTime: "t", active: 1, conditions: [cond("FailureTarget", "True", "DeadlineExceeded", "Job was active longer than specified deadline")] }),
    status: "Failed",
    reason: "DeadlineExceeded",
  },
  { name: "Job running", obj: job({ startTime: "t", active: 1 }), status: "InProgress", reason: "JobRunning", message: /active: 1/ },
  { name: "Job not started", obj: job(undefined), status: "InProgress", reason: "JobNotStarted" },
  { name: "Job: Complete=False is not complete", obj: job({ startTime: "t", active: 1, conditions: [cond("Complete", "False")] }), status: "InProgress", reason: "JobRunning" },
  { name: "Job suspended", obj: job({ conditions: [cond("Suspended", "True", "JobSuspended", "Job suspended")] }), status: "InProgress", reason: "Suspended" },

  // CRD
  {
    name: "CRD established",
    obj: obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", {
      status: { conditions: [cond("NamesAccepted", "True", "NoConflicts"), cond("Established", "True", "InitialNamesAccepted")] },
    }),
    status: "Current",
    reason: "Established",
  },
  {
    name: "CRD names rejected",
    obj: obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", {
      status: { conditions: [cond("NamesAccepted", "False", "MultipleNameConflict", '"widgets" is already in use'), cond("Established", "False", "NotAccepted")] },
    }),
    status: "Failed",
    reason: "MultipleNameConflict",
    message: /already in use/,
  },
  {
    name: "CRD installing",
    obj: obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", { status: { conditions: [cond("NamesAccepted", "True", "NoConflicts")] } }),
    status: "InProgress",
    reason: "Installing",
  },

  // Tekton runs
  {
    name: "PipelineRun succeeded",
    obj: pipelineRun("PipelineRun", [cond("Succeeded", "True", "Succeeded", "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0")]),
    status: "Current",
    reason: "Succeeded",
  },
  {
    name: "PipelineRun failed, with the condition's reason and message",
    obj: pipelineRun("PipelineRun", [cond("Succeeded", "False", "Failed", "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 0")]),
    status: "Failed",
    reason: "Failed",
    message: /Failed: 1/,
  },
  {
    name: "PipelineRun cancelled",
    obj: pipelineRun("PipelineRun", [cond("Succeeded", "False", "Cancelled", "PipelineRun cancelled")]),
    status: "Failed",
    reason: "Cancelled",
  },
  { name: "PipelineRun running", obj: pipelineRun("PipelineRun", [cond("Succeeded", "Unknown", "Running", "Tasks Completed: 0")]), status: "InProgress", reason: "Running" },
  { name: "PipelineRun not picked up yet", obj: pipelineRun("PipelineRun"), status: "InProgress", reason: "NotStarted" },
  { name: "TaskRun succeeded", obj: pipelineRun("TaskRun", [cond("Succeeded", "True", "Succeeded", "All Steps have completed executing")]), status: "Current", reason: "Succeeded" },
  { name: "TaskRun failed", obj: pipelineRun("TaskRun", [cond("Succeeded", "False", "TaskRunTimeout", "TaskRun timed out")]), status: "Failed", reason: "TaskRunTimeout", message: /timed out/ },
  { name: "TaskRun pending", obj: pipelineRun("TaskRun", [cond("Succeeded", "Unknown", "Pending")]), status: "InProgress", reason: "Pending" },

  // Pod
  { name: "Pod succeeded", obj: pod({ phase: "Succeeded" }), status: "Current", reason: "PodSucceeded" },
  { name: "Pod failed", obj: pod({ phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." }), status: "Failed", reason: "Evicted", message: /memory/ },
  { name: "Pod failed without a reason", obj: pod({ phase: "Failed" }), status: "Failed", reason: "PodFailed" },
  {
    name: "Pod running and ready",
    obj: pod({ phase: "Running", conditions: [cond("Initialized", "True"), cond("Ready", "True"), cond("ContainersReady", "True"), cond("PodScheduled", "True")] }),
    status: "Current",
    reason: "PodReady",
  },
  {
    name: "Pod running, not ready",
    obj: pod({ phase: "Running", conditions: [cond("Ready", "False", "ContainersNotReady")], containerStatuses: [{ name: "main", ready: false, state: { running: {} } }] }),
    status: "InProgress",
    reason: "PodRunningNotReady",
  },
  {
    name: "Pod crash-looping",
    obj: pod({ phase: "Running", conditions: [cond("Ready", "False", "ContainersNotReady")], containerStatuses: [waiting("main", "CrashLoopBackOff")] }),
    status: "Failed",
    reason: "ContainerCrashLooping",
    message: /main: CrashLoopBackOff/,
  },
  {
    name: "Pod pending on an image pull",
    obj: pod({ phase: "Pending", conditions: [cond("PodScheduled", "True")], containerStatuses: [waiting("main", "ImagePullBackOff")] }),
    status: "InProgress",
    reason: "PodPending",
    message: /ImagePullBackOff/,
  },
  {
    name: "Pod unschedulable",
    obj: pod({ phase: "Pending", conditions: [cond("PodScheduled", "False", "Unschedulable", "0/3 nodes are available: 3 Insufficient cpu.")] }),
    status: "InProgress",
    reason: "PodUnschedulable",
    message: /Insufficient cpu/,
  },
  { name: "Pod not observed", obj: pod(undefined), status: "InProgress", reason: "PodNotObserved" },

  // PVC, Service, Namespace
  { name: "PVC bound", obj: obj("v1", "PersistentVolumeClaim", { spec: {}, status: { phase: "Bound" } }), status: "Current", reason: "Bound" },
  { name: "PVC pending", obj: obj("v1", "PersistentVolumeClaim", { spec: {}, status: { phase: "Pending" } }), status: "InProgress", reason: "NotBound" },
  { name: "PVC lost", obj: obj("v1", "PersistentVolumeClaim", { spec: {}, status: { phase: "Lost" } }), status: "Failed", reason: "ClaimLost" },
  { name: "Service ClusterIP: Current at once", obj: obj("v1", "Service", { spec: { type: "ClusterIP", ports: [] }, status: { loadBalancer: {} } }), status: "Current", reason: "Current" },
  { name: "Service without type: Current at once", obj: obj("v1", "Service", { spec: { ports: [] } }), status: "Current", reason: "Current" },
  {
    name: "Service LoadBalancer with an ingress",
    obj: obj("v1", "Service", { spec: { type: "LoadBalancer" }, status: { loadBalancer: { ingress: [{ ip: "203.0.113.7" }] } } }),
    status: "Current",
    reason: "LoadBalancerReady",
    message: /203\.0\.113\.7/,
  },
  {
    name: "Service LoadBalancer waiting for an ingress",
    obj: obj("v1", "Service", { spec: { type: "LoadBalancer" }, status: { loadBalancer: {} } }),
    status: "InProgress",
    reason: "NoIngress",
  },
  { name: "Namespace active", obj: obj("v1", "Namespace", { status: { phase: "Active" } }), status: "Current", reason: "Active" },
  { name: "Namespace terminating", obj: obj("v1", "Namespace", { status: { phase: "Terminating" } }), status: "InProgress", reason: "Terminating" },
  { name: "Namespace without phase", obj: obj("v1", "Namespace"), status: "InProgress", reason: "NotActive" },
];

describe("healthOf", () => {
  it.each(cases)("$name → $status $reason", (c) => {
    const h = healthOf(c.obj);
    expect({ status: h.status, reason: h.reason }).toEqual({ status: c.status, reason: c.reason });
    expect(h.message).toBeTruthy();
    if (c.message) expect(h.message).toMatch(c.message);
  });

  it("keys kinds by group: a Deployment of another group is not an apps Deployment", () => {
    // Same shape as an unfinished apps/v1 Deployment, but not in group apps: generic rules only.
    expect(healthOf(obj("example.com/v1", "Deployment", { spec: { replicas: 3 }, status: { replicas: 0 } })).status).toBe("Current");
    expect(healthOf(obj("apps/v1", "Deployment", { spec: { replicas: 3 }, status: { replicas: 0 } })).status).toBe("InProgress");
    // Job of batch/v1 and of an older version share the rule.
    expect(healthOf(obj("batch/v1beta1", "Job", {})).reason).toBe("JobNotStarted");
  });

  it("tolerates malformed status fields", () => {
    const weird = obj("apps/v1", "Deployment", { spec: { replicas: "3" }, status: { replicas: "x", conditions: [null, 3, { type: 1 }, { type: "Available" }] } });
    expect(healthOf(weird)).toMatchObject({ status: "InProgress", reason: "LessReplicas" });
    expect(healthOf(obj("v1", "Pod", { status: null })).reason).toBe("PodNotObserved");
  });
});

