import { describe, expect, it } from "vitest";
import { laggedRevision } from "../../src/releases/revision.js";
import { runOutcome } from "../../src/releases/runs.js";
import { trimHistory, type ReleaseRecord } from "../../src/state/release.js";
import { parseManifests } from "../../src/manifests/parse.js";
import { checkPlaceholders } from "../../src/config/run-template.js";
import { parseTemplateFile, renderRun, Substitution, TemplateError, type TemplateContext } from "../../src/releases/template.js";
import type { DeployRecord } from "../../src/state/store.js";
import { FileProblemError } from "../../src/types.js";

const SHA = "1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5";

function ctx(over: Partial<TemplateContext> = {}): TemplateContext {
  return {
    release: "nightly",
    revision: SHA,
    slot: new Date("2026-11-21T02:00:00Z"),
    timezone: "UTC",
    trigger: "scheduled",
    runName: "nightly-202611210200",
    params: {},
    ...over,
  };
}

describe("template placeholders", () => {
  it("substitutes revision, short revision, dates, scheduled time, release and version tag", () => {
    const s = new Substitution(ctx({ params: { versionTag: "$(plumber.versionTag)", registry: "ghcr.io/tektoncd" } }));
    expect(s.text("$(plumber.revision)")).toBe(SHA);
    expect(s.text("$(plumber.shortRevision)")).toBe("1a2b3c4d5e");
    expect(s.text("$(plumber.versionTag)")).toBe("v20261121-1a2b3c4d5e");
    expect(s.text("$(plumber.date)")).toBe("20261121");
    expect(s.text("$(plumber.date:YYYY-MM-DD HH:mm:ss)")).toBe("2026-11-21 02:00:00");
    expect(s.text("$(plumber.scheduledTime)")).toBe("2026-11-21T02:00:00Z");
    expect(s.text("$(plumber.release)/$(plumber.runName)/$(plumber.trigger)")).toBe("nightly/nightly-202611210200/scheduled");
    expect(s.text("$(plumber.params.registry)/pipeline:$(plumber.params.versionTag)")).toBe("ghcr.io/tektoncd/pipeline:v20261121-1a2b3c4d5e");
    // Tekton's own substitutions pass through; $$ escapes ours.
    expect(s.text("$(params.versionTag) $(context.pipelineRun.name) $$(plumber.revision)")).toBe("$(params.versionTag) $(context.pipelineRun.name) $(plumber.revision)");
  });

  it("dates are the slot's date in the release's time zone", () => {
    const s = new Substitution(ctx({ slot: new Date("2026-11-20T23:30:00Z"), timezone: "Europe/Berlin" }));
    expect(s.text("$(plumber.date)")).toBe("20261121");
    expect(s.text("$(plumber.scheduledTime)")).toBe("2026-11-20T23:30:00Z");
  });

  it("refuses unknown placeholders and unknown or nested params", () => {
    expect(checkPlaceholders("$(plumber.nope)", [])).toEqual([expect.stringContaining("unknown placeholder $(plumber.nope)")]);
    expect(checkPlaceholders("$(plumber.params.x)", ["y"])).toEqual(['$(plumber.params.x): no param named "x" (known: y)']);
    expect(checkPlaceholders("$$(plumber.nope) $(plumber.date:YYYY)", [])).toEqual([]);
    expect(() => new Substitution(ctx({ params: { a: "$(plumber.params.b)", b: "x" } }))).toThrow(TemplateError);
    expect(() => new Substitution(ctx()).text("$(plumber.nope)")).toThrow(/unknown placeholder/);
  });

  it("renders a run: substituted, named, in the release's namespace, labelled with release and slot", () => {
    const template = {
      apiVersion: "tekton.dev/v1",
      kind: "PipelineRun",
      metadata: { generateName: "release-", labels: { team: "infra" } },
      spec: {
        pipelineRef: { name: "release" },
        params: [
          { name: "gitRevision", value: "$(plumber.revision)" },
          { name: "versionTag", value: "$(plumber.params.versionTag)" },
          { name: "tekton-own", value: "$(params.x)" },
        ],
      },
      status: { junk: true },
    };
    const run = renderRun(template, ctx({ params: { versionTag: "$(plumber.versionTag)" } }), "releases", "202611210200");
    expect(run.metadata).toEqual({
      name: "nightly-202611210200",
      namespace: "releases",
      labels: {
        team: "infra",
        "app.kubernetes.io/managed-by": "plumber",
        "plumber.dev/release": "nightly",
        "plumber.dev/release-slot": "202611210200",
        "plumber.dev/release-trigger": "scheduled",
      },
      annotations: { "plumber.dev/scheduled-time": "2026-11-21T02:00:00.000Z", "plumber.dev/revision": SHA },
    });
    expect(run.spec).toEqual({
      pipelineRef: { name: "release" },
      params: [
        { name: "gitRevision", value: SHA },
        { name: "versionTag", value: "v20261121-1a2b3c4d5e" },
        { name: "tekton-own", value: "$(params.x)" },
      ],
    });
    expect(run.status).toBeUndefined();
    expect(template.spec.params[0]!.value).toBe("$(plumber.revision)"); // the template is not changed
    expect(() => renderRun({ ...template, metadata: { namespace: "other" } }, ctx({ params: { versionTag: "v" } }), "releases", "x")).toThrow(/namespace is "other"/);
    expect(() => renderRun({ apiVersion: "v1", kind: "Pod" }, ctx(), "releases", "x")).toThrow(/v1 Pod/);
  });

  it("parses a template file holding exactly one run, with file:line errors", () => {
    expect(parseTemplateFile("r.yaml", "apiVersion: batch/v1\nkind: Job\nspec: {}\n").kind).toBe("Job");
    expect(() => parseTemplateFile("r.yaml", "apiVersion: batch/v1\nkind: Job\n---\napiVersion: batch/v1\nkind: Job\n")).toThrow(/exactly one object \(found 2\)/);
    try {
      parseTemplateFile("r.yaml", "apiVersion: batch/v1\nkind: Job\nspec: {a: 1\n");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(FileProblemError);
      expect((e as FileProblemError).problems[0]).toMatchObject({ file: "r.yaml", line: 4 });
    }
  });
});

describe("template scalars", () => {
  it("resolve as kubectl (and the manifest reader) read them, not as YAML 1.2", () => {
    const text = [
      "apiVersion: batch/v1",
      "kind: Job",
      "metadata:",
      "  name: build",
      "spec:",
      "  template:",
      "    metadata:",
      "      annotations:",
      "        when: 2026-11-21",
      "        dot: .",
      "    spec:",
      "      volumes:",
      "        - name: scripts",
      "          configMap: {name: scripts, defaultMode: 0644}",
      "      containers:",
      "        - name: c",
      "          tty: yes",
      "          stdin: off",
      "          env: [{name: V, value: 1.10}, {name: E, value: 1_000}]",
      "",
    ].join("\n");
    type Pod = { metadata: { annotations: unknown }; spec: { volumes: { configMap: { defaultMode: unknown } }[]; containers: { tty: unknown; stdin: unknown; env: unknown }[] } };
    const t = parseTemplateFile("r.yaml", text) as { spec: { template: Pod } };
    const pod = t.spec.template;
    expect(pod.spec.volumes[0]?.configMap.defaultMode).toBe(420); // YAML 1.2 would say 644
    expect(pod.spec.containers[0]?.tty).toBe(true); // YAML 1.2: the string "yes"
    expect(pod.spec.containers[0]?.stdin).toBe(false);
    expect(pod.spec.containers[0]?.env).toEqual([{ name: "V", value: 1.1 }, { name: "E", value: 1000 }]);
    expect(pod.metadata.annotations).toEqual({ when: "2026-11-21", dot: "." });
    // One reader: the template is exactly what the same text means as a manifest.
    expect(t).toEqual(parseManifests([{ path: "r.yaml", content: text }])[0]!.object);
  });

  it("refuses what kubectl refuses, at its line", () => {
    const dup = "apiVersion: batch/v1\nkind: Job\nspec: {}\nspec: {}\n";
    expect(() => parseTemplateFile("r.yaml", dup)).toThrow(FileProblemError);
    try {
      parseTemplateFile("r.yaml", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: \"a\\/b\"\n");
      expect.unreachable();
    } catch (e) {
      expect((e as FileProblemError).problems[0]).toMatchObject({ file: "r.yaml", line: 4 });
    }
  });
});

describe("run outcomes", () => {
  it("reads PipelineRun/TaskRun Succeeded and Job Complete/Failed conditions", () => {
    expect(runOutcome({ kind: "PipelineRun", status: {} })).toEqual({ phase: "Running" });
    expect(runOutcome({ kind: "PipelineRun", status: { conditions: [{ type: "Succeeded", status: "Unknown", reason: "Running" }] } })).toEqual({ phase: "Running" });
    expect(
      runOutcome({ kind: "PipelineRun", status: { conditions: [{ type: "Succeeded", status: "True", reason: "Succeeded", message: "Tasks Completed: 3", lastTransitionTime: "2026-11-21T02:30:00Z" }] } }),
    ).toEqual({ phase: "Succeeded", reason: "Succeeded", message: "Tasks Completed: 3", finishedAt: "2026-11-21T02:30:00Z" });
    expect(runOutcome({ kind: "TaskRun", status: { conditions: [{ type: "Succeeded", status: "False", reason: "Failed", message: "step build failed" }] } })).toMatchObject({
      phase: "Failed",
      reason: "Failed",
    });
    expect(runOutcome({ kind: "PipelineRun", status: { conditions: [{ type: "Succeeded", status: "False", reason: "Cancelled" }] } }).phase).toBe("Cancelled");
    expect(runOutcome({ kind: "TaskRun", status: { conditions: [{ type: "Succeeded", status: "False", reason: "TaskRunCancelled" }] } }).phase).toBe("Cancelled");
    expect(runOutcome({ kind: "Job", status: { conditions: [{ type: "Complete", status: "True" }], completionTime: "2026-11-21T02:10:00Z" } })).toEqual({
      phase: "Succeeded",
      reason: "Complete",
      finishedAt: "2026-11-21T02:10:00Z",
    });
    expect(runOutcome({ kind: "Job", status: { conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" }] } })).toMatchObject({
      phase: "Failed",
      reason: "BackoffLimitExceeded",
    });
    expect(runOutcome({ kind: "Job", status: { active: 1 } }).phase).toBe("Running");
  });
});

describe("release history and lagged revisions", () => {
  it("keeps open records when trimming the history", () => {
    const rec = (i: number, result: ReleaseRecord["result"]): ReleaseRecord => ({ slot: `s${i}`, trigger: "scheduled", result });
    const history = [rec(0, "Skipped"), rec(1, "Skipped"), rec(2, "Running"), rec(3, "Succeeded"), rec(4, "Claimed"), rec(5, "Failed")];
    expect(trimHistory(history, 3).map((r) => r.slot)).toEqual(["s0", "s2", "s4"]);
    expect(trimHistory(history, 4).map((r) => r.slot)).toEqual(["s0", "s1", "s2", "s4"]);
  });

  it("picks the newest revision deployed (Applied) at least olderThan before the slot", () => {
    const h: DeployRecord[] = [
      { revision: "d", startedAt: "2026-11-21T01:00:00Z", finishedAt: "2026-11-21T01:00:05Z", result: "Applied" },
      { revision: "c", startedAt: "2026-11-20T06:00:00Z", finishedAt: "2026-11-20T06:00:05Z", result: "Failed" },
      { revision: "b", startedAt: "2026-11-20T01:00:00Z", finishedAt: "2026-11-20T01:00:05Z", result: "Applied" },
      { revision: "a", startedAt: "2026-11-19T01:00:00Z", finishedAt: "2026-11-19T01:00:05Z", result: "Applied" },
    ];
    const slot = new Date("2026-11-21T02:00:00Z");
    expect(laggedRevision(h, new Date(slot.getTime() - 24 * 3600_000))?.revision).toBe("b");
    expect(laggedRevision(h, new Date(slot.getTime() - 30 * 60_000))?.revision).toBe("d");
    expect(laggedRevision(h, new Date(slot.getTime() - 72 * 3600_000))).toBeUndefined();
  });
});
