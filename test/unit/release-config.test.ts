import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig, parseConfig } from "../../src/config/load.js";
import { FileProblemError, formatProblem } from "../../src/types.js";

const yaml = (...lines: string[]): string => lines.join("\n") + "\n";

const BASE = [
  "clusters:", //                                   1
  "  - name: prod", //                              2
  "repos:", //                                      3
  "  - name: infra", //                             4
  "    url: https://git.example.com/infra.git", //  5
  "    interval: 1m", //                            6
  "apps:", //                                       7
  "  - name: tasks", //                             8
  "    repo: infra", //                             9
  "    branch: main", //                            10
  "    path: tekton/tasks", //                      11
  "    cluster: prod", //                           12
  "    namespace: ci", //                           13
  "releases:", //                                   14
  "  - name: nightly", //                           15
  "    schedule: '0 2 * * *'", //                   16
  "    repo: infra", //                             17
  "    branch: main", //                            18
  "    cluster: prod", //                           19
  "    namespace: releases", //                     20
  "    template:", //                               21
  "      path: tekton/release-run.yaml", //         22
];

function config(replace: Record<number, string | string[]> = {}, ...extra: string[]): string {
  const out: string[] = [];
  BASE.forEach((line, i) => {
    const r = replace[i + 1];
    if (r === undefined) out.push(line);
    else out.push(...(Array.isArray(r) ? r : [r]));
  });
  return yaml(...out, ...extra);
}

function problems(text: string): string[] {
  try {
    parseConfig(text, "c.yaml");
  } catch (err) {
    if (!(err instanceof FileProblemError)) throw err;
    return err.problems.map(formatProblem);
  }
  throw new Error("expected parseConfig to fail");
}

describe("releases[] in the config", () => {
  it("normalizes a release with its defaults", () => {
    const c = parseConfig(config(), "c.yaml");
    expect(c.releases).toEqual([
      {
        name: "nightly",
        schedule: "0 2 * * *",
        timezone: "UTC",
        repo: "infra",
        branch: "main",
        cluster: "prod",
        namespace: "releases",
        suspend: false,
        template: { path: "tekton/release-run.yaml" },
        params: {},
        revision: { kind: "head" },
        concurrency: "forbid",
        skipIfUnchanged: false,
      },
    ]);
  });

  it("the example config/plumber.yaml has a valid nightly release", async () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
    const c = await loadConfig(path.join(root, "config/plumber.yaml"));
    expect(c.releases).toMatchObject([{ name: "pipeline-nightly", schedule: "0 2 * * *", template: { path: "tekton/release-nightly-run.yaml" }, concurrency: "forbid" }]);
  });

  it("defaults to no releases", () => {
    expect(parseConfig(yaml(...BASE.slice(0, 13)), "c.yaml").releases).toEqual([]);
  });

  it("reads every field, an inline template and a lagged revision", () => {
    const c = parseConfig(
      config(
        {
          16: ["    schedule: '30 2 * * *'", "    timezone: Europe/Berlin", "    suspend: true", "    concurrency: replace", "    skipIfUnchanged: true", "    catchUp: 1h"],
          21: [
            "    revision: { deployedTo: tasks, olderThan: 24h }",
            "    params:",
            "      versionTag: $(plumber.versionTag)",
            "    template:",
            "      inline:",
            "        apiVersion: tekton.dev/v1",
            "        kind: PipelineRun",
            "        spec:",
            "          pipelineRef: { name: release }",
            "          params: [{ name: versionTag, value: $(plumber.params.versionTag) }]",
          ],
          22: [],
        },
      ),
      "c.yaml",
    );
    const r = c.releases[0]!;
    expect(r).toMatchObject({
      timezone: "Europe/Berlin",
      suspend: true,
      concurrency: "replace",
      skipIfUnchanged: true,
      catchUpMs: 3_600_000,
      revision: { kind: "deployedTo", app: "tasks", olderThanMs: 86_400_000 },
      params: { versionTag: "$(plumber.versionTag)" },
    });
    expect("inline" in r.template && r.template.inline.kind).toBe("PipelineRun");
  });

  it("reports a bad cron expression, time zone and references at their lines", () => {
    expect(problems(config({ 16: "    schedule: '61 2 * * *'" }))).toEqual([
      expect.stringMatching(/^c\.yaml:16:15: releases\[0\]\.schedule: invalid cron expression: .*minute/),
    ]);
    expect(problems(config({ 16: "    schedule: '0 2 * *'" }))).toEqual([expect.stringMatching(/^c\.yaml:16:15: releases\[0\]\.schedule: invalid cron expression/)]);
    expect(problems(config({ 16: ["    schedule: '0 2 * * *'", "    timezone: Mars/Olympus"] }))).toEqual([
      'c.yaml:17:15: releases[0].timezone: unknown time zone "Mars/Olympus" (expected an IANA name such as UTC, Europe/Berlin or America/New_York)',
    ]);
    expect(problems(config({ 17: "    repo: nope", 19: "    cluster: nah" }))).toEqual([
      'c.yaml:17:11: releases[0].repo: no repo named "nope" (known: "infra")',
      'c.yaml:19:14: releases[0].cluster: no cluster named "nah" (known: "prod")',
    ]);
    expect(problems(config({ 16: "    schedule: '0 0 30 2 *'" }))).toEqual(["c.yaml:16:15: releases[0].schedule: the cron expression never fires"]);
  });

  it("reports template, revision, params and catchUp problems", () => {
    expect(problems(config({ 22: ["      path: a.yaml", "      inline: { apiVersion: batch/v1, kind: Job }"] }))).toEqual([
      "c.yaml:22:7: releases[0].template: set either path or inline, not both",
    ]);
    expect(problems(config({ 22: "      path: ../up.yaml" }))).toEqual([
      "c.yaml:22:13: releases[0].template.path: must stay inside the repository (it escapes it with '..')",
    ]);
    expect(problems(config({ 22: "      inline: { apiVersion: v1, kind: Pod }" }))).toEqual([
      expect.stringContaining("c.yaml:22:15: releases[0].template.inline: the template is v1 Pod"),
    ]);
    expect(problems(config({ 22: ["      inline:", "        apiVersion: batch/v1", "        kind: Job", "        metadata: { name: $(plumber.bogus) }"] }))).toEqual([
      expect.stringContaining("c.yaml:25:27: releases[0].template.inline.metadata.name: unknown placeholder $(plumber.bogus)"),
    ]);
    expect(problems(config({ 21: ["    revision: latest", "    template:"] }))).toEqual([
      'c.yaml:21:15: releases[0].revision: must be "head" or a mapping {deployedTo: APP, olderThan: DURATION}',
    ]);
    expect(problems(config({ 21: ["    revision: { deployedTo: nope, olderThan: 1d }", "    template:"] }))).toEqual([
      expect.stringContaining('c.yaml:21:29: releases[0].revision.deployedTo: no app named "nope"'),
      expect.stringContaining("c.yaml:21:46: releases[0].revision.olderThan: must be a duration"),
    ]);
    expect(problems(config({ 18: "    branch: other" }, ).replace("template:", "revision: { deployedTo: tasks, olderThan: 1h }\n    template:"))).toEqual([
      expect.stringContaining('releases[0].revision.deployedTo: app tasks follows branch "main", but the release reads branch "other"'),
    ]);
    expect(problems(config({ 21: ["    params: { a: $(plumber.params.b), b: x }", "    template:"] }))).toEqual([
      "c.yaml:21:18: releases[0].params.a: $(plumber.params.b): params cannot refer to other params",
    ]);
    expect(problems(config({ 21: ["    catchUp: 5s", "    template:"] }))).toEqual(["c.yaml:21:14: releases[0].catchUp: must be at least 10s"]);
    expect(problems(config({ 21: ["    concurrency: queue", "    template:"] }))).toEqual([
      'c.yaml:21:18: releases[0].concurrency: must be one of "forbid", "replace", "allow"',
    ]);
  });

  it("refuses duplicate release names and unknown fields", () => {
    const dup = config({}, ...BASE.slice(14));
    expect(problems(dup)).toEqual(['c.yaml:23:11: releases[1].name: duplicate release name "nightly" (first used at line 15)']);
    expect(problems(config({ 21: ["    schedul: x", "    template:"] }))).toEqual([
      'c.yaml:21:5: releases[0].schedul: unknown field (did you mean "schedule"?)',
    ]);
  });
});
