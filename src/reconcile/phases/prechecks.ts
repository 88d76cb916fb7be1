import type { CheckOutcome } from "../../checks/run.js";
import { isoNow } from "../clock.js";
import type { Cycle, CycleResult } from "../cycle.js";
import { preChecking } from "../transitions.js";
import type { CheckConfig } from "../../config/types.js";
import { checksStanding, deadlineOf, formatPreChecks, parsePreChecks, preCheckProgress, type PreCheckProgress } from "../verify-progress.js";
import { checkManifestOf, checkObjectOf, lookAtCheck, pruneChecks, runChecks } from "./checks.js";

/** The pre-checks' verdicts (the first failure ends them), or, waiting across cycles, the cycle's result while they run. */
export type PreChecks = { outcomes: CheckOutcome[]; waiting?: undefined } | { waiting: CycleResult };

/**
 * The pre-checks of `rev`, before anything is applied. Inline (apply --once, a round by hand) they
 * are waited for; with c.deferWaits each cycle looks once: every check in turn, created once (its
 * fixed name finds a run from before a restart) and read once per cycle, its deadline from the
 * state and the clock, while the revision stays pending and the status says what it waits for.
 */
export async function preChecks(c: Cycle, rev: string): Promise<PreChecks> {
  const checks = c.spec.config.checks.pre;
  if (!c.deferWaits || checks.length === 0) return { outcomes: await runChecks(c, "pre", checks, rev) };
  const app = c.spec.config;
  const stored = parsePreChecks(c.state.preChecks);
  const alike = stored !== undefined && stored.revision !== rev && (await rendersAlike(c, stored.revision, rev, checks));
  let progress = preCheckProgress(stored, rev, alike);
  const runsFor = progress.runsFor ?? rev;
  const names = checks.map((x) => x.name);
  for (;;) {
    const standing = checksStanding(names, progress);
    const check = standing.next === undefined ? undefined : checks.find((x) => x.name === standing.next);
    if (!check) {
      await pruneChecks(c);
      return { outcomes: standing.done };
    }
    const obj = await checkObjectOf(c, "pre", check, runsFor);
    const { running: current, out } = await lookAtCheck(c, "pre", check, obj, progress.current);
    progress = { ...progress, current };
    if (!out) {
      const until = new Date(deadlineOf(current.startedAt, check.timeoutMs)).toISOString();
      const message = `revision ${rev.slice(0, 12)} waits for pre-check ${check.name} (${obj.kind}/${obj.metadata.namespace ?? app.namespace}/${obj.metadata.name}), until ${until}; nothing applied yet`;
      await saveProgress(c, rev, progress, message);
      c.log.debug({ revision: rev.slice(0, 12) }, message);
      return { waiting: { kind: "checking", revision: rev, message } };
    }
    progress = { revision: rev, ...(progress.runsFor ? { runsFor: progress.runsFor } : {}), done: [...standing.done, out] };
  }
}

/** Written when the progress or the status moved; a cycle that only looked writes nothing. */
async function saveProgress(c: Cycle, rev: string, progress: PreCheckProgress, message: string): Promise<void> {
  const formatted = formatPreChecks(progress);
  if (c.state.preChecks === formatted && c.state.message === message && c.state.pendingRevision === rev) return;
  c.state = preChecking(c.state, { revision: rev, progress: formatted, message, now: isoNow(c.clock) });
  await c.save();
}

/**
 * Whether two revisions deploy the same for this app: the same rendered manifests and the same
 * pre-check manifests. Anything that cannot be read (an old commit gone from the cache) counts as
 * different, so the newer revision supersedes.
 */
async function rendersAlike(c: Cycle, a: string, b: string, checks: CheckConfig[]): Promise<boolean> {
  try {
    if (JSON.stringify(await c.render(a)) !== JSON.stringify(await c.render(b))) return false;
    for (const check of checks) {
      if (JSON.stringify(await checkManifestOf(c, check, a)) !== JSON.stringify(await checkManifestOf(c, check, b))) return false;
    }
    return true;
  } catch (e) {
    c.log.debug({ err: e instanceof Error ? e.message : String(e) }, "could not compare the pending revision with the newer one; the newer supersedes it");
    return false;
  }
}
