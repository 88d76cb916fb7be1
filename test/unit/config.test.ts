import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findGatedFields, stageAllowed } from "../../src/config/gates.js";
import { MAX_CONFIG_BYTES, checkRepoUrl, loadConfig, normalizeAppPath, parseConfig } from "../../src/config/load.js";
import { configSchema, type SchemaNode } from "../../src/config/schema.js";
import { MAX_SECRET_BYTES, readSecretFile } from "../../src/config/secrets.js";
import { FileProblemError, formatProblem } from "../../src/types.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const fixtures = path.join(root, "test/fixtures/config");

/** Lines joined with "\n": line N of the config is element N-1. */
const yaml = (...lines: string[]): string => lines.join("\n") + "\n";

/** The formatted problems parseConfig throws for `text` (fails the test when it does not throw). */
function problems(text: string, file = "c.yaml"): string[] {
  try {
    parseConfig(text, file);
  } catch (err) {
    if (!(err instanceof FileProblemError)) throw err;
    expect(err.message).toBe(err.problems.map(formatProblem).join("\n"));
    return err.problems.map(formatProblem);
  }
  throw new Error("expected parseConfig to fail");
}

// A valid config, line by line; tests swap single lines to make one thing wrong.
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
];

/** BASE with line `n` (1-based) replaced by `replacement` (several lines allowed), plus `extra` lines. */
function base(replace: Record<number, string | string[]> = {}, ...extra: string[]): string {
  const out: string[] = [];
  BASE.forEach((line, i) => {
    const r = replace[i + 1];
    if (r === undefined) out.push(line);
    else out.push(...(Array.isArray(r) ? r : [r]));
  });
  return yaml(...out, ...extra);
}

describe("valid configs", () => {
  it("loads a config, fills in the schema's defaults and resolves paths against the file's directory", async () => {
    const file = path.join(fixtures, "valid.yaml");
    const config = await loadConfig(file);
    expect(config).toEqual({
      file,
      clusters: [
        { name: "prod", kubeconfig: path.join(fixtures, "kube/prod.yaml"), context: "admin" },
        { name: "staging" },
      ],
      repos: [
        {
          name: "infra",
          url: "https://git.example.com/platform/infra.git",
          intervalMs: 90_000,
          timeoutMs: 30_000,
          concurrency: 4,
          auth: { usernameFile: path.join(fixtures, "secrets/user"), passwordFile: "/etc/plumber/password" },
          caFile: path.join(fixtures, "ca.pem"),
        },
        { name: "public", url: "http://git.example.com/public.git", intervalMs: 300_000, timeoutMs: 10_000, concurrency: 4 },
      ],
      apps: [
        {
          name: "tekton-tasks",
          repo: "infra",
          branch: "main",
          path: "tekton/tasks",
          cluster: "prod",
          namespace: "ci",
          windows: [],
          dependsOn: [],
          allowClusterScoped: true,
          prune: true,
          allowEmpty: false,
          applyConcurrency: 8,
          checks: { pre: [], post: [], keep: 3 },
          healthTimeoutMs: 300_000,
          rollback: "auto",
          approval: "none",
        },
        {
          name: "tekton-pipelines",
          repo: "public",
          branch: "release/v1",
          path: ".",
          cluster: "staging",
          namespace: "ci",
          windows: [],
          dependsOn: [],
          allowClusterScoped: true,
          prune: false,
          allowEmpty: true,
          applyConcurrency: 8,
          checks: { pre: [], post: [], keep: 3 },
          healthTimeoutMs: 300_000,
          rollback: "auto",
          approval: "none",
        },
      ],
      state: { namespace: "plumber" },
      notifications: [],
      releases: [],
      featureGates: { apiFields: "stable" },
      kustomize: { binary: "kustomize", allowRemoteBases: false, timeoutMs: 60_000 },
      dashboard: { public: false },
    });
    // No key is present that the types do not declare.
    expect(Object.keys(config.clusters[1]!)).toEqual(["name"]);
    expect(Object.keys(config.repos[1]!)).toEqual(["name", "url", "intervalMs", "timeoutMs", "concurrency"]);
  });

  it("resolves a relative config path and relative file paths from the config's directory", () => {
    const config = parseConfig(base({ 2: ["  - name: prod", "    kubeconfig: ../kube/config"] }), "etc/plumber.yaml");
    expect(config.file).toBe(path.resolve("etc/plumber.yaml"));
    expect(config.clusters[0]!.kubeconfig).toBe(path.resolve("kube/config"));
  });

  it("loads the example config/plumber.yaml", async () => {
    const config = await loadConfig(path.join(root, "config/plumber.yaml"));
    expect(config.clusters).toEqual([{ name: "prod" }]);
    expect(config.repos).toHaveLength(1);
    expect(config.repos[0]!.url.startsWith("https://")).toBe(true);
    expect(config.repos[0]!.auth?.tokenFile).toBe(path.join(root, "config/secrets/git-token"));
    expect(config.apps.map((a) => a.name)).toEqual(["tekton-tasks", "tekton-pipelines"]);
    expect(config.apps.every((a) => a.repo === config.repos[0]!.name)).toBe(true);
    expect(config.state.namespace).toBe("plumber");
    expect(config.featureGates.apiFields).toBe("stable");
  });

  it("takes state.namespace and featureGates from the file", () => {
    const config = parseConfig(base({}, "state:", "  namespace: gitops", "featureGates:", "  apiFields: beta"), "c.yaml");
    expect(config.state).toEqual({ namespace: "gitops" });
    expect(config.featureGates).toEqual({ apiFields: "beta" });
  });

  it("reads aliases that expand to little", () => {
    const config = parseConfig(
      base({ 10: "    branch: &b main" }, "  - name: more", "    repo: infra", "    branch: *b", "    path: .", "    cluster: prod", "    namespace: ci"),
      "c.yaml",
    );
    expect(config.apps[1]!.branch).toBe("main");
  });

  it("keeps every property in the schema documented", () => {
    const undocumented: string[] = [];
    const walk = (node: SchemaNode, where: string): void => {
      for (const [key, sub] of Object.entries(node.properties ?? {})) {
        if (!sub.description) undocumented.push(`${where}.${key}`);
        walk(sub, `${where}.${key}`);
      }
      for (const [key, sub] of Object.entries(node.$defs ?? {})) walk(sub, `$defs.${key}`);
    };
    walk(configSchema(), "");
    expect(undocumented).toEqual([]);
  });
});

describe("errors name file:line:column and the field", () => {
  it("a wrong type, at the value", () => {
    expect(problems(base({ 10: "    branch: [main]" }))).toEqual(["c.yaml:10:13: apps[0].branch: must be a string (got a list)"]);
  });

  it("a missing required field, at the parent object", () => {
    expect(problems(base({ 10: [] }))).toEqual(["c.yaml:8:5: apps[0].branch: required field is missing"]);
    expect(problems(yaml("clusters:", "  - name: prod", "repos:", "  - name: infra", "    url: https://x.example/r.git", "    interval: 1m"))).toEqual([
      "c.yaml:1:1: apps: required field is missing",
    ]);
  });

  it("an empty value, at its key", () => {
    expect(problems(base({ 10: "    branch:" }))).toEqual(["c.yaml:10:5: apps[0].branch: must be a string (got null)"]);
  });

  it("a YAML syntax error, with line and column, and nothing else", () => {
    expect(problems(base({ 10: "    branch: main: x", 12: "    clusterr: prod" }))).toEqual([
      "c.yaml:10:13: Nested mappings are not allowed in compact mappings",
    ]);
    expect(problems(base({ 13: "\tnamespace: ci" }))).toEqual(["c.yaml:13:1: Tabs are not allowed as indentation"]);
    expect(problems(base({ 10: "    branch: @main" }))).toEqual(["c.yaml:10:13: Plain value cannot start with reserved character @"]);
  });

  it("a duplicate YAML key, at the second key", () => {
    expect(problems(base({ 10: ["    branch: main", "    branch: dev"] }))).toEqual(["c.yaml:11:5: Map keys must be unique"]);
  });

  it("an empty file and a file that is not a mapping", () => {
    expect(problems("# nothing\n")).toEqual(["c.yaml:1:1: config file is empty"]);
    expect(problems("- a\n- b\n")).toEqual(["c.yaml:1:1: the config must be a YAML mapping (got a list)"]);
    expect(problems(base({ 1: "\uFEFFclusters: prod", 2: [] }))).toEqual(["c.yaml:1:11: clusters: must be a list (got a string)"]);
  });

  it("an enum value, listing the allowed values", () => {
    expect(problems(base({}, "featureGates:", "  apiFields: experimental"))).toEqual([
      'c.yaml:15:14: featureGates.apiFields: must be one of "stable", "beta", "alpha"',
    ]);
  });

  it("DNS label names and the 40 character limit of app names", () => {
    expect(problems(base({ 2: "  - name: Prod", 12: "    cluster: Prod" }))).toEqual([
      "c.yaml:2:11: clusters[0].name: must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
    ]);
    const long = "a".repeat(41);
    expect(problems(base({ 8: `  - name: ${long}` }))).toEqual([
      "c.yaml:8:11: apps[0].name: must NOT have more than 40 characters",
    ]);
    expect(parseConfig(base({ 8: `  - name: ${"a".repeat(40)}` }), "c.yaml").apps[0]!.name).toHaveLength(40);
  });

  it("a bad branch name", () => {
    expect(problems(base({ 10: "    branch: -main" }))).toEqual(["c.yaml:10:13: apps[0].branch: must be a valid git branch name"]);
    expect(problems(base({ 10: "    branch: a..b" }))).toEqual(["c.yaml:10:13: apps[0].branch: must be a valid git branch name"]);
  });

  it("applyConcurrency out of range", () => {
    const alpha = ["featureGates:", "  apiFields: alpha"];
    expect(problems(base({ 13: ["    namespace: ci", "    applyConcurrency: 65"] }, ...alpha))).toEqual([
      "c.yaml:14:23: apps[0].applyConcurrency: must be <= 64",
    ]);
    expect(problems(base({ 13: ["    namespace: ci", "    applyConcurrency: 1.5"] }, ...alpha))).toEqual([
      "c.yaml:14:23: apps[0].applyConcurrency: must be an integer (got a number)",
    ]);
  });

  it("lists several problems at once, in file order, from every kind of check", async () => {
    const err = await loadConfig(path.join(fixtures, "many-errors.yaml")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileProblemError);
    const file = path.join(fixtures, "many-errors.yaml");
    expect((err as FileProblemError).problems.map(formatProblem)).toEqual(
      [
        "2:11: clusters[0].name: must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
        '3:5: clusters[0].kubeconfg: unknown field (did you mean "kubeconfig"?)',
        "6:10: repos[0].url: scp-style ssh addresses (user@host:path) are not supported; use an https:// URL",
        "7:15: repos[0].interval: must be a duration such as 30s, 5m, 1h or 1m30s (units: ms, s, m, h)",
        '10:11: apps[0].repo: no repo named "nope" (known: "infra")',
        "12:11: apps[0].path: must be relative to the repository root, not absolute",
        '13:14: apps[0].cluster: no cluster named "prod" (known: "Prod_1")',
        "15:12: apps[0].prune: must be a boolean (got a string)",
      ].map((p) => `${file}:${p}`),
    );
  });
});

describe("unknown keys", () => {
  it("point at the unknown key itself, at any depth", () => {
    expect(problems(base({ 6: ["    interval: 1m", "    auth:", "      tokenFile: t", "      tokn: x"] }))).toEqual([
      "c.yaml:9:7: repos[0].auth.tokn: unknown field",
    ]);
    expect(problems(base({}, "status: {}"))).toEqual(["c.yaml:14:1: status: unknown field"]);
    expect(problems(base({}, "state:", "  namespace: x", "  nam: y"))).toEqual(["c.yaml:16:3: state.nam: unknown field"]);
  });

  it("suggest the field that was probably meant", () => {
    expect(problems(base({ 11: "    pth: tekton/tasks" }))).toEqual([
      "c.yaml:8:5: apps[0].path: required field is missing",
      'c.yaml:11:5: apps[0].pth: unknown field (did you mean "path"?)',
    ]);
  });
});

describe("repo concurrency", () => {
  const concurrency = (v: string): string => base({ 6: ["    interval: 1m", `    concurrency: ${v}`] });

  it("defaults to 4 apps at once and takes 1 to 64", () => {
    expect(parseConfig(base(), "c.yaml").repos[0]!.concurrency).toBe(4);
    expect(parseConfig(concurrency("1"), "c.yaml").repos[0]!.concurrency).toBe(1);
    expect(parseConfig(concurrency("64"), "c.yaml").repos[0]!.concurrency).toBe(64);
  });

  it("refuses 0, more than 64 and non-integers, at the value", () => {
    for (const bad of ["0", "65", "2.5", "many"]) expect(problems(concurrency(bad))).toHaveLength(1);
    expect(problems(concurrency("0"))[0]).toMatch(/^c\.yaml:7:18: repos\[0\]\.concurrency: /);
  });
});

describe("durations", () => {
  const interval = (v: string): string => base({ 6: `    interval: ${v}` });

  it("accepts Go-style durations", () => {
    expect(parseConfig(interval("1m30s"), "c.yaml").repos[0]!.intervalMs).toBe(90_000);
    expect(parseConfig(interval("1h"), "c.yaml").repos[0]!.intervalMs).toBe(3_600_000);
    expect(parseConfig(interval("1s"), "c.yaml").repos[0]!.intervalMs).toBe(1_000);
  });

  it("refuses malformed ones, at the value", () => {
    const msg = "must be a duration such as 30s, 5m, 1h or 1m30s (units: ms, s, m, h)";
    for (const bad of ["5x", "2d", "1 m", "-5s", "five"]) {
      expect(problems(interval(bad))).toEqual([`c.yaml:6:15: repos[0].interval: ${msg}`]);
    }
    expect(problems(interval("30"))).toEqual(["c.yaml:6:15: repos[0].interval: must be a string (got an integer)"]);
  });

  it("refuses intervals under 1s or over 24h and timeouts under 1s", () => {
    expect(problems(interval("500ms"))).toEqual(["c.yaml:6:15: repos[0].interval: must be at least 1s"]);
    expect(problems(interval("0s"))).toEqual(["c.yaml:6:15: repos[0].interval: must be at least 1s"]);
    expect(problems(interval("25h"))).toEqual(["c.yaml:6:15: repos[0].interval: must be at most 24h"]);
    expect(problems(base({ 6: ["    interval: 1m", "    timeout: 999ms"] }))).toEqual([
      "c.yaml:7:14: repos[0].timeout: must be at least 1s",
    ]);
  });

  it("refuses sub-millisecond durations that the pattern lets through", () => {
    expect(problems(interval("1.0005s"))).toEqual([
      'c.yaml:6:15: repos[0].interval: invalid duration "1.0005s": finer than a millisecond',
    ]);
  });
});

describe("repo URLs", () => {
  const url = (u: string, ...more: string[]): string => base({ 5: [`    url: ${u}`, ...more] });

  it("refuses ssh, git and file schemes and scp-style addresses, at the value", () => {
    expect(problems(url("ssh://git@github.com/org/repo.git"))).toEqual([
      "c.yaml:5:10: repos[0].url: ssh:// URLs are not supported; use an https:// or http:// URL",
    ]);
    expect(problems(url("git://github.com/org/repo.git"))).toEqual([
      "c.yaml:5:10: repos[0].url: git:// URLs are not supported; use an https:// or http:// URL",
    ]);
    expect(problems(url("file:///srv/git/repo.git"))).toEqual([
      "c.yaml:5:10: repos[0].url: file:// URLs are not supported; use an https:// or http:// URL",
    ]);
    expect(problems(url("git@github.com:org/repo.git"))).toEqual([
      "c.yaml:5:10: repos[0].url: scp-style ssh addresses (user@host:path) are not supported; use an https:// URL",
    ]);
    expect(problems(url("not a url"))).toEqual(["c.yaml:5:10: repos[0].url: must be an https:// or http:// URL"]);
  });

  it("refuses embedded credentials without repeating them", () => {
    for (const u of ["https://user:s3cr3t@git.example.com/r.git", "https://s3cr3t@git.example.com/r.git"]) {
      const p = problems(url(u));
      expect(p).toEqual([
        "c.yaml:5:10: repos[0].url: must not contain credentials; use auth.tokenFile, or auth.usernameFile and auth.passwordFile",
      ]);
      expect(p.join("\n")).not.toContain("s3cr3t");
    }
  });

  it("refuses plain http with auth unless the host is loopback", () => {
    const auth = ["    auth:", "      tokenFile: token"];
    const refused =
      "c.yaml:5:10: repos[0].url: plain http:// would send the credentials of auth unencrypted; use https:// (http:// with auth is allowed only for loopback hosts)";
    const withAuth = (u: string): string => base({ 5: `    url: ${u}`, 6: ["    interval: 1m", ...auth] });
    expect(problems(withAuth("http://git.example.com/r.git"))).toEqual([refused]);
    expect(problems(withAuth("http://10.0.0.1/r.git"))).toEqual([refused]);
    for (const host of ["127.0.0.1:8080", "127.3.2.1", "localhost", "[::1]:3000"]) {
      expect(parseConfig(withAuth(`http://${host}/r.git`), "/cfg/c.yaml").repos[0]!.auth).toEqual({ tokenFile: "/cfg/token" });
    }
    // Without auth, plain http is allowed anywhere.
    expect(parseConfig(url("http://git.example.com/r.git"), "c.yaml").repos[0]!.url).toBe("http://git.example.com/r.git");
    expect(checkRepoUrl("http://127.0.0.1.example.com/r.git", true)).toMatch(/plain http/);
    expect(checkRepoUrl("https://git.example.com/r.git", true)).toBeUndefined();
  });
});

describe("repo auth", () => {
  const auth = (...lines: string[]): string => base({ 6: ["    interval: 1m", "    auth:", ...lines] });

  it("takes tokenFile, or usernameFile with passwordFile", () => {
    expect(parseConfig(auth("      tokenFile: t"), "/c/c.yaml").repos[0]!.auth).toEqual({ tokenFile: "/c/t" });
    expect(parseConfig(auth("      usernameFile: u", "      passwordFile: p"), "/c/c.yaml").repos[0]!.auth).toEqual({
      usernameFile: "/c/u",
      passwordFile: "/c/p",
    });
  });

  it("refuses both kinds, half a pair, and nothing", () => {
    expect(problems(auth("      tokenFile: t", "      usernameFile: u", "      passwordFile: p"))).toEqual([
      "c.yaml:8:7: repos[0].auth: set either tokenFile, or usernameFile and passwordFile, not both",
    ]);
    expect(problems(auth("      usernameFile: u"))).toEqual(["c.yaml:8:7: repos[0].auth.passwordFile: required when usernameFile is set"]);
    expect(problems(auth("      passwordFile: p"))).toEqual(["c.yaml:8:7: repos[0].auth.usernameFile: required when passwordFile is set"]);
    expect(problems(base({ 6: ["    interval: 1m", "    auth: {}"] }))).toEqual([
      "c.yaml:7:11: repos[0].auth: must set tokenFile, or usernameFile and passwordFile",
    ]);
  });
});

describe("app paths", () => {
  const appPath = (p: string): string => base({ 11: `    path: ${p}` });

  it("normalizes relative paths; '.' and '' are the root", () => {
    const got = (p: string): string => parseConfig(appPath(p), "c.yaml").apps[0]!.path;
    expect(got('""')).toBe(".");
    expect(got(".")).toBe(".");
    expect(got("./")).toBe(".");
    expect(got("./a//b/")).toBe("a/b");
    expect(got("a/../b")).toBe("b");
  });

  it("refuses absolute paths and paths that escape the repo", () => {
    expect(problems(appPath("/etc"))).toEqual(["c.yaml:11:11: apps[0].path: must be relative to the repository root, not absolute"]);
    for (const p of ["..", "../other", "a/../../b", "./.."]) {
      expect(problems(appPath(p))).toEqual(["c.yaml:11:11: apps[0].path: must stay inside the repository (it escapes it with '..')"]);
    }
    expect(normalizeAppPath("C:/x")).toEqual({ error: "must be relative to the repository root, not absolute" });
    expect(normalizeAppPath("a\\..\\..\\b")).toEqual({ error: "must use / as the separator" });
  });
});

describe("cross references", () => {
  it("refuses duplicate names in clusters, repos and apps, at the duplicate", () => {
    const text = yaml(
      "clusters:", //                                  1
      "  - name: prod", //                             2
      "  - name: prod", //                             3
      "repos:", //                                     4
      "  - name: infra", //                            5
      "    url: https://git.example.com/a.git", //     6
      "    interval: 1m", //                           7
      "  - name: infra", //                            8
      "    url: https://git.example.com/b.git", //     9
      "    interval: 1m", //                           10
      "apps:", //                                      11
      "  - {name: tasks, repo: infra, branch: main, path: a, cluster: prod, namespace: ci}", // 12
      "  - {name: tasks, repo: infra, branch: main, path: b, cluster: prod, namespace: ci}", // 13
    );
    expect(problems(text)).toEqual([
      'c.yaml:3:11: clusters[1].name: duplicate cluster name "prod" (first used at line 2)',
      'c.yaml:8:11: repos[1].name: duplicate repo name "infra" (first used at line 5)',
      'c.yaml:13:12: apps[1].name: duplicate app name "tasks" (first used at line 12)',
    ]);
  });

  it("refuses an app.repo or app.cluster that names nothing", () => {
    expect(problems(base({ 9: "    repo: infra2", 12: "    cluster: staging" }))).toEqual([
      'c.yaml:9:11: apps[0].repo: no repo named "infra2" (known: "infra")',
      'c.yaml:12:14: apps[0].cluster: no cluster named "staging" (known: "prod")',
    ]);
  });
});

describe("bounds", () => {
  it("refuses an alias bomb", () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      lines.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(",")}]`);
    }
    expect(problems(yaml(...lines))).toEqual([
      "c.yaml:2:8: YAML aliases expand to too much data (more than 100 alias expansions); refusing a possible alias bomb",
    ]);
  });

  it("refuses a file over 1 MiB", async () => {
    const big = base({}, "#" + "x".repeat(MAX_CONFIG_BYTES));
    expect(problems(big)).toEqual([`c.yaml:1:1: config file is ${Buffer.byteLength(big)} bytes; the limit is ${MAX_CONFIG_BYTES} (1 MiB)`]);
  });
});

describe("feature gates", () => {
  const concurrency = (gate?: string): string =>
    base({ 13: ["    namespace: ci", "    applyConcurrency: 4"] }, ...(gate ? ["featureGates:", `  apiFields: ${gate}`] : []));

  it("refuses an alpha field under the default stable gate, at the field's key, naming the gate", () => {
    expect(problems(concurrency())).toEqual([
      "c.yaml:14:5: apps[0].applyConcurrency: field is alpha; set featureGates.apiFields: alpha to use it",
    ]);
    expect(problems(concurrency("stable"))).toEqual([
      "c.yaml:14:5: apps[0].applyConcurrency: field is alpha; set featureGates.apiFields: alpha to use it",
    ]);
  });

  it("refuses an alpha field under the beta gate", () => {
    expect(problems(concurrency("beta"))).toEqual([
      "c.yaml:14:5: apps[0].applyConcurrency: field is alpha; set featureGates.apiFields: alpha to use it",
    ]);
  });

  it("accepts an alpha field under the alpha gate", async () => {
    expect(parseConfig(concurrency("alpha"), "c.yaml").apps[0]!.applyConcurrency).toBe(4);
    expect((await loadConfig(path.join(fixtures, "alpha.yaml"))).apps[0]!.applyConcurrency).toBe(16);
  });

  it("does not count defaults of gated fields as use", () => {
    expect(parseConfig(base(), "c.yaml").apps[0]!.applyConcurrency).toBe(8);
  });

  it("orders stable < beta < alpha and reads stages from the schema", () => {
    expect(stageAllowed("stable", "stable")).toBe(true);
    expect(stageAllowed("beta", "stable")).toBe(false);
    expect(stageAllowed("beta", "beta")).toBe(true);
    expect(stageAllowed("alpha", "beta")).toBe(false);
    expect(stageAllowed("beta", "alpha")).toBe(true);
    const schema: SchemaNode = {
      type: "object",
      properties: {
        b: { type: "string", "x-plumber-stage": "beta" },
        list: { type: "array", items: { $ref: "#/$defs/item" } },
      },
      $defs: { item: { type: "object", properties: { x: { "x-plumber-stage": "alpha", type: "object", properties: { y: {} } } } } },
    };
    const data = { b: "1", list: [{}, { x: { y: 1 } }] };
    const paths = (gate: "stable" | "beta" | "alpha"): unknown[] => findGatedFields(schema, data, gate).map((f) => [f.path, f.stage]);
    expect(paths("stable")).toEqual([
      [["b"], "beta"],
      [["list", 1, "x"], "alpha"],
    ]);
    expect(paths("beta")).toEqual([[["list", 1, "x"], "alpha"]]);
    expect(paths("alpha")).toEqual([]);
    expect(findGatedFields(schema, data, "stable")[0]!.message).toBe("field is beta; set featureGates.apiFields: beta to use it");
  });
});

describe("readSecretFile", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "plumber-secrets-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads and trims a secret", async () => {
    await writeFile(path.join(dir, "token"), "\uFEFF  s3cr3t-token\n\n");
    expect(await readSecretFile(path.join(dir, "token"), "repos[infra].auth.tokenFile")).toBe("s3cr3t-token");
  });

  it("names the file and its use in errors, never the content", async () => {
    const file = path.join(dir, "two-lines");
    await writeFile(file, "hunter2\nhunter3\n");
    const err = (await readSecretFile(file, "password for repo infra").catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(`password for repo infra: file ${JSON.stringify(file)}: contains line breaks or other control characters inside the value`);
    expect(err.message).not.toContain("hunter");

    const missing = path.join(dir, "missing");
    await expect(readSecretFile(missing, "token")).rejects.toThrow(`token: file ${JSON.stringify(missing)}: no such file`);
    await expect(readSecretFile(dir, "token")).rejects.toThrow(`token: file ${JSON.stringify(dir)}: is a directory`);

    await writeFile(path.join(dir, "empty"), " \n");
    await expect(readSecretFile(path.join(dir, "empty"), "token")).rejects.toThrow("is empty");
  });

  it("refuses files over 64 KiB", async () => {
    await writeFile(path.join(dir, "exact"), "a".repeat(MAX_SECRET_BYTES));
    expect(await readSecretFile(path.join(dir, "exact"), "token")).toHaveLength(MAX_SECRET_BYTES);
    await writeFile(path.join(dir, "big"), "b".repeat(MAX_SECRET_BYTES + 1));
    const err = (await readSecretFile(path.join(dir, "big"), "token").catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(`token: file ${JSON.stringify(path.join(dir, "big"))}: larger than 64 KiB`);
    expect(err.message).not.toContain("bbbb");
  });
});
