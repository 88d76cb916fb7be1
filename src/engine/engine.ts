import type { KubeClient } from "../kube/client.js";
import { resourcePath, type Discovery, type ResourceMapping } from "../kube/discovery.js";
import { parseIdKey } from "../manifests/identity.js";
import type { FileProblem, KubeObject, Manifest } from "../types.js";
import { FileProblemError } from "../types.js";
import { mapLimit, settleLimit } from "../util/pool.js";
import { FORCE_ANNOTATION, PRUNE_ANNOTATION, SSA_ANNOTATION, liveIgnored, livePruneDisabled, manifestPolicy, policyOf, type ObjectPolicy } from "./annotations.js";
import { applyOne, deleteForRecreate, dryRunCreateFresh, dryRunRecreate, existedBefore, takeOver, type Applied } from "./apply.js";
import { ChangeSet, subjectOf, type ChangeSetEntry } from "./changeset.js";
import { NO_CLAIM, ownedByOther, preconditionFor, writeClaimed, type Claim, type ClaimTable } from "./claims.js";
import { errorText, failureFlags, immutableFields, LostClaim, type FailureFlags } from "./errors.js";
import { contestingManagers, driftPayload } from "./fields.js";
import { canonicalJson, keyedHex } from "./hash.js";
import type { InventoryEntry } from "./inventory.js";
import { inventoryTargets, listOwned, lookUp as lookUpUnowned, resourceTargets, targetKey, type ListTarget } from "./live.js";
import { carriesMarks, OWNER_LABEL } from "./marks.js";
import { applyOrder, pruneOrder, sortKey, stageOf } from "./order.js";
import { deleteOne } from "./prune.js";
import { isCrd, isNamespace, resolveResources, type CachedResource, type NamespacePolicy, type Resource } from "./resource.js";
import type { SeenObjects } from "./health.js";
import { afterTakeover, LAST_APPLIED_ANNOTATION, planTakeover, takeoverNote, type Takeover } from "./takeover.js";
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
  /** Shared by every engine writing this cluster in this process (claims.ts): ownership checks
   *  and writes of one object by two apps never interleave. */
  claims?: ClaimTable;
  /** How long a drift look's LIST may stand in for the one a sync would start (prefetchLive); 0 (default): never. */
  freshListMs?: number;
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
   *  inventory carry fp ""), so a kill at any later point leaves no object plumber wrote but does not know.
   *  Not called when every object to write is in the previous inventory already. */
  recordIntent?: (inventory: InventoryEntry[]) => Promise<void>;
  /** The LIST of the previous inventory's objects, started before the revision was fetched (Engine.prefetchLive). */
  prefetched?: LivePrefetch;
  /** Reason to refuse an object before any write (plumber's state namespace, its state/control/lease
   *  objects), or undefined to allow. Applied to every resolved object including Namespace objects. */
  guard?: (id: { group: string; kind: string; namespace: string; name: string }) => string | undefined;
}

/** A LIST begun early: the plan takes what it covers and lists only what the new revision adds. */
export interface LivePrefetch {
  owner: string;
  /** The targets listed and what they hold; undefined when the LIST failed. */
  done: Promise<Look | undefined>;
}

/** A look at an owner's live objects: the LISTs' targets, what they held, and when the first of them started. */
interface Look {
  targets: Set<string>;
  live: Map<string, KubeObject>;
  at: number;
  /** Objects written since the LIST, as the server answered: they stand over live's. */
  written?: Map<string, KubeObject>;
}

export interface SyncOutcome {
  changeSet: ChangeSet;
  inventory: InventoryEntry[];
  /** The objects this sync did not write, as its own LIST (or GET) saw them: a health look just after may stand on them (health.ts SeenObjects). */
  seen?: SeenObjects;
}

/** The plan failed: nothing at all was written. */
export class PlanError extends Error {
  constructor(
    message: string,
    readonly changeSet: ChangeSet,
    /** Of the plan's own cause (a failed intent record), besides the failed entries' own flags. */
    readonly failure: FailureFlags = {},
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
  /** Keys that are gone from the cluster (or lost plumber's marks), or were recorded by intent and never written. */
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

/** What the engine decided for one desired object; PlannedObject plus what the write needs. */
interface Step extends PlannedObject {
  notes: string[];
  policy: ObjectPolicy;
  /** Not written: plumber.dev/ssa Ignore, or IfNotPresent and it exists. */
  hold?: "ignore" | "exists";
  takeover?: Takeover;
  /** Who applies it: takeover from kubectl happens on the owner's first apply only. */
  owner: string;
  /** Not looked up before the write (its kind or namespace is new in this revision): live is unknown, not absent. */
  unseen?: true;
}

/** Everything sync decides before its first write; plan returns it, sync carries it out. */
interface Prepared {
  cs: ChangeSet;
  resources: Resource[];
  live: Map<string, KubeObject>;
  /** The look live came from (its targets and when it was taken). */
  look: Look;
  /** Dry-run (or skipped as unchanged) now. */
  ready: Step[];
  /** Kinds or namespaces this revision creates: dry-run only once stage 0 is written. */
  deferred: Step[];
  prune: { e: InventoryEntry; id: ReturnType<typeof parseIdKey>; live: KubeObject; mapping: ResourceMapping }[];
  /** Inventory entries dropped without a delete (prune disabled, ignored, gone, not ours). */
  dropped: Set<string>;
  owner: string;
  guard: Guard;
}

type Guard = SyncRequest["guard"];

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
  private readonly hashKey: Uint8Array | undefined;
  private readonly claims: ClaimTable | undefined;
  private readonly freshListMs: number;
  /** The last look: a drift look's LIST while nothing was written since, or what a sync listed and then wrote. */
  private lastLook?: Look & { owner: string };
  /** Counts looks held (holdLook), so a timer can tell whether its look is still the last. */
  private looks = 0;
  /**
   * Fingerprints of live objects by uid, with the resourceVersion they were computed at: an
   * object's resourceVersion changes with every write, so an equal one means equal content and
   * the drift check of an unchanged object costs a lookup, not a hash. Holds what the last two
   * looks saw (rotated at each LIST pass), so it never outgrows the app. Never fed a dry-run
   * result: that carries the live resourceVersion with content that was not stored.
   */
  private liveFps = new Map<string, { rv: string; fp: string }>();
  private liveFpsBefore = new Map<string, { rv: string; fp: string }>();
  /** The parsed manifest each resolved resource came from (resolve), to find its cached hash. */
  private readonly origins = new WeakMap<Resource, object>();
  /** desiredHash per parsed manifest: an unchanged file's manifests are the same objects across commits (manifests/read.ts). */
  private readonly desiredHashes = new WeakMap<object, { key: string; labels: string; dh: string }>();
  /** desiredHash per resolved resource: resolve hands back the same resource for an unchanged manifest, and a resource never changes. */
  private readonly resourceHashes = new WeakMap<Resource, string>();
  /** Each resource's ObjectPolicy (manifestPolicy), when its annotations are valid. */
  private readonly policies = new WeakMap<Resource, ObjectPolicy>();
  /** The change-set entry of an unchanged resource; entries are never modified once added. */
  private readonly unchangedEntries = new WeakMap<Resource, ChangeSetEntry>();
  /** The last resolve's resources, by parsed manifest (resource.ts ResolveOptions.cache). */
  private readonly resolved = new WeakMap<object, CachedResource>();

  constructor(deps: EngineDeps) {
    this.client = deps.client;
    this.discovery = deps.discovery;
    this.fieldManager = deps.fieldManager ?? "plumber";
    this.concurrency = deps.concurrency ?? 8;
    this.crdTimeoutMs = deps.crdTimeoutMs ?? 60_000;
    this.onEntry = deps.onEntry ?? (() => {});
    this.hashKey = deps.hashKey;
    this.claims = deps.claims;
    this.freshListMs = deps.freshListMs ?? 0;
  }

  /** 128 bits are plenty to tell states apart and keep large inventories inside one ConfigMap. */
  fingerprint(obj: KubeObject): string {
    return keyedHex(driftPayload(obj, this.fieldManager), this.hashKey).slice(0, 32);
  }

  /** Hash of the manifest as sent (inventory dh), keyed like fingerprint. */
  desiredHash(r: Resource): string {
    const known = this.resourceHashes.get(r);
    if (known !== undefined) return known;
    const dh = this.hashOfDesired(r);
    this.resourceHashes.set(r, dh);
    return dh;
  }

  private hashOfDesired(r: Resource): string {
    const origin = this.origins.get(r);
    // What resolve adds to a manifest (namespace, marks) shows in the key and the labels.
    const labels = origin ? JSON.stringify(r.object.metadata.labels ?? {}) : "";
    const hit = origin && this.desiredHashes.get(origin);
    if (hit && hit.key === r.key && hit.labels === labels) return hit.dh;
    const dh = keyedHex(canonicalJson(r.object), this.hashKey).slice(0, 32);
    if (origin) this.desiredHashes.set(origin, { key: r.key, labels, dh });
    return dh;
  }

  /** The manifest's plumber.dev annotations, read once per resource; a resource with problems is read again each time (the sync fails on them). */
  private policyOf(r: Resource, problems: FileProblem[]): ObjectPolicy | undefined {
    const known = this.policies.get(r);
    if (known) return known;
    const before = problems.length;
    const policy = manifestPolicy(r.object, r.source, problems);
    if (problems.length === before) this.policies.set(r, policy);
    return policy;
  }

  private unchangedEntry(r: Resource): ChangeSetEntry {
    let e = this.unchangedEntries.get(r);
    if (!e) this.unchangedEntries.set(r, (e = { key: r.key, subject: r.subject, action: "unchanged", source: r.source }));
    return e;
  }

  /** fingerprint of an object as the server stores it (a LIST, GET or write answer), cached by uid and resourceVersion. */
  private liveFingerprint(obj: KubeObject): string {
    const uid = obj.metadata.uid;
    const rv = obj.metadata.resourceVersion;
    if (typeof uid !== "string" || typeof rv !== "string" || uid === "" || rv === "") return this.fingerprint(obj);
    const hit = this.liveFps.get(uid) ?? this.liveFpsBefore.get(uid);
    if (hit?.rv === rv) {
      this.liveFps.set(uid, hit);
      return hit.fp;
    }
    const fp = this.fingerprint(obj);
    this.liveFps.set(uid, { rv, fp });
    return fp;
  }

  /** A new look at the live objects begins: what the one before last saw is dropped. */
  private rotateLiveFingerprints(): void {
    this.liveFpsBefore = this.liveFps;
    this.liveFps = new Map();
  }

  /**
   * Starts the LIST per (kind, namespace) of an inventory now, so it runs while the new revision
   * is fetched and parsed; the sync handed it (SyncRequest.prefetched) uses it instead of listing
   * the same again. A failed prefetch is forgotten: the sync lists for itself.
   */
  prefetchLive(owner: string, previous: InventoryEntry[]): LivePrefetch | undefined {
    if (previous.length === 0) return undefined;
    const look = this.lastLook;
    const fresh = look?.owner === owner && performance.now() - look.at <= this.freshListMs ? look : undefined;
    const done = (async () => {
      await this.discovery.ensureLoaded();
      const targets = this.listTargets([], previous);
      const keys = new Set(targets.map(targetKey));
      // The look of the last round (a drift look, or the last sync's LIST with its writes) covers
      // the same inventory: what it saw stands (an object someone changed meanwhile is the next
      // drift look's to repair).
      if (fresh && [...keys].every((k) => fresh.targets.has(k))) {
        const live = new Map(fresh.live);
        for (const [k, v] of fresh.written ?? []) live.set(k, v);
        return { targets: new Set(fresh.targets), live, at: fresh.at };
      }
      const at = performance.now();
      return { targets: keys, live: await listOwned(this.client, owner, targets, this.concurrency), at };
    })().catch(() => undefined);
    return { owner, done };
  }

  /** Live objects of the plan's targets: what a prefetch covers from it, the rest listed now. */
  private async listLive(owner: string, targets: ListTarget[], prefetched: LivePrefetch | undefined): Promise<Look> {
    const early = prefetched?.owner === owner ? await prefetched.done : undefined;
    if (!early) {
      const at = performance.now();
      return { targets: new Set(targets.map(targetKey)), live: await listOwned(this.client, owner, targets, this.concurrency), at };
    }
    const rest = targets.filter((t) => !early.targets.has(targetKey(t)));
    if (rest.length > 0) for (const [k, v] of await listOwned(this.client, owner, rest, this.concurrency)) early.live.set(k, v);
    for (const t of rest) early.targets.add(targetKey(t));
    return early;
  }

  /**
   * After a sync, what it listed and what it wrote is the live state as of its LIST: left as the
   * look a next commit's sync may start from, like a drift look's (an app that gets a commit every
   * round would otherwise LIST on every commit). Only a complete one: every object of the new
   * inventory seen or written.
   */
  private leaveLook(p: Prepared, look: Look, inventory: InventoryEntry[], seen: Map<string, KubeObject>, answers: Map<string, KubeObject>): void {
    if (this.freshListMs <= 0) return;
    if (!inventory.every((e) => seen.has(e.key) || answers.has(e.key))) return;
    // The sync's LISTs covered the previous inventory and the desired set, so the new inventory's too.
    const left = { owner: p.owner, at: look.at, targets: look.targets, live: seen, written: answers };
    this.holdLook(left);
    // Stood on a look from the last round: list again now, off the commit's path, so a commit in
    // the next round finds a look of this one rather than one too old to stand (two intervals).
    if (performance.now() - look.at > this.freshListMs / 2) this.refreshLook(left, inventory);
  }

  /** Lists an inventory in the background; what it saw replaces `held`, unless a write or another look came first. */
  private refreshLook(held: Look & { owner: string }, inventory: InventoryEntry[]): void {
    const targets = inventoryTargets(this.discovery, inventory);
    const at = performance.now();
    listOwned(this.client, held.owner, targets, this.concurrency).then(
      (live) => {
        if (this.lastLook === held) this.holdLook({ owner: held.owner, at, targets: new Set(targets.map(targetKey)), live });
      },
      // Failed: the held look ages out and the next sync lists for itself.
      () => undefined,
    );
  }

  /**
   * Held no longer than it may be used: a fleet of settled apps does not keep every app's LIST.
   * The timer holds a number, not the look: a look replaced by the next is garbage at once.
   */
  private holdLook(look: Look & { owner: string }): void {
    this.lastLook = look;
    const held = ++this.looks;
    setTimeout(() => {
      if (this.looks === held) this.lastLook = undefined;
    }, Math.max(0, this.freshListMs - (performance.now() - look.at))).unref();
  }

  /** Resolves manifests against discovery; errors name file:line. No writes. */
  async resolve(owner: string, manifests: Manifest[], defaultNamespace: string, policy?: NamespacePolicy): Promise<Resource[]> {
    await this.discovery.ensureLoaded();
    let resources: Resource[];
    try {
      resources = resolveResources(manifests, { owner, defaultNamespace, discovery: this.discovery, policy, cache: this.resolved });
    } catch (e) {
      // A CRD installed since the last look would resolve: look once more before failing.
      if (!(e instanceof FileProblemError)) throw e;
      await this.discovery.refresh();
      resources = resolveResources(manifests, { owner, defaultNamespace, discovery: this.discovery, policy, cache: this.resolved });
    }
    // resolveResources refuses the whole set on any problem, so what it returns is one resource per manifest, in order.
    if (resources.length === manifests.length) resources.forEach((r, i) => this.origins.set(r, (manifests[i] as Manifest).object));
    return resources;
  }

  /** Brings the cluster to the desired set: dry-run everything, write what changed, prune the rest. */
  async sync(req: SyncRequest): Promise<SyncOutcome> {
    this.lastLook = undefined;
    const held: Claim[] = [];
    try {
      return await this.syncHeld(req, held);
    } finally {
      for (const c of held) c.release();
    }
  }

  private async syncHeld(req: SyncRequest, held: Claim[]): Promise<SyncOutcome> {
    const p = await this.prepare(req, held);
    const { cs } = p;
    if (cs.count("failed") > 0) throw new PlanError(planFailure(cs), cs);

    const desiredKeys = new Set(p.resources.map((r) => r.key));
    const owned = new Map(req.previous.map((e) => [e.key, e]));
    const written = [...p.ready, ...p.deferred].filter((s) => s.hold !== "ignore");
    // Only objects new to the inventory need recording before they are written.
    if (req.recordIntent && written.some((s) => !owned.has(s.resource.key))) {
      const intent = new Map(owned);
      for (const s of written) if (!intent.has(s.resource.key)) intent.set(s.resource.key, { key: s.resource.key, apiVersion: s.resource.object.apiVersion, fp: "" });
      try {
        await req.recordIntent([...intent.values()]);
      } catch (e) {
        throw new PlanError(`recording the intent to apply failed, nothing written: ${errorText(e)}`, cs, failureFlags(e));
      }
    }

    const inventoryNow = (): InventoryEntry[] => [...owned.values()];
    const answers = new Map<string, KubeObject>();
    try {
      const stage0 = p.ready.filter((s) => stageOf(s.resource.id.group, s.resource.id.kind) === 0);
      const stage1 = p.ready.filter((s) => stageOf(s.resource.id.group, s.resource.id.kind) === 1);
      await this.write(stage0, cs, owned, answers);
      const crds = stage0.filter((s) => isCrd(s.resource) && !s.hold);
      for (const s of crds) await waitCrdEstablished(this.client, s.resource.id.name, this.crdTimeoutMs);
      if (crds.some((s) => s.action !== "unchanged")) await this.discovery.refresh();

      // What could not be checked before stage 0 existed is checked now, before any of stage 1.
      const late = await this.dryRun(p.deferred, p.live, cs, new Map());
      if (cs.count("failed") > 0) throw new SyncError(planFailure(cs), cs, inventoryNow());
      const all1 = [...stage1, ...late];
      await this.write(all1, cs, owned, answers);
    } catch (e) {
      if (e instanceof SyncError) throw e;
      throw new SyncError(errorText(e), cs, inventoryNow());
    }

    for (const key of p.dropped) owned.delete(key);
    if (req.prune) await this.prune(p, cs, owned);
    const ignored = new Set(p.ready.filter((s) => s.hold === "ignore").map((s) => s.resource.key));
    const inventory = p.resources
      .filter((r) => !ignored.has(r.key))
      .map((r) => owned.get(r.key))
      .filter((e): e is InventoryEntry => e !== undefined);
    if (!req.prune) {
      // Without prune, objects that left the repo stay plumber's: keep them in the inventory.
      for (const e of req.previous) if (!desiredKeys.has(e.key) && !p.dropped.has(e.key)) inventory.push(e);
    }
    const seen = unwritten(p, req.owner);
    this.leaveLook(p, p.look, inventory, seen, answers);
    return { changeSet: cs, inventory, seen: { objects: seen } };
  }

  /**
   * What sync would do, from the very same decisions (namespace policy, guard, ownership,
   * annotations, dry-runs), with the writes left out. Objects whose kind or namespace this
   * revision creates cannot be dry-run before those exist: they show as created, with a note.
   */
  async plan(req: SyncRequest): Promise<Plan> {
    const p = await this.prepare(req);
    if (p.cs.count("failed") > 0) throw new PlanError(planFailure(p.cs), p.cs);
    const objects = applyOrder([...p.ready, ...p.deferred], (s) => s.resource.id).map(toPlanned);
    return { objects, prune: req.prune ? p.prune.map((x) => ({ key: x.e.key, subject: subjectOf(x.id.kind, x.id.namespace, x.id.name), live: x.live })) : [] };
  }

  /**
   * Compares what is live with the fingerprints recorded at the last apply: one LIST per (kind,
   * namespace). No dry-runs, no writes.
   */
  async detectDrift(owner: string, inventory: InventoryEntry[]): Promise<DriftReport> {
    await this.discovery.ensureLoaded();
    const targets = this.listTargets([], inventory);
    const at = performance.now();
    const live = await listOwned(this.client, owner, targets, this.concurrency);
    // Shared with the report: neither it nor a look is ever modified (a sync copies what it takes).
    if (this.freshListMs > 0) this.holdLook({ owner, at, targets: new Set(targets.map(targetKey)), live });
    this.rotateLiveFingerprints();
    const drifted: string[] = [];
    const missing: string[] = [];
    const contested = new Map<string, string[]>();
    for (const e of inventory) {
      const obj = live.get(e.key);
      // fp "": recorded as intent, never written (or its answer never came): apply it again.
      if (!obj || e.fp === "") missing.push(e.key);
      else if (this.liveFingerprint(obj) !== e.fp) {
        drifted.push(e.key);
        const who = contestingManagers(obj, this.fieldManager);
        if (who.length > 0) contested.set(e.key, who);
      }
    }
    return { drifted, missing, live, contested };
  }

  /**
   * Re-applies the drifted and missing objects of a known-good desired set; no dry-run, no prune.
   * A missing object that another app now owns is left to it; plumber.dev/ssa is honoured.
   */
  async repair(
    owner: string,
    manifests: Manifest[],
    defaultNamespace: string,
    drift: Pick<DriftReport, "drifted" | "missing"> & { live?: Map<string, KubeObject> },
    inventory: InventoryEntry[],
    policy?: NamespacePolicy,
    opts: { guard?: Guard } = {},
  ): Promise<SyncOutcome> {
    const missing = new Set(drift.missing);
    const wanted = new Set([...drift.drifted, ...drift.missing]);
    const resources = (await this.resolve(owner, manifests, defaultNamespace, policy)).filter((r) => wanted.has(r.key));
    const claim = this.claims?.take(owner, resources.map((r) => r.key)) ?? NO_CLAIM;
    if (resources.length > 0) this.lastLook = undefined;
    try {
      return await this.repairHeld(owner, resources, missing, drift, inventory, claim, opts.guard);
    } finally {
      claim.release();
    }
  }

  private async repairHeld(
    owner: string,
    resources: Resource[],
    missing: Set<string>,
    drift: { live?: Map<string, KubeObject> },
    inventory: InventoryEntry[],
    claim: Claim,
    guard: Guard,
  ): Promise<SyncOutcome> {
    const cs = new ChangeSet();
    const owned = new Map(inventory.map((e) => [e.key, e]));
    const live = new Map(drift.live ?? []);
    // Missing from our LIST: gone, or taken by someone else. Look before writing over it.
    await mapLimit(
      resources.filter((r) => missing.has(r.key) && !r.pendingKind),
      this.concurrency,
      async (r) => {
        const obj = await this.client.getOptional<KubeObject>(resourcePath(r.mapping, r.id.namespace, r.id.name));
        if (obj) live.set(r.key, obj);
      },
    );
    const steps: Step[] = [];
    for (const r of applyOrder(resources, (x) => x.id)) {
      const cur = live.get(r.key);
      const policyR = policyOf(r.object.metadata.annotations);
      const holder = claim.refused.get(r.key);
      const refused = guard?.(r.id) ?? ownershipProblem(r, cur, owner, policyR) ?? (holder && !carriesMarks(cur ?? {}, owner) ? ownedByOther(r.subject, holder, owner, policyR.adopt) : undefined);
      if (refused) {
        const entry: ChangeSetEntry = { key: r.key, subject: r.subject, action: "skipped", message: refused, source: r.source };
        cs.add(entry);
        this.onEntry(entry);
        continue;
      }
      const step: Step = { resource: r, action: cur ? "configured" : "created", live: cur, notes: [], policy: policyR, owner, ...(r.pendingKind ? { unseen: true as const } : {}) };
      if (policyR.ssa === "Ignore" || liveIgnored(cur)) step.hold = "ignore";
      else if (policyR.ssa === "IfNotPresent" && cur) step.hold = "exists";
      else step.takeover = this.takeoverFor(cur, owner);
      steps.push(step);
    }
    try {
      await this.write(steps, cs, owned);
    } catch (e) {
      throw new SyncError(errorText(e), cs, [...owned.values()]);
    }
    return { changeSet: cs, inventory: inventory.map((e) => owned.get(e.key) ?? e) };
  }

  /** The one planning path of sync and plan: every decision made, nothing written. */
  private async prepare(req: SyncRequest, held?: Claim[]): Promise<Prepared> {
    const cs = new ChangeSet();
    const resources = await this.resolve(req.owner, req.manifests, req.defaultNamespace, req.namespacePolicy);
    if (resources.length === 0 && req.previous.length > 0 && !req.allowEmpty) {
      throw new PlanError(
        `the revision has no objects; refusing to prune all ${req.previous.length} objects plumber manages (set allowEmpty to allow it)`,
        cs,
      );
    }
    const problems: FileProblem[] = [];
    for (const r of resources) this.policyOf(r, problems);
    if (problems.length > 0) throw new FileProblemError(problems);

    const fail = (r: Resource, message: string): void => {
      const entry: ChangeSetEntry = { key: r.key, subject: r.subject, action: "failed", message, source: r.source };
      cs.add(entry);
      this.onEntry(entry);
    };
    const allowed = resources.filter((r) => {
      const refused = req.guard?.(r.id);
      if (refused) fail(r, refused);
      return !refused;
    });
    // Held from before the first read of the live objects until sync's last write (claims.ts).
    const claim = held && this.claims ? this.claims.take(req.owner, allowed.map((r) => r.key)) : NO_CLAIM;
    held?.push(claim);

    // Ours: one LIST per (kind, namespace). Anything else is looked up once, so a first deploy
    // sees what is already there (kubectl's, another app's); in steady state every object is in
    // the LIST and this costs nothing.
    const look = await this.listLive(req.owner, this.listTargets(resources, req.previous), req.prefetched);
    const live = look.live;
    this.rotateLiveFingerprints();
    const lookUp = async (rs: Resource[]): Promise<void> => {
      const unseen = rs.filter((r) => !live.has(r.key) && !r.pendingKind).map((r) => ({ key: r.key, mapping: r.mapping, namespace: r.id.namespace, name: r.id.name }));
      for (const [k, obj] of await lookUpUnowned(this.client, unseen, this.concurrency)) live.set(k, obj);
    };
    const stage0 = allowed.filter((r) => stageOf(r.id.group, r.id.kind) === 0);
    await lookUp(stage0);
    const newNamespaces = new Set(stage0.filter((r) => isNamespace(r) && !live.has(r.key)).map((r) => r.id.name));
    const pendingWhy = (r: Resource): string | undefined =>
      r.pendingKind
        ? `not dry-run: kind ${r.id.kind} is defined by a CustomResourceDefinition this revision creates`
        : stageOf(r.id.group, r.id.kind) === 1 && newNamespaces.has(r.id.namespace)
          ? `not dry-run: namespace ${r.id.namespace} is created by this revision`
          : undefined;
    await lookUp(allowed.filter((r) => stageOf(r.id.group, r.id.kind) === 1 && !pendingWhy(r)));

    const ready: Step[] = [];
    const deferred: Step[] = [];
    for (const r of allowed) {
      const policy = this.policies.get(r) as ObjectPolicy;
      const cur = live.get(r.key);
      const refused = ownershipProblem(r, cur, req.owner, policy);
      if (refused) {
        fail(r, refused);
        continue;
      }
      const holder = claim.refused.get(r.key);
      if (holder && !carriesMarks(cur ?? {}, req.owner)) {
        // Another app is checking or writing it right now: a race, retried (claims.ts).
        const entry: ChangeSetEntry = { key: r.key, subject: r.subject, action: "failed", message: ownedByOther(r.subject, holder, req.owner, policy.adopt), source: r.source, transient: true };
        cs.add(entry);
        this.onEntry(entry);
        continue;
      }
      const step: Step = { resource: r, action: "created", live: cur, notes: [], policy, owner: req.owner };
      if (policy.ssa === "Ignore" || liveIgnored(cur)) {
        step.hold = "ignore";
        step.action = "unchanged";
        step.notes.push(`${SSA_ANNOTATION}: Ignore: left alone${cur ? "" : " (not created)"}`);
      } else if (policy.ssa === "IfNotPresent" && cur) {
        step.hold = "exists";
        step.action = "unchanged";
        step.notes.push(`${SSA_ANNOTATION}: IfNotPresent: exists, not updated`);
      }
      const why = step.hold ? undefined : pendingWhy(r);
      if (why) {
        step.notes.push(why);
        step.unseen = true;
        deferred.push(step);
      } else ready.push(step);
    }

    const previous = new Map(req.previous.map((e) => [e.key, e]));
    await this.dryRun(ready, live, cs, previous);

    const desired = new Set(resources.map((r) => r.key));
    const dropped = new Set<string>();
    for (const s of ready) if (s.hold === "ignore" && previous.has(s.resource.key)) dropped.add(s.resource.key);
    // Stale entries missing from our LIST are gone or someone else's now: look, so the change set
    // can say which (rare: only when objects leave the repo).
    const staleUnseen = req.previous.filter((e) => !desired.has(e.key) && !live.has(e.key));
    await mapLimit(staleUnseen, this.concurrency, async (e) => {
      const id = parseIdKey(e.key);
      const mapping = this.discovery.lookup(e.apiVersion, id.kind);
      if (!mapping) return;
      const obj = await this.client.getOptional<KubeObject>(resourcePath(mapping, id.namespace, id.name));
      if (obj) live.set(e.key, obj);
    });
    const prune: Prepared["prune"] = [];
    for (const e of req.previous) {
      if (desired.has(e.key)) continue;
      const id = parseIdKey(e.key);
      const obj = live.get(e.key);
      const mapping = this.discovery.lookup(e.apiVersion, id.kind);
      // Only what carries this owner's marks is deleted; the LIST holds nothing else.
      if (!obj || !mapping || !carriesMarks(obj, req.owner) || livePruneDisabled(obj) || liveIgnored(obj) || req.guard?.(id)) continue;
      prune.push({ e, id, live: obj, mapping });
    }
    return { cs, resources, live, look, ready, deferred, prune, dropped, owner: req.owner, guard: req.guard };
  }

  /**
   * kubectl's fields are taken over when plumber first applies an object (it does not carry this
   * owner's marks yet), or when client-side apply has been at it again (the last-applied
   * annotation is back). A later kubectl edit of a field plumber does not manage is left alone.
   */
  private takeoverFor(live: KubeObject | undefined, owner: string): Takeover | undefined {
    if (!live) return undefined;
    if (carriesMarks(live, owner) && live.metadata.annotations?.[LAST_APPLIED_ANNOTATION] === undefined) return undefined;
    return planTakeover(live, this.fieldManager);
  }

  private listTargets(resources: Resource[], previous: InventoryEntry[]): ListTarget[] {
    return [...resourceTargets(resources), ...inventoryTargets(this.discovery, previous)];
  }

  /**
   * Dry-runs what may change, filling in each step's action. An object whose manifest is the one
   * last applied and whose live state still matches the recorded fingerprint would come back
   * unchanged and is never written, so it needs no dry-run: a one-line commit to a 1,000-object
   * app costs one dry-run, not 1,000.
   */
  private async dryRun(steps: Step[], live: Map<string, KubeObject>, cs: ChangeSet, previous: Map<string, InventoryEntry>): Promise<Step[]> {
    const toCheck: Step[] = [];
    for (const s of steps) {
      if (s.hold) continue;
      const r = s.resource;
      const prev = previous.get(r.key);
      const current = live.get(r.key);
      s.live = current;
      if (s.notes.length > 0) s.notes = s.notes.filter((n) => !n.startsWith("not dry-run:"));
      if (prev?.dh && prev.fp && current && prev.dh === this.desiredHash(r) && prev.fp === this.liveFingerprint(current) && !this.takeoverFor(current, s.owner)) {
        s.action = "unchanged";
      } else toCheck.push(s);
    }
    const results = await settleLimit(toCheck, this.concurrency, async (s): Promise<Applied & { recreate?: boolean }> => {
      try {
        return await applyOne(this.client, s.resource, { fieldManager: this.fieldManager, dryRun: true });
      } catch (e) {
        if (!s.policy.force || immutableFields(e).length === 0 || !s.live) throw e;
        return { ...(await dryRunRecreate(this.client, s.resource, this.fieldManager)), recreate: true };
      }
    });
    const takeovers: Step[] = [];
    results.forEach((res, i) => {
      const s = toCheck[i] as Step;
      const r = s.resource;
      if (res.status === "rejected") {
        const entry: ChangeSetEntry = { key: r.key, subject: r.subject, action: "failed", message: errorText(res.reason), source: r.source, ...failureFlags(res.reason) };
        cs.add(entry);
        this.onEntry(entry);
        return;
      }
      const merged = res.value.object;
      s.merged = merged;
      if (res.value.warnings.length > 0) s.warnings = res.value.warnings;
      if (res.value.recreate) {
        s.recreate = true;
        s.action = "configured";
        s.notes.push(`immutable fields change: deleted and recreated (${FORCE_ANNOTATION}: enabled)`);
        return;
      }
      const current = s.live;
      if (!existedBefore(merged)) s.action = "created";
      else if (current && this.liveFingerprint(current) === this.fingerprint(merged)) s.action = "unchanged";
      else s.action = "configured";
      const t = this.takeoverFor(current, s.owner);
      if (t && current) {
        s.takeover = t;
        if (s.action === "unchanged") s.action = "configured";
        s.notes.push(takeoverNote(t));
        takeovers.push(s);
      }
    });
    // The dry-run ran before the takeover, so it kept what only kubectl owns. Foresee what the
    // apply removes, with a fresh dry-run create to tell which of those the server defaults again
    // (once per object, on its first apply by plumber only).
    await mapLimit(takeovers, this.concurrency, async (s) => {
      const fresh = await dryRunCreateFresh(this.client, s.resource, this.fieldManager).catch(() => undefined);
      if (fresh) s.merged = afterTakeover(s.merged as KubeObject, s.live as KubeObject, s.takeover as Takeover, this.fieldManager, fresh.object);
      else s.notes.push("fields only kubectl set are removed on apply (not shown: the server could not dry-run a fresh create)");
    });
    return steps;
  }

  /** Writes steps in order; objects of one kind rank go out together. */
  /**
   * Objects left as they are first (in any order), then the writes in apply order. `answers`:
   * each written object as the server stored it, by key.
   */
  private async write(steps: Step[], cs: ChangeSet, owned: Map<string, InventoryEntry>, answers?: Map<string, KubeObject>): Promise<void> {
    const batches = new Map<string, Step[]>();
    const writes: Step[] = [];
    for (const s of steps) {
      const r = s.resource;
      if (s.hold === "ignore") {
        cs.add({ key: r.key, subject: r.subject, action: "skipped", message: s.notes.join("; ") || `${SSA_ANNOTATION}: Ignore`, source: r.source });
        continue;
      }
      if (s.hold === "exists" || s.action === "unchanged") {
        const fp = this.liveFingerprint(s.live as KubeObject);
        const dh = this.desiredHash(r);
        const prev = owned.get(r.key);
        // The entry of an object left as it was is the one it had: 10k unchanged objects allocate nothing here.
        if (prev?.fp !== fp || prev.dh !== dh || prev.apiVersion !== r.object.apiVersion) owned.set(r.key, { key: r.key, apiVersion: r.object.apiVersion, fp, dh });
        if (s.hold) cs.add({ key: r.key, subject: r.subject, action: "skipped", message: s.notes.join("; "), source: r.source });
        else cs.add(this.unchangedEntry(r));
        continue;
      }
      writes.push(s);
    }
    // Only what is written is sorted: a one-line commit to a 10k-object app sorts one object.
    for (const s of applyOrder(writes, (w) => w.resource.id)) {
      const r = s.resource;
      const k = sortKey(r.id);
      const batchKey = `${k[0]}/${k[1]}/${k[2]}`;
      const b = batches.get(batchKey);
      if (b) b.push(s);
      else batches.set(batchKey, [s]);
    }
    for (const batch of batches.values()) {
      const results = await settleLimit(batch, this.concurrency, (s) => this.writeOne(s));
      let failed = 0;
      results.forEach((res, i) => {
        const s = batch[i] as Step;
        const r = s.resource;
        let entry: ChangeSetEntry;
        if (res.status === "fulfilled") {
          const { applied, notes } = res.value;
          owned.set(r.key, { key: r.key, apiVersion: r.object.apiVersion, fp: this.liveFingerprint(applied.object), dh: this.desiredHash(r) });
          answers?.set(r.key, applied.object);
          entry = { key: r.key, subject: r.subject, action: s.recreate ? "recreated" : s.action, source: r.source };
          if (applied.warnings.length > 0) entry.warnings = applied.warnings;
          if (notes.length > 0) entry.notes = notes;
        } else {
          failed++;
          // The answer may be lost while the write took effect: keep it known (fp "" = unverified),
          // so a later prune or repair finds it. An object lost to another writer is not this app's.
          if (res.reason instanceof LostClaim && !res.reason.marked) owned.delete(r.key);
          else if (!owned.has(r.key)) owned.set(r.key, { key: r.key, apiVersion: r.object.apiVersion, fp: "" });
          entry = { key: r.key, subject: r.subject, action: "failed", message: errorText(res.reason), source: r.source, ...failureFlags(res.reason) };
        }
        cs.add(entry);
        this.onEntry(entry);
      });
      if (failed > 0) throw new Error(planFailure(cs));
    }
  }

  private async writeOne(s: Step): Promise<{ applied: Applied; notes: string[] }> {
    const r = s.resource;
    const notes: string[] = [];
    const warnings: string[] = [];
    // Not this app's yet: the write must find the object as the ownership check saw it (claims.ts).
    const pre = s.recreate ? undefined : preconditionFor(s.live, s.owner, !s.unseen);
    if (s.recreate) {
      warnings.push(...(await deleteForRecreate(this.client, r, s.live?.metadata.uid as string | undefined, this.crdTimeoutMs)));
      notes.push(`deleted and recreated: an immutable field changed (${FORCE_ANNOTATION}: enabled)`);
    } else if (s.takeover && !pre) {
      const done = await takeOver(this.client, r, s.takeover, this.fieldManager);
      if (done) notes.push(takeoverNote(done));
    }
    let applied: Applied;
    try {
      if (pre) {
        const claimed = await writeClaimed(this.client, r, pre, { owner: s.owner, fieldManager: this.fieldManager, adopt: s.policy.adopt, takeover: s.takeover });
        if (claimed.took) notes.push(takeoverNote(claimed.took));
        applied = claimed.applied;
      } else applied = await applyOne(this.client, r, { fieldManager: this.fieldManager });
    } catch (e) {
      if (e instanceof LostClaim) throw e;
      // Changed between the dry-run and now (or repair, which has no dry-run): same rule as the plan.
      if (s.recreate || !s.policy.force || immutableFields(e).length === 0 || !s.live) throw e;
      await deleteForRecreate(this.client, r, s.live.metadata.uid as string | undefined, this.crdTimeoutMs);
      s.recreate = true;
      notes.push(`deleted and recreated: an immutable field changed (${FORCE_ANNOTATION}: enabled)`);
      applied = await applyOne(this.client, r, { fieldManager: this.fieldManager });
    }
    return { applied: { object: applied.object, warnings: [...warnings, ...applied.warnings] }, notes };
  }

  private async prune(p: Prepared, cs: ChangeSet, owned: Map<string, InventoryEntry>): Promise<void> {
    const desired = new Set(p.resources.map((r) => r.key));
    const deleting = new Set(p.prune.map((x) => x.e.key));
    // Stale entries that are not deleted: say why and forget them.
    for (const e of owned.values()) {
      if (desired.has(e.key) || deleting.has(e.key)) continue;
      const id = parseIdKey(e.key);
      const obj = p.live.get(e.key);
      const subject = subjectOf(id.kind, id.namespace, id.name);
      let message: string;
      if (!obj) message = e.fp === "" ? "never written" : "already gone";
      else if (livePruneDisabled(obj)) message = `${PRUNE_ANNOTATION}: disabled: left in the cluster and dropped from the inventory`;
      else if (liveIgnored(obj)) message = `${SSA_ANNOTATION}: Ignore: left in the cluster and dropped from the inventory`;
      else if (!carriesMarks(obj, p.owner)) message = `no longer carries app "${p.owner}"'s marks${ownerOfMarks(obj) ? ` (now app "${ownerOfMarks(obj)}"'s)` : ""}`;
      else message = `not deleted: ${p.guard?.(id) ?? "its kind is no longer served"}`;
      owned.delete(e.key);
      cs.add({ key: e.key, subject, action: "skipped", message });
    }
    for (const { e, id, mapping, live } of pruneOrder(p.prune, (x) => x.id)) {
      const subject = subjectOf(id.kind, id.namespace, id.name);
      try {
        const done = await deleteOne(this.client, mapping, { ...live, metadata: { ...live.metadata, namespace: id.namespace, name: id.name } }, p.owner);
        owned.delete(e.key);
        if (typeof done === "object") {
          // Taken from this app between its LIST and the delete (adopted): left to its new owner.
          cs.add({ key: e.key, subject, action: "skipped", message: `no longer carries app "${p.owner}"'s marks${done.kept ? ` (now app "${done.kept}"'s)` : ""}` });
          continue;
        }
        const entry: ChangeSetEntry = { key: e.key, subject, action: "pruned" };
        cs.add(entry);
        this.onEntry(entry);
      } catch (err) {
        const entry: ChangeSetEntry = { key: e.key, subject, action: "failed", message: `prune: ${errorText(err)}`, ...failureFlags(err) };
        cs.add(entry);
        this.onEntry(entry);
      }
    }
    if (cs.entries.some((x) => x.action === "failed")) throw new SyncError(planFailure(cs), cs, [...owned.values()]);
  }
}

/** Desired objects left as they were (unchanged, or IfNotPresent and there), as seen by the plan. */
function unwritten(p: Prepared, owner: string): Map<string, KubeObject> {
  const out = new Map<string, KubeObject>();
  for (const s of [...p.ready, ...p.deferred]) {
    if (s.hold === "ignore" || !(s.hold === "exists" || s.action === "unchanged")) continue;
    if (s.live && carriesMarks(s.live, owner)) out.set(s.resource.key, s.live);
  }
  return out;
}

function ownerOfMarks(obj: KubeObject): string {
  return obj.metadata.labels?.[OWNER_LABEL] ?? "";
}

/** Another plumber app's object is refused unless the manifest opts in to adopt it. */
function ownershipProblem(r: Resource, live: KubeObject | undefined, owner: string, policy: ObjectPolicy): string | undefined {
  const other = live?.metadata.labels?.[OWNER_LABEL];
  if (!other || other === owner || policy.adopt) return undefined;
  return ownedByOther(r.subject, other, owner, false);
}

function toPlanned(s: Step): PlannedObject {
  const out: PlannedObject = { resource: s.resource, action: s.action };
  if (s.live) out.live = s.live;
  if (s.merged) out.merged = s.merged;
  if (s.notes.length > 0) out.note = s.notes.join("; ");
  if (s.warnings) out.warnings = s.warnings;
  if (s.recreate) out.recreate = true;
  return out;
}

function planFailure(cs: ChangeSet): string {
  const failed = cs.entries.filter((e) => e.action === "failed");
  const lines = failed.slice(0, 20).map((e) => `${e.source ? `${e.source.file}:${e.source.line}: ` : ""}${e.subject}: ${e.message ?? "failed"}`);
  if (failed.length > 20) lines.push(`... and ${failed.length - 20} more`);
  return `${failed.length} object(s) failed:\n${lines.join("\n")}`;
}
