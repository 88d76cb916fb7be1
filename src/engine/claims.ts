// Ownership claims between apps that write one cluster at the same time.
//
// The ownership check (an object carrying another app's marks is refused) reads the live object
// and the write comes later, so two apps checking at once could both pass and both take it. Two
// guards close that window:
// - In one process, a claim table shared by every app on one cluster connection: an app holds the
//   keys of its desired objects from before it reads them until its writes are done, and a key
//   another app holds is refused unless the read finds this app's own marks on it (the holder's
//   check is then the one to fail). An app that comes second reads after the first one's write,
//   so it sees the first one's marks and the ordinary check refuses it.
// - Across processes (replicas), the apiserver: the first write over an object that exists but is
//   not this app's carries the resourceVersion read at the check, so a write in between makes it
//   fail with 409 Conflict. Then it is read again: another plumber app's marks on it refuse it;
//   anyone else's write (a controller's status, kubectl) is taken in and the write tried again
//   with the new resourceVersion (a few times). A server-side apply that creates
//   takes no precondition (the apiserver ignores resourceVersion there, and a create-only POST
//   would leave every field owned by an Update entry, so a field the repo later drops would never
//   be removed): an apply that was to create and finds the object made meanwhile (200, not 201)
//   gives it up again, removing its marks, so the creator's next repair takes it back.
// A lost race is transient: the next try reads again and meets the ordinary check (refused for
// good once the winner's marks are on it; taken if the winner failed and wrote nothing).
import { KubeApiError, type KubeClient } from "../kube/client.js";
import { resourcePath } from "../kube/discovery.js";
import type { KubeObject } from "../types.js";
import { ADOPT_ANNOTATION } from "./annotations.js";
import { applyOne, takeOver, type Applied } from "./apply.js";
import { immutableFields, LostClaim } from "./errors.js";
import { carriesMarks, MANAGED_BY_LABEL, OWNER_LABEL } from "./marks.js";
import type { Resource } from "./resource.js";
import { LAST_APPLIED_ANNOTATION, planTakeover, type Takeover } from "./takeover.js";

/** Which app holds which object keys right now, in this process, for one cluster. */
export class ClaimTable {
  private readonly held = new Map<string, string>();

  /** Takes each key not held by another owner; returns the keys refused, with their holder. */
  take(owner: string, keys: Iterable<string>): Claim {
    const taken: string[] = [];
    const refused = new Map<string, string>();
    for (const key of keys) {
      const holder = this.held.get(key);
      if (holder === undefined) {
        this.held.set(key, owner);
        taken.push(key);
      } else if (holder !== owner) refused.set(key, holder);
    }
    return {
      refused,
      release: () => {
        for (const key of taken.splice(0)) if (this.held.get(key) === owner) this.held.delete(key);
      },
    };
  }
}

export interface Claim {
  /** Keys another app holds: key → that app. */
  refused: Map<string, string>;
  /** Idempotent. */
  release(): void;
}

export const NO_CLAIM: Claim = { refused: new Map(), release: () => {} };

/** The refusal for an object another plumber app holds or owns; `adopt`: the manifest asks to adopt it. */
export function ownedByOther(subject: string, other: string, owner: string, adopt: boolean): string {
  if (adopt) return `${subject} is being applied by plumber app "${other}" right now; app "${owner}" adopts it on a later try`;
  return `${subject} belongs to plumber app "${other}"; app "${owner}" may not take it (set the annotation ${ADOPT_ANNOTATION}: enabled in "${owner}"'s manifest to adopt it)`;
}

/** What the first write of an object must find: the resourceVersion read at the check, or nothing there. */
export interface Precondition {
  resourceVersion?: string;
  create: boolean;
}

/**
 * None for an object already this app's (marks on it): there is no one to race. None either for
 * one the check could not look at (its namespace or kind is created by the same revision): a
 * controller may make it right after its namespace (a ServiceAccount "default"), and another
 * app racing for it has raced for its Namespace or CRD first.
 */
export function preconditionFor(live: KubeObject | undefined, owner: string, looked = true): Precondition | undefined {
  if (!live) return looked ? { create: true } : undefined;
  if (carriesMarks(live, owner)) return undefined;
  const rv = live.metadata.resourceVersion;
  return typeof rv === "string" && rv !== "" ? { resourceVersion: rv, create: false } : undefined;
}

/** How often a write over an object that is not this app's is tried again after someone (not another plumber app) wrote it meanwhile. */
const RETRIES = 3;

/**
 * The first write of an object this app's check found absent or not its own: the takeover of
 * kubectl's fields (if any) and the apply both carry the resourceVersion of the object as last
 * read. When someone wrote in between, it is read again: another plumber app's marks on it are a
 * LostClaim (unless the manifest adopts); anyone else's write (a controller, kubectl) is taken
 * in, and the write tried again.
 */
export async function writeClaimed(
  client: KubeClient,
  r: Resource,
  pre: Precondition,
  opts: { owner: string; fieldManager: string; adopt: boolean; takeover?: Takeover },
): Promise<{ applied: Applied; took?: Takeover }> {
  const { owner, fieldManager, adopt } = opts;
  if (pre.create) {
    let applied: Applied;
    try {
      applied = await applyOne(client, r, { fieldManager });
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 409) throw await lostOnConflict(client, r, owner, adopt);
      throw e;
    }
    if (applied.created === false) throw await giveUp(client, r, applied.object, owner);
    return { applied };
  }
  let rv = pre.resourceVersion;
  let takeover = opts.takeover;
  for (let attempt = 0; ; attempt++) {
    try {
      let took: Takeover | undefined;
      if (takeover) {
        const done = await takeOver(client, r, takeover, fieldManager, false);
        took = done;
        if (done?.resourceVersion) rv = done.resourceVersion;
      }
      return { applied: await applyOne(client, withPrecondition(r, { resourceVersion: rv, create: false }), { fieldManager }), took };
    } catch (e) {
      // 409: the apply's resourceVersion; 422 that is not an immutable field: the takeover's test.
      const stale = e instanceof KubeApiError && (e.status === 409 || (e.status === 422 && takeover !== undefined && immutableFields(e).length === 0));
      if (!stale) throw e;
      const fresh = await client.getOptional<KubeObject>(resourcePath(r.mapping, r.id.namespace, r.id.name));
      const other = fresh?.metadata.labels?.[OWNER_LABEL];
      if (other && other !== owner && !adopt) throw new LostClaim(ownedByOther(r.subject, other, owner, false));
      if (!fresh || attempt + 1 >= RETRIES) throw new LostClaim(`${r.subject} changed between app "${owner}"'s ownership check and its apply; tried again next time`);
      rv = typeof fresh.metadata.resourceVersion === "string" ? fresh.metadata.resourceVersion : undefined;
      takeover = carriesMarks(fresh, owner) && fresh.metadata.annotations?.[LAST_APPLIED_ANNOTATION] === undefined ? undefined : planTakeover(fresh, fieldManager);
    }
  }
}

/** The manifest with the precondition's resourceVersion in it (server-side apply honours it: 409 if changed). */
function withPrecondition(r: Resource, p: Precondition | undefined): Resource {
  if (!p?.resourceVersion) return r;
  return { ...r, object: { ...r.object, metadata: { ...r.object.metadata, resourceVersion: p.resourceVersion } } };
}

/** A 409 on a write that carried the precondition: who has the object now, in words. */
async function lostOnConflict(client: KubeClient, r: Resource, owner: string, adopt: boolean): Promise<LostClaim> {
  const now = await client.getOptional<KubeObject>(resourcePath(r.mapping, r.id.namespace, r.id.name)).catch(() => undefined);
  const other = now?.metadata.labels?.[OWNER_LABEL];
  if (other && other !== owner) return new LostClaim(ownedByOther(r.subject, other, owner, adopt));
  return new LostClaim(`${r.subject} changed between app "${owner}"'s ownership check and its apply; tried again next time`);
}

/**
 * The apply was to create the object and found it made meanwhile (another replica's app, or anyone):
 * take this app's marks off again (only if nothing wrote since), so it is nobody's and its creator's
 * repair takes it back. The fields this apply set stay until then.
 */
async function giveUp(client: KubeClient, r: Resource, written: KubeObject, owner: string): Promise<LostClaim> {
  const rv = written.metadata.resourceVersion;
  const esc = (k: string) => k.replace(/~/g, "~0").replace(/\//g, "~1");
  const patch = [
    { op: "test", path: "/metadata/resourceVersion", value: rv },
    { op: "remove", path: `/metadata/labels/${esc(OWNER_LABEL)}` },
    { op: "remove", path: `/metadata/labels/${esc(MANAGED_BY_LABEL)}` },
  ];
  const what = `${r.subject} was created by another writer between app "${owner}"'s ownership check and its apply`;
  try {
    await client.request({ method: "PATCH", path: resourcePath(r.mapping, r.id.namespace, r.id.name), contentType: "application/json-patch+json", body: JSON.stringify(patch) });
    return new LostClaim(`${what}; app "${owner}" gave it up (its marks removed) and looks again next time`);
  } catch (e) {
    const why = e instanceof KubeApiError ? `${e.reason}: ${e.message}` : String(e);
    return new LostClaim(`${what}; taking app "${owner}"'s marks off again failed (${why})`, true);
  }
}
