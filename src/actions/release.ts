// `plumber release NAME --now` and the dashboard's "release now": one code path.
import type { ReleaseScheduler } from "../releases/scheduler.js";
import type { Runtime } from "../reconcile/runtime.js";
import type { ActionResult, Actor } from "./control.js";

export function findRelease(rt: Runtime, name: string): ReleaseScheduler | undefined {
  return rt.releases.find((r) => r.release.name === name);
}

/** Fires one run of the release at once, recorded as manual (and by whom, when known). */
export async function releaseNow(rt: Runtime, name: string, actor: Actor = {}): Promise<ActionResult> {
  const s = findRelease(rt, name);
  if (!s) {
    const known = rt.releases.map((r) => r.release.name).join(", ");
    return { ok: false, message: `no release named ${name} in ${rt.config.file}${known ? ` (known: ${known})` : ""}` };
  }
  const rec = await s.fireNow(new Date(), actor.by);
  const where = `${s.release.cluster}/${s.release.namespace}`;
  if (rec.result === "Claimed") return { ok: false, message: `! ${name}: ${rec.run} is claimed but could not be created yet; a running plumber (or this command again) finishes it` };
  if (rec.result === "Failed") return { ok: false, message: `✗ ${name}: ${rec.run} could not be created: ${rec.message ?? rec.reason ?? "unknown error"}` };
  return { ok: true, message: `✓ ${name}: ${rec.kind} ${rec.run} created in ${where} at revision ${rec.revision?.slice(0, 12)} (manual${actor.by ? `, by ${actor.by}` : ""}); \`plumber releases\` shows its outcome` };
}
