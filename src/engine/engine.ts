import type { KubeClient } from "../kube/client.js";
import { KubeApiError } from "../kube/client.js";
import { resourcePath, type Discovery, type ResourceMapping } from "../kube/discovery.js";
import { parseIdKey } from "../manifests/identity.js";
import type { KubeObject, Manifest } from "../types.js";
import { FileProblemError } from "../types.js";
import { settleLimit } from "../util/pool.js";
import { applyOne, existedBefore } from "./apply.js";
import { ChangeSet, subjectOf, type ChangeSetEntry } from "./changeset.js";
import { driftFingerprint } from "./fields.js";
import { canonicalJson, sha256Hex } from "./hash.js";
import type { InventoryEntry } from "./inventory.js";
import { listOwned, type ListTarget } from "./live.js";
import { carriesMarks } from "./marks.js";
import { applyOrder, pruneOrder, sortKey, stageOf } from "./order.js";
import { deleteOne } from "./prune.js";
import { isCrd, isNamespace, resolveResources, type NamespacePolicy, type Resource } from "./resource.js";
import { waitCrdEstablished } from "./wait.js";

export interface EngineDeps {
  client: KubeClient;
  discovery: Discovery;
  fieldManager?: string;
  concurrency?: number;
  crdTimeoutMs?: number;
  /** Called once per object as it is created, configured, pruned or fails. */
  onEntry?: (e: ChangeSetEntry) => void;
  /** HMAC-SHA256 key for every stored hash (inventory fp and dh). Without it hashes are plain sha256
   *  (library/test use only); plumber always passes one, so nothing derived from a Secret is stored unkeyed. */
  hashKey?: Uint8Array;
}

export interface SyncRequest {
  owner: string;
  manifests: Manifest[];
  defaultNamespace: string;
  previous: InventoryEntry[];
  prune: boolean;
  allowEmpty: boolean;
  /** Where objects may go: forced namespace, namespace allow-list, cluster-scoped kinds. Enforced before any write. */
  namespacePolicy?: NamespacePolicy;
  /** Awaited once after the plan and before the first write, with previous ∪ desired (entries new to the
   *  inventory carry fp ""), so a kill at any later point leaves no object plumber wrote but does not know. */
  recordIntent?: (inventory: InventoryEntry[]) => Promise<void>;
  /** Reason to refuse an object before any write (plumber's state namespace, its state/control/lease
   *  objects), or undefined to allow. Applied to every resolved object including Namespace objects. */
  guard?: (id: { group: string; kind: string; namespace: string; name: string }) => string | undefined;
}

export interface SyncOutcome {
  changeSet: ChangeSet;
  inventory: InventoryEntry[];
}

/** The plan failed: nothing at all was written. */
export class PlanError extends Error {
  constructor(
    message: string,
    readonly changeSet: ChangeSet,
  ) {
    super(message);
    this.name = "PlanError";
  }
}

/**
 * Something was written before the failure. `inventory` is what plumber owns now (the previous
 * inventory plus what was written), so nothing applied is ever forgotten by a later prune.
 */
export class SyncError extends Error {
  constructor(
    message: string,
    readonly changeSet: ChangeSet,
    readonly inventory: InventoryEntry[],
  ) {
    super(message);
    this.name = "SyncError";
  }
}

export interface DriftReport {
  /** Keys whose managed fields differ from what plumber last applied. */
  drifted: string[];
  /** Keys that are gone from the cluster (or lost plumber's marks). */
  missing: string[];
  live: Map<string, KubeObject>;
  /** For drifted keys: field managers other than plumber that now own fields plumber applied. */
  contested: Map<string, string[]>;
}

export interface PlannedObject {
  resource: Resource;
  action: "created" | "configured" | "unchanged";
  live?: KubeObject;
  /** The object as the server would store it (dry-run); absent for kinds not served yet. */
  merged?: KubeObject;
  /** e.g. "not dry-run: namespace ci is created by this revision". */
  note?: string;
  /** apiserver Warning headers from the dry-run. */
  warnings?: string[];
  /** An immutable field changes and the manifest opts in (plumber.dev/force): delete, then create. */
  recreate?: boolean;
}

export interface Plan {
  objects: PlannedObject[];
  prune: { key: string; subject: string; live: KubeObject }[];
}

/**
 * plan / apply / prune / wait over a desired set of objects for one owner. Knows nothing of git,
 * config or schedules: it is handed manifests and the previous inventory and says what it did.
 */
export class Engine {
  private readonly client: KubeClient;
  private readonly discovery: Discovery;
  private readonly fieldManager: string;
  private readonly concurrency: number;
  private readonly crdTimeoutMs: number;
  private readonly onEntry: (e: ChangeSetEntry) => void;

  constructor(deps: EngineDeps) {
    this.client = deps.client;
    this.discovery = deps.discovery;
    this.fieldManager = deps.fieldManager ?? "plumber";
    this.concurrency = deps.concurrency ?? 8;
    this.crdTimeoutMs = deps.crdTimeoutMs ?? 60_000;
    this.onEntry = deps.onEntry ?? (() => {});
  }

  /** 128 bits are plenty to tell states apart and keep large inventories inside one ConfigMap. */
  fingerprint(obj: KubeObject): string {
    return driftFingerprint(obj, this.fieldManager).slice(0, 32);
  }

  /** Resolves manifests against discovery; errors name file:line. No writes. */
  async resolve(owner: string, manifests: Manifest[], defaultNamespace: string, policy?: NamespacePolicy): Promise<Resource[]> {
    await this.discovery.ensureLoaded();
    try {
      return resolveResources(manifests, { owner, defaultNamespace, discovery: this.discovery, policy });
    } catch (e) {
      // A CRD installed since the last look would resolve: look once more before failing.
      if (!(e instanceof FileProblemError)) throw e;
      await this.discovery.refresh();
      return resolveResources(manifests, { owner, defaultNamespace, discovery: this.discovery, policy });
    }
  }

  /** Brings the cluster to the desired set: dry-run everything, write what changed, prune the rest. */
  async sync(req: SyncRequest): Promise<SyncOutcome> {
    const cs = new ChangeSet();
    const resources = await this.resolve(req.owner, req.manifests, req.defaultNamespace, req.namespacePolicy);
    if (resources.length === 0 && req.previous.length > 0 && !req.allowEmpty) {
      throw new PlanError(
        `the revision has no objects; refusing to prune all ${req.previous.length} objects plumber manages (set allowEmpty to allow it)`,
        cs,
      );
    }
    const live = await listOwned(this.client, req.owner, this.listTargets(resources, req.previous), this.concurrency);
    const stage0 = applyOrder(resources.filter((r) => stageOf(r.id.group, r.id.kind) === 0), idOf);
    const stage1 = applyOrder(resources.filter((r) => stageOf(r.id.group, r.id.kind) === 1), idOf);

    // Plan: dry-run all that can be dry-run now. Objects whose kind or namespace this very set
    // creates cannot be checked before stage 0 exists; they are checked before any of stage 1.
    const previous = new Map(req.previous.map((e) => [e.key, e]));
    const planned0 = await this.dryRun(stage0, live, cs, previous);
    const newNamespaces = new Set(planned0.filter((p) => isNamespace(p.resource) && p.action === "created").map((p) => p.resource.id.name));
    const deferred = (r: Resource): boolean => r.pendingKind || newNamespaces.has(r.id.namespace);
    const planned1 = await this.dryRun(stage1.filter((r) => !deferred(r)), live, cs, previous);
    if (cs.count("failed") > 0) throw new PlanError(planFailure(cs), cs);

    const owned = new Map(req.previous.map((e) => [e.key, e]));
    const inventoryNow = (): InventoryEntry[] => [...owned.values()];
    try {
      await this.write(planned0, cs, owned);
      const crds = planned0.filter((p) => isCrd(p.resource));
      for (const p of crds) await waitCrdEstablished(this.client, p.resource.id.name, this.crdTimeoutMs);
      if (crds.some((p) => p.action !== "unchanged")) await this.discovery.refresh();

      const late = stage1.filter(deferred);
      const plannedLate = await this.dryRun(late, live, cs, previous);
      if (cs.count("failed") > 0) throw new SyncError(planFailure(cs), cs, inventoryNow());
      const all1 = [...planned1, ...plannedLate].sort((a, b) => compareKeys(sortKey(idOf(a.resource)), sortKey(idOf(b.resource))));
      await this.write(all1, cs, owned);
    } catch (e) {
      if (e instanceof SyncError) throw e;
      throw new SyncError(e instanceof Error ? e.message : String(e), cs, inventoryNow());
    }

    const desiredKeys = new Set(resources.map((r) => r.key));
    if (req.prune) await this.prune(req.owner, req.previous.filter((e) => !desiredKeys.has(e.key)), live, cs, owned);
    const inventory = resources.map((r) => owned.get(r.key)).filter((e): e is InventoryEntry => e !== undefined);
    if (!req.prune) {
      // Without prune, objects that left the repo stay plumber's: keep them in the inventory.
      for (const e of req.previous) if (!desiredKeys.has(e.key)) inventory.push(e);
    }
    return { changeSet: cs, inventory };
  }

  /** Dry-runs the whole desired set and reads what is live, for `plumber plan`. No writes. */
  async plan(req: SyncRequest): Promise<Plan> {
    const cs = new ChangeSet();
    const resources = await this.resolve(req.owner, req.manifests, req.defaultNamespace, req.namespacePolicy);
    const live = await listOwned(this.client, req.owner, this.listTargets(resources, req.previous), this.concurrency);
    const ready = resources.filter((r) => !r.pendingKind);
    const planned = await this.dryRun(ready, live, cs, new Map(req.previous.map((e) => [e.key, e])));
    if (cs.count("failed") > 0) throw new PlanError(planFailure(cs), cs);
    for (const p of planned) {
      if (!p.live && p.action === "configured") {
        // Exists but is not (yet) ours: show the diff against what is there.
        p.live = await this.client.getOptional<KubeObject>(resourcePath(p.resource.mapping, p.resource.id.namespace, p.resource.id.name));
      }
    }
    const objects: PlannedObject[] = [...planned, ...resources.filter((r) => r.pendingKind).map((r) => ({ resource: r, action: "created" as const }))];
    const desired = new Set(resources.map((r) => r.key));
    const prune = req.prune
      ? req.previous
          .filter((e) => !desired.has(e.key))
          .flatMap((e) => {
            const obj = live.get(e.key);
            const id = parseIdKey(e.key);
            return obj && carriesMarks(obj, req.owner) ? [{ key: e.key, subject: subjectOf(id.kind, id.namespace, id.name), live: obj }] : [];
          })
      : [];
    return { objects, prune };
  }

  /**
   * Compares what is live with the fingerprints recorded at the last apply: one LIST per (kind,
   * namespace). No dry-runs, no writes.
   */
  async detectDrift(owner: string, inventory: InventoryEntry[]): Promise<DriftReport> {
    await this.discovery.ensureLoaded();
    const live = await listOwned(this.client, owner, this.listTargets([], inventory), this.concurrency);
    const drifted: string[] = [];
    const missing: string[] = [];
    for (const e of inventory) {
      const obj = live.get(e.key);
      if (!obj) missing.push(e.key);
      else if (this.fingerprint(obj) !== e.fp) drifted.push(e.key);
    }
    return { drifted, missing, live, contested: new Map() };
  }

  /** Re-applies the drifted and missing objects of a known-good desired set; no dry-run, no prune. */
  async repair(owner: string, manifests: Manifest[], defaultNamespace: string, drift: Pick<DriftReport, "drifted" | "missing">, inventory: InventoryEntry[], policy?: NamespacePolicy): Promise<SyncOutcome> {
    const cs = new ChangeSet();
    const missing = new Set(drift.missing);
    const wanted = new Set([...drift.drifted, ...drift.missing]);
    const resources = (await this.resolve(owner, manifests, defaultNamespace, policy)).filter((r) => wanted.has(r.key));
    const owned = new Map(inventory.map((e) => [e.key, e]));
    const planned: PlannedObject[] = applyOrder(resources, idOf).map((r) => ({
      resource: r,
      action: missing.has(r.key) ? "created" : "configured",
    }));
    try {
      await this.write(planned, cs, owned);
    } catch (e) {
      throw new SyncError(e instanceof Error ? e.message : String(e), cs, [...owned.values()]);
    }
    return { changeSet: cs, inventory: inventory.map((e) => owned.get(e.key) ?? e) };
  }

  private listTargets(resources: Resource[], previous: InventoryEntry[]): ListTarget[] {
    const targets: ListTarget[] = resources.filter((r) => !r.pendingKind).map((r) => ({ mapping: r.mapping, namespace: r.id.namespace }));
    for (const e of previous) {
      const id = parseIdKey(e.key);
      const mapping = this.discovery.lookup(e.apiVersion, id.kind);
      if (mapping) targets.push({ mapping, namespace: id.namespace });
    }
    return targets;
  }

  /**
   * Dry-runs what may change. An object whose manifest is the one last applied and whose live
   * state still matches the recorded fingerprint would come back unchanged and is never written,
   * so it needs no dry-run: a one-line commit to a 1,000-object app costs one dry-run, not 1,000.
   */
  private async dryRun(resources: Resource[], live: Map<string, KubeObject>, cs: ChangeSet, previous: Map<string, InventoryEntry>): Promise<PlannedObject[]> {
    const planned: PlannedObject[] = [];
    const toCheck: Resource[] = [];
    for (const r of resources) {
      const prev = previous.get(r.key);
      const current = live.get(r.key);
      if (prev?.dh && current && prev.dh === desiredHash(r) && prev.fp === this.fingerprint(current)) {
        planned.push({ resource: r, action: "unchanged", live: current });
      } else toCheck.push(r);
    }
    const results = await settleLimit(toCheck, this.concurrency, (r) => applyOne(this.client, r, { fieldManager: this.fieldManager, dryRun: true }));
    results.forEach((res, i) => {
      const r = toCheck[i] as Resource;
      if (res.status === "rejected") {
        const entry: ChangeSetEntry = { key: r.key, subject: r.subject, action: "failed", message: errorText(res.reason), source: r.source };
        cs.add(entry);
        this.onEntry(entry);
        return;
      }
      const merged = res.value;
      const current = live.get(r.key);
      let action: PlannedObject["action"];
      if (!existedBefore(merged)) action = "created";
      else if (current && this.fingerprint(current) === this.fingerprint(merged)) action = "unchanged";
      else action = "configured";
      planned.push({ resource: r, action, live: current, merged });
    });
    return planned;
  }

  /** Writes planned objects in order; objects of one kind rank go out together. */
  private async write(planned: PlannedObject[], cs: ChangeSet, owned: Map<string, InventoryEntry>): Promise<void> {
    const batches = new Map<string, PlannedObject[]>();
    for (const p of planned) {
      if (p.action === "unchanged") {
        const fp = this.fingerprint(p.live as KubeObject);
        owned.set(p.resource.key, { key: p.resource.key, apiVersion: p.resource.object.apiVersion, fp, dh: desiredHash(p.resource) });
        cs.add({ key: p.resource.key, subject: p.resource.subject, action: "unchanged", source: p.resource.source });
        continue;
      }
      const k = sortKey(idOf(p.resource));
      const batchKey = `${k[0]}/${k[1]}/${k[2]}`;
      const b = batches.get(batchKey);
      if (b) b.push(p);
      else batches.set(batchKey, [p]);
    }
    for (const batch of batches.values()) {
      const results = await settleLimit(batch, this.concurrency, (p) => applyOne(this.client, p.resource, { fieldManager: this.fieldManager }));
      let failed = 0;
      results.forEach((res, i) => {
        const p = batch[i] as PlannedObject;
        const r = p.resource;
        let entry: ChangeSetEntry;
        if (res.status === "fulfilled") {
          owned.set(r.key, { key: r.key, apiVersion: r.object.apiVersion, fp: this.fingerprint(res.value), dh: desiredHash(r) });
          entry = { key: r.key, subject: r.subject, action: p.action, source: r.source };
        } else {
          failed++;
          entry = { key: r.key, subject: r.subject, action: "failed", message: errorText(res.reason), source: r.source };
        }
        cs.add(entry);
        this.onEntry(entry);
      });
      if (failed > 0) throw new Error(planFailure(cs));
    }
  }

  private async prune(owner: string, stale: InventoryEntry[], live: Map<string, KubeObject>, cs: ChangeSet, owned: Map<string, InventoryEntry>): Promise<void> {
    const items = stale.map((e) => ({ e, id: parseIdKey(e.key) }));
    const ordered = pruneOrder(items, (x) => x.id);
    for (const { e, id } of ordered) {
      const subject = subjectOf(id.kind, id.namespace, id.name);
      const obj = live.get(e.key);
      const mapping: ResourceMapping | undefined = this.discovery.lookup(e.apiVersion, id.kind);
      if (!obj || !mapping || !carriesMarks(obj, owner)) {
        // Gone already, or no longer carrying our marks (someone adopted it): not ours to delete.
        owned.delete(e.key);
        const entry: ChangeSetEntry = { key: e.key, subject, action: "skipped", message: obj ? "no longer carries plumber's marks" : "already gone" };
        cs.add(entry);
        continue;
      }
      try {
        await deleteOne(this.client, mapping, id.namespace, id.name);
        owned.delete(e.key);
        const entry: ChangeSetEntry = { key: e.key, subject, action: "pruned" };
        cs.add(entry);
        this.onEntry(entry);
      } catch (err) {
        const entry: ChangeSetEntry = { key: e.key, subject, action: "failed", message: `prune: ${errorText(err)}` };
        cs.add(entry);
        this.onEntry(entry);
      }
    }
    if (cs.entries.some((x) => x.action === "failed")) throw new SyncError(planFailure(cs), cs, [...owned.values()]);
  }
}

function desiredHash(r: Resource): string {
  return sha256Hex(canonicalJson(r.object)).slice(0, 32);
}

function idOf(r: Resource): { group: string; kind: string; namespace: string; name: string } {
  return r.id;
}

function compareKeys(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as string | number;
    const y = b[i] as string | number;
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

function errorText(e: unknown): string {
  if (e instanceof KubeApiError) return `${e.reason}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

function planFailure(cs: ChangeSet): string {
  const failed = cs.entries.filter((e) => e.action === "failed");
  const lines = failed.slice(0, 20).map((e) => `${e.source ? `${e.source.file}:${e.source.line}: ` : ""}${e.subject}: ${e.message ?? "failed"}`);
  if (failed.length > 20) lines.push(`... and ${failed.length - 20} more`);
  return `${failed.length} object(s) failed:\n${lines.join("\n")}`;
}
