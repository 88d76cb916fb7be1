// The seven steps of `plumber demo`. Each makes plumber do one thing a new user should see, prints
// what happened and what it cost, and checks the outcome in the clusters themselves: a step whose
// outcome is not there stops the demo (DemoFailure, exit 1) instead of printing a happy line.
import { checkObjectName } from "../checks/run.js";
import type { ChangeSet } from "../engine/changeset.js";
import { approveCommand, historyCommand } from "./control.js";
import { statusCommand } from "./commands.js";
import { releasesCommand } from "./releases.js";
import type { DemoDashboard } from "./demo-dashboard.js";
import { pipelineRunPath, type DemoActor, type PipelineRunObject } from "./demo-actors.js";
import { DEMO } from "./demo-config.js";
import { writesOf } from "./demo-meter.js";
import { DemoFailure, type AppResults, type Tour } from "./demo-tour.js";

const NS = DEMO.namespace;
const NIGHTLY = DEMO.nightly.app;
const PROD = DEMO.prod.app;
const cmPath = (name: string): string => `/api/v1/namespaces/${NS}/configmaps/${name}`;
const taskPath = (name: string): string => `/apis/tekton.dev/v1/namespaces/${NS}/tasks/${name}`;
const short = (sha: string): string => sha.slice(0, 12);

interface ConfigMapObject {
  data?: Record<string, string>;
}
interface TaskObject {
  spec?: { steps?: { image?: string }[] };
}

export const STEPS = 7;

export async function tour(t: Tour, dashboard: DemoDashboard): Promise<void> {
  // The dashboard follows each step at once rather than at its next refresh.
  const then = async (step: Promise<unknown>): Promise<void> => {
    await step;
    await dashboard.refresh();
  };
  await then(firstSync(t));
  await then(steadyState(t));
  await then(drift(t));
  const bad = await failingPostCheck(t);
  await dashboard.refresh();
  await then(promotion(t, bad));
  await then(scheduledRelease(t));
  await statusAndHistory(t, dashboard);
}

function changeSetOf(r: AppResults, app: string): ChangeSet | undefined {
  const x = r.get(app);
  return x && "changeSet" in x ? x.changeSet : undefined;
}

/**
 * The post-check plumber created for `revision` runs on a cluster with no Tekton controller: the
 * demo writes the verdict a controller would.
 */
async function playTekton(t: Tour, actor: DemoActor, app: string, revision: string, verdict: { succeeded: boolean; reason: string; message: string }): Promise<void> {
  const run = checkObjectName(app, "post", DEMO.check, revision);
  const pr = await actor.waitFor<PipelineRunObject>(pipelineRunPath(NS, run), 10_000);
  if (!pr) throw new DemoFailure(`plumber did not create the post-check PipelineRun ${NS}/${run} of ${app}`);
  t.demoDoes(`no Tekton controller runs here, so the demo plays it: PipelineRun ${NS}/${run} → Succeeded=${verdict.succeeded ? "True" : "False"} (${verdict.reason})`);
  await actor.finishPipelineRun(NS, run, verdict.succeeded, verdict.reason, verdict.message);
}

const passes = { succeeded: true, reason: "Succeeded", message: "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0" };

async function firstSync(t: Tour): Promise<void> {
  const rev = t.world.first;
  t.step(`first sync to nightly: plumber creates everything at ${short(rev)}, then its post-check runs`);
  const r = await t.round();
  const created = changeSetOf(r, NIGHTLY)?.count("created") ?? 0;
  if (r.get(NIGHTLY)?.kind !== "verifying") throw new DemoFailure(`${NIGHTLY} should be applied and verifying its post-check, but is ${r.get(NIGHTLY)?.kind ?? "not reconciled"}`);
  await playTekton(t, t.actors.nightly, NIGHTLY, rev, passes);
  await t.roundsUntil(NIGHTLY, "applied", 3, `${NIGHTLY} becoming Ready`);
  t.cost();
  const s = await t.state(NIGHTLY);
  const prod = await t.state(PROD);
  t.ok(
    s.phase === "Ready" && s.revision === rev && created > 0 && s.inventory.length === created && !prod.revision,
    `nightly Ready at ${short(rev)}: ${created} objects created, post-check ${DEMO.check} passed; prod untouched (nothing has soaked ${DEMO.soak} yet)`,
    `expected ${NIGHTLY} Ready at ${short(rev)} with every object created and ${PROD} with nothing deployed; got ${NIGHTLY} ${s.phase ?? "-"} at ${s.revision ?? "-"} (${created} created, ${s.inventory.length} in inventory), ${PROD} at ${prod.revision ?? "-"}`,
  );
}

async function steadyState(t: Tour): Promise<void> {
  const rounds = 3;
  t.step(`steady state: ${rounds} more rounds, nothing changed in git or in the clusters`);
  for (let i = 0; i < rounds; i++) await t.round();
  const { writes, dryRuns } = writesOf(t.cost());
  t.ok(writes === 0 && dryRuns === 0, `${rounds} rounds: 0 writes, 0 dry-runs on either cluster`, `steady state should cost no writes and no dry-runs, but cost ${writes} writes and ${dryRuns} dry-runs`);
}

async function drift(t: Tour): Promise<void> {
  t.step("drift: someone edits a ConfigMap and deletes a Task on nightly by hand");
  const a = t.actors.nightly;
  t.demoDoes("kubectl edit configmap release-settings (channel: nightly → hotfix)");
  await a.edit(cmPath("release-settings"), { data: { channel: "hotfix" } });
  t.demoDoes("kubectl delete task git-clone");
  await a.delete(taskPath("git-clone"));
  const r = await t.round();
  t.cost();
  const cm = await a.get<ConfigMapObject>(cmPath("release-settings"));
  const task = await a.get<TaskObject>(taskPath("git-clone"));
  t.ok(
    r.get(NIGHTLY)?.kind === "repaired" && cm?.data?.channel === "nightly" && task !== undefined,
    "drift repaired on nightly: release-settings back to channel=nightly, Task git-clone re-created",
    `expected ${NIGHTLY} to repair the drift; it ${r.get(NIGHTLY)?.kind ?? "was not reconciled"}, channel=${cm?.data?.channel ?? "(missing)"}, Task git-clone ${task ? "exists" : "missing"}`,
  );
}

async function failingPostCheck(t: Tour): Promise<string> {
  const good = t.world.first;
  t.step("a commit whose post-check fails: plumber rolls nightly back to the last good revision");
  const tasks = t.world.files["base/tekton/tasks.yaml"] ?? "";
  const kustomization = t.world.files["base/kustomization.yaml"] ?? "";
  const bad = await t.world.repo.commit(
    {
      "base/tekton/tasks.yaml": tasks.replace("executor:v1.23.2", "executor:v1.24.0").replace('"--context=/workspace/source"]', '"--context=/workspace/source", "--cache=true"]'),
      "base/build-cache.yaml": ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: build-cache", "data:", "  repo: registry.example.com/plumber/cache", ""].join("\n"),
      "base/kustomization.yaml": kustomization.replace("  - release-settings.yaml\n", "  - release-settings.yaml\n  - build-cache.yaml\n"),
    },
    "build-image: kaniko v1.24 with a layer cache",
  );
  t.say(`commit ${short(bad)} "build-image: kaniko v1.24 with a layer cache" (changes Task build-image, adds ConfigMap build-cache)`);
  const r = await t.round();
  if (r.get(NIGHTLY)?.kind !== "verifying") throw new DemoFailure(`${NIGHTLY} should have applied ${short(bad)} and be verifying it, but is ${r.get(NIGHTLY)?.kind ?? "not reconciled"}`);
  await playTekton(t, t.actors.nightly, NIGHTLY, bad, {
    succeeded: false,
    reason: "Failed",
    message: "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 0; build-image: kaniko v1.24 cannot push with --cache",
  });
  await t.roundsUntil(NIGHTLY, "rolledBack", 3, `${NIGHTLY} rolling back`);
  t.cost();
  const s = await t.state(NIGHTLY);
  const cache = await t.actors.nightly.get(cmPath("build-cache"));
  const task = await t.actors.nightly.get<TaskObject>(taskPath("build-image"));
  const image = task?.spec?.steps?.[0]?.image ?? "";
  const prod = await t.state(PROD);
  t.ok(
    s.revision === good && s.failedRevision === bad && s.lastResult === "RolledBack" && !cache && image.endsWith("v1.23.2") && !prod.revision && prod.pendingRevision !== bad,
    `nightly rolled back to ${short(good)} after post-check ${DEMO.check} failed at ${short(bad)}: ConfigMap build-cache pruned, Task build-image back on kaniko v1.23.2`,
    `expected ${NIGHTLY} rolled back to ${short(good)} with ${short(bad)} failed; got revision ${s.revision ?? "-"}, failed ${s.failedRevision ?? "-"}, result ${s.lastResult ?? "-"}, build-cache ${cache ? "still there" : "gone"}, image ${image}`,
  );
  return bad;
}

async function promotion(t: Tour, bad: string): Promise<void> {
  t.step(`a good commit, promoted to prod after a ${DEMO.soak} soak on nightly and an approval`);
  const settings = t.world.files["base/release-settings.yaml"] ?? "";
  const good = await t.world.repo.commit(
    { "base/release-settings.yaml": settings.replace("  channel: nightly\n", "  channel: nightly\n  mirror: mirror.example.com/plumber\n") },
    "release-settings: pull through the mirror",
  );
  t.say(`commit ${short(good)} "release-settings: pull through the mirror"`);
  await t.round();
  await playTekton(t, t.actors.nightly, NIGHTLY, good, passes);
  const soaking = await t.roundsUntil(NIGHTLY, "applied", 3, `${NIGHTLY} becoming Ready at ${short(good)}`);
  const early = soaking.get(PROD);
  if (early?.kind !== "held" || (await t.state(PROD)).revision) {
    throw new DemoFailure(`${PROD} should hold while ${short(good)} soaks on nightly, but is ${early?.kind ?? "not reconciled"}`);
  }

  t.demoDoes(`moves plumber's clock ${DEMO.soak} ahead instead of sitting through the soak (plumber reads time from an injected clock, as its tests do)`);
  t.clock.skip(DEMO.soakMs + 1000);
  await t.round();
  const waiting = await t.state(PROD);
  if (waiting.phase !== "WaitingApproval" || waiting.pendingRevision !== good) {
    throw new DemoFailure(`${PROD} should wait for approval of ${short(good)}, but is ${waiting.phase ?? "-"} with pending ${waiting.pendingRevision ?? "-"}: ${waiting.message ?? ""}`);
  }
  t.say(`prod: ${waiting.message?.split("\n")[0] ?? ""}`);

  t.say(`$ plumber approve ${PROD} ${short(good)}`);
  const code = await approveCommand(t.cli(), (l) => t.say(`  ${l}`), PROD, good);
  if (code !== 0) throw new DemoFailure(`plumber approve ${PROD} ${short(good)} exited ${code}`);
  const r = await t.round();
  if (r.get(PROD)?.kind !== "verifying") throw new DemoFailure(`${PROD} should have applied ${short(good)} and be verifying it, but is ${r.get(PROD)?.kind ?? "not reconciled"}`);
  await playTekton(t, t.actors.prod, PROD, good, passes);
  await t.roundsUntil(PROD, "applied", 3, `${PROD} becoming Ready at ${short(good)}`);
  t.cost();
  const s = await t.state(PROD);
  const cm = await t.actors.prod.get<ConfigMapObject>(cmPath("release-settings"));
  const everOnProd = s.history.some((h) => h.revision === bad);
  t.ok(
    s.phase === "Ready" && s.revision === good && cm?.data?.channel === "stable" && cm.data.mirror !== undefined && !everOnProd,
    `prod Ready at ${short(good)} (overlays/prod: channel=stable, mirror set), post-check ${DEMO.check} passed there; ${short(bad)} never reached prod`,
    `expected ${PROD} Ready at ${short(good)} with the prod overlay; got ${s.phase ?? "-"} at ${s.revision ?? "-"}, channel=${cm?.data?.channel ?? "-"}, mirror=${cm?.data?.mirror ?? "-"}${everOnProd ? `, and ${short(bad)} in its history` : ""}`,
  );
}

async function scheduledRelease(t: Tour): Promise<void> {
  const s = t.rt.releases.find((r) => r.release.name === DEMO.release.name);
  if (!s) throw new DemoFailure(`no release ${DEMO.release.name} in the demo's config`);
  t.step(`the scheduled release "${DEMO.release.name}" ("${DEMO.release.schedule}" UTC) fires a PipelineRun with its version tag`);
  const now = t.clock.now();
  // The scheduler's first look only records since when slots count, as plumber run's first tick does.
  await t.meter.measure(() => s.tick(now));
  const slot = s.schedule.next(now);
  if (!slot) throw new DemoFailure(`the schedule "${DEMO.release.schedule}" never fires`);
  t.demoDoes(`does not wait until ${slot.toISOString()}: it asks the scheduler to decide as at that instant (the tick plumber run makes when the slot comes)`);
  const at = new Date(slot.getTime() + 1000);
  const fired = await t.meter.measure(() => s.tick(at));
  const rec = fired.events.find((e) => e.type === "fired")?.record;
  if (!rec?.run || !rec.revision) throw new DemoFailure(`the release did not fire at ${slot.toISOString()}: ${fired.events.map((e) => `${e.type} ${e.message ?? ""}`).join("; ") || "no event"}`);
  const pr = await t.actors.nightly.get<PipelineRunObject>(pipelineRunPath(NS, rec.run));
  const param = (n: string): string => String(pr?.spec?.params?.find((p) => p.name === n)?.value ?? "");
  t.say(`PipelineRun ${NS}/${rec.run}: revision=${short(param("revision"))}…, versionTag=${param("versionTag")}`);
  t.demoDoes(`plays Tekton again: PipelineRun ${NS}/${rec.run} → Succeeded=True`);
  await t.actors.nightly.finishPipelineRun(NS, rec.run, true, "Succeeded", "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0");
  const after = await t.meter.measure(() => s.tick(new Date(at.getTime() + 15_000)));
  const done = after.state?.history.find((h) => h.run === rec.run);
  t.cost();
  const head = (await t.rt.repos.get(DEMO.repo)?.repo.listHeads())?.get("main") ?? "";
  const tag = `v${slot.toISOString().slice(0, 10).replace(/-/g, "")}-${head.slice(0, 10)}`;
  t.ok(
    pr !== undefined && param("revision") === head && param("versionTag") === tag && done?.result === "Succeeded",
    `release ${rec.run} fired at the head of main, versionTag ${tag}; recorded Succeeded`,
    `expected PipelineRun ${rec.run} at ${short(head)} with versionTag ${tag} and a Succeeded record; got ${pr ? `revision ${param("revision")}, versionTag ${param("versionTag")}` : "no PipelineRun"}, record ${done?.result ?? "-"}`,
  );
}

async function statusAndHistory(t: Tour, dashboard: DemoDashboard): Promise<void> {
  t.step("plumber status, plumber history and plumber releases; the dashboard");
  const ctx = t.cli();
  const lines: string[] = [];
  const show = (l: string): void => {
    lines.push(l);
    for (const x of l.split("\n")) t.say(`  ${x}`);
  };
  t.say("$ plumber status");
  await statusCommand(ctx, show, [], false);
  const statusText = lines.join("\n");
  for (const app of [NIGHTLY, PROD]) {
    t.say(`$ plumber history ${app}`);
    await historyCommand(ctx, show, app, false);
  }
  t.say("$ plumber releases");
  await releasesCommand(ctx, show, false);
  const ready = (app: string): boolean => new RegExp(`^${app}\\s.*\\bReady\\b`, "m").test(statusText);
  t.ok(ready(NIGHTLY) && ready(PROD), "status shows both apps Ready", `plumber status should show ${NIGHTLY} and ${PROD} Ready:\n${statusText}`);
  const page = await dashboard.fleetPage();
  const row = (app: string, cluster: string): boolean => new RegExp(`data-app="${app}" data-cluster="${cluster}" data-phase="Ready"`).test(page);
  t.ok(
    row(NIGHTLY, DEMO.nightly.cluster) && row(PROD, DEMO.prod.cluster),
    `the dashboard at ${dashboard.url} shows both apps Ready`,
    `the dashboard's fleet page at ${dashboard.url} should list ${NIGHTLY} on nightly and ${PROD} on prod as Ready`,
  );
}
