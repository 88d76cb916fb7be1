import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, parseConfig } from "../../src/config/load.js";
import { FileProblemError, formatProblem } from "../../src/types.js";

const APP = [
  "clusters:",
  "  - name: prod",
  "repos:",
  "  - name: infra",
  "    url: https://git.example.com/infra.git",
  "    interval: 1m",
  "apps:",
  "  - name: tasks",
  "    repo: infra",
  "    branch: main",
  "    path: tekton",
  "    cluster: prod",
  "    namespace: ci",
];

function problems(text: string): string[] {
  try {
    parseConfig(text, "c.yaml");
  } catch (e) {
    if (e instanceof FileProblemError) return e.problems.map(formatProblem);
    throw e;
  }
  throw new Error("expected a config error");
}

describe("safe-deploy config", () => {
  it("normalizes checks, health, rollback, approval, cluster identity and notifications", () => {
    const c = parseConfig(
      [
        ...APP,
        "    health: {timeout: 90s}",
        "    rollback: off",
        "    approval: manual",
        "    checks:",
        "      keep: 5",
        "      pre:",
        "        - name: lint",
        "          job: {file: ./checks/lint.yaml}",
        "      post:",
        "        - name: smoke",
        "          timeout: 2m",
        "          pipelineRun: {manifest: {apiVersion: tekton.dev/v1, kind: PipelineRun}}",
        "notifications:",
        "  - name: chat",
        "    type: slack",
        "    urlFile: secrets/slack",
        "    on: [deployed, rolledBack]",
      ].join("\n") + "\n",
      "/etc/plumber/c.yaml",
    );
    const app = c.apps[0];
    expect(app).toMatchObject({ healthTimeoutMs: 90_000, rollback: "off", approval: "manual" });
    expect(app?.checks).toEqual({
      keep: 5,
      pre: [{ name: "lint", kind: "job", file: "checks/lint.yaml", timeoutMs: 600_000 }],
      post: [{ name: "smoke", kind: "pipelineRun", manifest: { apiVersion: "tekton.dev/v1", kind: "PipelineRun" }, timeoutMs: 120_000 }],
    });
    expect(c.notifications).toEqual([{ name: "chat", type: "slack", urlFile: "/etc/plumber/secrets/slack", on: ["deployed", "rolledBack"] }]);
  });

  it("defaults to health gating for 5m, automatic rollback and no approval", () => {
    const app = parseConfig(APP.join("\n") + "\n", "c.yaml").apps[0];
    expect(app).toMatchObject({ healthTimeoutMs: 300_000, rollback: "auto", approval: "none", checks: { pre: [], post: [], keep: 3 } });
  });

  it("a check with both or neither of job and pipelineRun is an error at its line", () => {
    const both = problems([...APP, "    checks:", "      pre:", "        - name: x", "          job: {file: a.yaml}", "          pipelineRun: {file: b.yaml}"].join("\n") + "\n");
    expect(both.join("\n")).toMatch(/c\.yaml:16:\d+: apps\[0\]\.checks\.pre\[0\]: set exactly one of job or pipelineRun/);
    const neither = problems([...APP, "    checks:", "      post:", "        - name: x", "          timeout: 1m"].join("\n") + "\n");
    expect(neither.join("\n")).toMatch(/c\.yaml:16:\d+: apps\[0\]\.checks\.post\[0\]: set exactly one of job or pipelineRun/);
  });

  it("refuses unknown rollback modes, unknown notification events and a cluster identity without uid", () => {
    const p = problems(
      [...APP, "    rollback: sometimes", "notifications:", "  - {name: n, type: webhook, urlFile: u, on: [exploded]}"].join("\n") + "\n",
    ).join("\n");
    expect(p).toMatch(/c\.yaml:14:\d+: apps\[0\]\.rollback/);
    expect(p).toMatch(/c\.yaml:16:\d+: notifications\[0\]\.on\[0\]/);
    const q = problems(APP.join("\n").replace("  - name: prod", "  - name: prod\n    expect: {}") + "\n").join("\n");
    expect(q).toMatch(/c\.yaml:3:\d+: clusters\[0\]\.expect.*kubeSystemUID/);
  });

  it("the shipped example config loads with its checks and notifications", async () => {
    const c = await loadConfig(path.join(import.meta.dirname, "../../config/plumber.yaml"));
    const pipelines = c.apps.find((a) => a.name === "tekton-pipelines");
    expect(pipelines?.checks.pre.map((x) => x.name)).toEqual(["lint"]);
    expect(pipelines?.checks.post.map((x) => x.name)).toEqual(["smoke"]);
    expect(c.notifications.map((n) => n.name)).toEqual(["team-chat", "audit"]);
  });
});
