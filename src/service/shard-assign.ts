// Which replica owns which app: rendezvous (highest-random-weight) hashing over the live members,
// with bounded loads. Each member scores each app by a hash of (member, app); an app goes to its
// highest-scoring member that still has room, room being ceil(LOAD × apps / members). Every
// member computes the same owners from the same apps and members, with no coordination. A member
// that leaves moves its own apps (each to its next choice) and few others; one that joins takes
// about 1/N of the apps, mostly the ones it scores highest on. The bound keeps a small fleet
// balanced (plain rendezvous hashing gives 12 apps over 3 members a 2% chance of a member with none).
import { createHash } from "node:crypto";

/** No member gets more than LOAD × its fair share (consistent hashing with bounded loads, c = 1.25). */
const LOAD = 1.25;

function score(member: string, app: string): bigint {
  return createHash("sha256").update(member).update("\0").update(app).digest().readBigUInt64BE(0);
}

/** Each app's owner among `members` (none when there are no members). */
export function assign(apps: readonly string[], members: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const ms = [...new Set(members)].sort();
  if (ms.length === 0) return out;
  const names = [...new Set(apps)].sort();
  const room = Math.ceil((LOAD * names.length) / ms.length);
  const load = new Map(ms.map((m) => [m, 0]));
  for (const app of names) {
    // Ties (astronomically unlikely) go to the smaller identity, so every member agrees.
    const ranked = ms.map((m) => ({ m, s: score(m, app) })).sort((a, b) => (a.s === b.s ? (a.m < b.m ? -1 : 1) : a.s > b.s ? -1 : 1));
    const owner = (ranked.find((r) => (load.get(r.m) ?? 0) < room) ?? (ranked[0] as { m: string })).m;
    load.set(owner, (load.get(owner) ?? 0) + 1);
    out.set(app, owner);
  }
  return out;
}
