import type { CheckConfig } from "../config/types.js";
import { healthOf } from "../health/index.js";
import { KubeApiError, type KubeClient } from "../kube/client.js";
import { resourcePath, type Discovery } from "../kube/discovery.js";
import type { KubeObject } from "../types.js";
import { sleep } from "../util/pool.js";
import { AbortedError } from "../engine/health.js";
import { substitute, type CheckContext } from "./render.js";

export type CheckPhase = "pre" | "post";

export interface CheckOutcome {
  name: string;
  phase: CheckPhase;
  passed: boolean;
  /** Kind/namespace/name of the object that ran the check. */
  object: string;
  reason: string;
  message: string;
}

export const CHECK_LABEL = "plumber.dev/check";
const CHECK_PHASE_LABEL = "plumber.dev/check-phase";
export const REVISION_LABEL = "plumber.dev/revision";
const APP_LABEL = "plumber.dev/app";

const KINDS: Record<CheckConfig["kind"], { apiVersions: string[]; kinds: string[] }> = {
  job: { apiVersions: ["batch/v1"], kinds: ["Job"] },
  pipelineRun: { apiVersions: ["tekton.dev/v1", "tekton.dev/v1beta1"], kinds: ["PipelineRun", "TaskRun"] },
};

/**
 * A deterministic name per (app, phase, check, revision): after a restart, creating it again
 * finds the run already there and waits for it instead of starting a second one.
 */
export function checkObjectName(app: string, phase: CheckPhase, check: string, revision: string): string {
  const tail = `-${revision.slice(0, 10)}`;
  return `${app}-${phase}-${check}`.slice(0, 63 - tail.length).replace(/-+$/, "") + tail;
}

export interface RunCheckOptions {
  client: KubeClient;
  discovery: Discovery;
  namespace: string;
  phase: CheckPhase;
  ctx: CheckContext;
  signal?: AbortSignal;
  pollMs?: number;
}

/** Builds the check's object: placeholders substituted, labelled, with its deterministic name. */
export function checkObject(check: CheckConfig, manifest: Record<string, unknown>, opts: Pick<RunCheckOptions, "namespace" | "phase" | "ctx">): KubeObject {
  const obj = substitute(structuredClone(manifest), opts.ctx) as unknown as KubeObject;
  const allowed = KINDS[check.kind];
  if (!allowed.apiVersions.includes(String(obj.apiVersion)) || !allowed.kinds.includes(String(obj.kind))) {
    throw new Error(`check ${check.name}: a ${check.kind} check needs ${allowed.kinds.join(" or ")} (${allowed.apiVersions.join(", ")}), got ${obj.kind} ${obj.apiVersion}`);
  }
  const metadata = { ...(obj.metadata ?? {}) } as KubeObject["metadata"];
  delete metadata.generateName;
  metadata.name = checkObjectName(opts.ctx.app, opts.phase, check.name, opts.ctx.revision);
  metadata.namespace = metadata.namespace ?? opts.namespace;
  metadata.labels = {
    ...(metadata.labels ?? {}),
    [APP_LABEL]: opts.ctx.app,
    [REVISION_LABEL]: opts.ctx.revision.slice(0, 12),
    [CHECK_LABEL]: check.name,
    [CHECK_PHASE_LABEL]: opts.phase,
  };
  return { ...obj, metadata };
}

/** Where a check's object lives, once its kind is known to be served. */
interface CheckSubject {
  path: string;
  subject: string;
  base: Pick<CheckOutcome, "name" | "phase" | "object">;
}

async function checkSubject(check: CheckConfig, obj: KubeObject, opts: Pick<RunCheckOptions, "discovery" | "namespace" | "phase">): Promise<CheckSubject & { collection: string }> {
  await opts.discovery.ensureLoaded();
  const mapping = opts.discovery.lookup(obj.apiVersion, obj.kind);
  if (!mapping) throw new Error(`check ${check.name}: the cluster does not serve ${obj.kind} (${obj.apiVersion})`);
  const ns = obj.metadata.namespace ?? opts.namespace;
  const subject = `${obj.kind}/${ns}/${obj.metadata.name}`;
  return { path: resourcePath(mapping, ns, obj.metadata.name), collection: resourcePath(mapping, ns), subject, base: { name: check.name, phase: opts.phase, object: subject } };
}

/** Creates the check's run; one already there (from before a restart) is kept, not started twice. */
export async function startCheck(check: CheckConfig, obj: KubeObject, opts: Pick<RunCheckOptions, "client" | "discovery" | "namespace" | "phase">): Promise<void> {
  const s = await checkSubject(check, obj, opts);
  try {
    await opts.client.request({ method: "POST", path: s.collection, body: JSON.stringify(obj) });
  } catch (e) {
    if (!(e instanceof KubeApiError && e.status === 409)) throw e;
  }
}

/** One GET of a started check: its verdict, or undefined while it runs. */
async function lookCheck(s: CheckSubject, obj: KubeObject, client: KubeClient): Promise<CheckOutcome | undefined> {
  const live = await client.getOptional<KubeObject>(s.path);
  if (!live) return { ...s.base, passed: false, reason: "Deleted", message: `${s.subject} was deleted before it finished` };
  const h = healthOf({ ...live, apiVersion: obj.apiVersion, kind: obj.kind });
  if (h.status === "Current") return { ...s.base, passed: true, reason: h.reason || "Succeeded", message: h.message };
  if (h.status === "Failed") return { ...s.base, passed: false, reason: h.reason || "Failed", message: h.message };
  return undefined;
}

function timedOut(s: CheckSubject, check: CheckConfig): CheckOutcome {
  return { ...s.base, passed: false, reason: "Timeout", message: `${s.subject} did not finish within ${Math.round(check.timeoutMs / 1000)}s` };
}

/**
 * One look at a check started on an earlier cycle (a verify that waits across cycles): its
 * verdict, a Timeout when `deadlinePassed` and it still runs, undefined: look again next cycle.
 */
export async function checkOnce(check: CheckConfig, obj: KubeObject, opts: Pick<RunCheckOptions, "client" | "discovery" | "namespace" | "phase"> & { deadlinePassed: boolean }): Promise<CheckOutcome | undefined> {
  const s = await checkSubject(check, obj, opts);
  const out = await lookCheck(s, obj, opts.client);
  if (out) return out;
  return opts.deadlinePassed ? timedOut(s, check) : undefined;
}

/** Creates the check's run (or finds it from before a restart) and waits for its verdict. */
export async function runCheck(check: CheckConfig, obj: KubeObject, opts: RunCheckOptions): Promise<CheckOutcome> {
  await startCheck(check, obj, opts);
  const s = await checkSubject(check, obj, opts);
  const deadline = Date.now() + check.timeoutMs;
  for (let delay = 200; ; delay = Math.min(delay * 2, opts.pollMs ?? 2000)) {
    if (opts.signal?.aborted) throw new AbortedError();
    const out = await lookCheck(s, obj, opts.client);
    if (out) return out;
    if (Date.now() >= deadline) return timedOut(s, check);
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())), opts.signal);
  }
}

/** Keeps the check objects of the newest `keep` revisions of an app; deletes the rest. */
export async function pruneCheckObjects(client: KubeClient, discovery: Discovery, app: string, namespace: string, keep: number): Promise<number> {
  let deleted = 0;
  for (const [apiVersion, kind] of [["batch/v1", "Job"], ["tekton.dev/v1", "PipelineRun"], ["tekton.dev/v1", "TaskRun"]] as const) {
    const mapping = discovery.lookup(apiVersion, kind);
    if (!mapping) continue;
    const list = await client.request<{ items: KubeObject[] }>({
      method: "GET",
      list: true,
      path: resourcePath(mapping, namespace),
      query: { labelSelector: `${APP_LABEL}=${app},${CHECK_LABEL}` },
    });
    const byRevision = new Map<string, { newest: string; items: KubeObject[] }>();
    for (const o of list.body.items) {
      const rev = o.metadata.labels?.[REVISION_LABEL] ?? "";
      const created = String(o.metadata.creationTimestamp ?? "");
      const entry = byRevision.get(rev) ?? { newest: "", items: [] };
      entry.items.push(o);
      if (created > entry.newest) entry.newest = created;
      byRevision.set(rev, entry);
    }
    const old = [...byRevision.values()].sort((a, b) => b.newest.localeCompare(a.newest)).slice(keep);
    for (const r of old) {
      for (const o of r.items) {
        try {
          await client.request({ method: "DELETE", path: resourcePath(mapping, o.metadata.namespace, o.metadata.name), query: { propagationPolicy: "Background" } });
          deleted++;
        } catch (e) {
          if (!(e instanceof KubeApiError && e.notFound)) throw e;
        }
      }
    }
  }
  return deleted;
}
