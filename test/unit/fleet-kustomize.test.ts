// The kustomization closure and the remote-reference check, against an in-memory tree.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { GitSourceError, type TreeEntryInfo } from "../../src/git/repo.js";
import { computeClosure, isInlineYaml, type TreeSource } from "../../src/kustomize/closure.js";
import { detectIsolation, offlineEnv, proxyStats } from "../../src/kustomize/offline.js";
import { isRemoteEntry, isRemoteFileSource } from "../../src/kustomize/remote.js";
import { FileProblemError, type FileProblem } from "../../src/types.js";

type Spec = string | Buffer | { symlink: string } | { submodule: true };

/** A commit's tree from paths; records every path read or listed. */
class FakeTree implements TreeSource {
  readonly reads: string[] = [];
  readonly listed: string[] = [];
  constructor(private readonly files: Record<string, Spec>) {}
  private typeOf(path: string): TreeEntryInfo["type"] | undefined {
    const s = this.files[path];
    if (s !== undefined) return typeof s === "string" || Buffer.isBuffer(s) ? "blob" : "symlink" in s ? "symlink" : "submodule";
    return Object.keys(this.files).some((p) => p.startsWith(`${path}/`)) ? "tree" : undefined;
  }
  async listDir(_sha: string, dir: string): Promise<TreeEntryInfo[]> {
    this.listed.push(dir);
    if (dir !== "" && this.typeOf(dir) !== "tree") throw new GitSourceError(`path ${dir} does not exist`, "missing-path", false);
    const names = new Set<string>();
    for (const p of Object.keys(this.files)) {
      if (dir !== "" && !p.startsWith(`${dir}/`)) continue;
      names.add((dir === "" ? p : p.slice(dir.length + 1)).split("/")[0] as string);
    }
    return [...names].sort().map((name) => {
      const path = dir === "" ? name : `${dir}/${name}`;
      return { name, path, type: this.typeOf(path) as TreeEntryInfo["type"] };
    });
  }
  async readFileBytes(_sha: string, path: string, maxBytes: number): Promise<Buffer> {
    this.reads.push(path);
    const s = this.files[path];
    if (s === undefined) throw new GitSourceError(`path ${path} does not exist`, "missing-path", false);
    if (typeof s !== "string" && !Buffer.isBuffer(s)) throw new GitSourceError(`${path} is a symlink`, "unsupported-entry", false);
    const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
    if (b.byteLength > maxBytes) throw new GitSourceError(`${path} is too big`, "limit", false);
    return b;
  }
}

const SHA = "0".repeat(40);
const cm = (name: string) => stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name } });

async function problems(files: Record<string, Spec>, dir: string, opts?: Parameters<typeof computeClosure>[3]): Promise<FileProblem[]> {
  try {
    await computeClosure(new FakeTree(files), SHA, dir, opts);
  } catch (e) {
    if (e instanceof FileProblemError) return e.problems;
    throw e;
  }
  throw new Error("expected problems");
}

/** A monorepo's noise: none of it may be read. */
const NOISE: Record<string, Spec> = {
  "LICENSE": "Apache-2.0",
  "bots/mario/kodata/LICENSE": { symlink: "../../../LICENSE" },
  "bots/mario/main.go": "package main\n",
  "docs/arch.svg": Buffer.alloc(1_300_000, 0x3c),
  "hack/tool.pyc": Buffer.from([0x42, 0x0d, 0x0d, 0x0a, 0xff, 0xfe, 0x00]),
  "vendor/github.com/x/y/data.db": Buffer.from([0xff, 0x00, 0xd8]),
  "third_party/sub": { submodule: true },
};

describe("remote references", () => {
  it("recognizes every form kustomize fetches and leaves local paths alone", () => {
    for (const e of [
      "https://example.com/x.yaml", "http://x/y", "git@github.com:org/repo.git", "github.com/org/repo//dir?ref=v1",
      "ssh://git@h/r", "../base?ref=main", "file:///etc/passwd", "oci://registry/x", "git::https://h/r", "gh:org/repo",
      "dev.azure.com/org/_git/repo", "host/org/repo?version=v1", " https://padded",
    ]) expect(isRemoteEntry(e), e).toBe(true);
    for (const e of ["../base", "deploy.yaml", "sub/dir", "./a.yaml", "a:b.yaml", "config.d/x", "my_git/x"]) expect(isRemoteEntry(e), e).toBe(false);
    expect(isRemoteFileSource("creds=http://169.254.169.254/latest")).toBe(true);
    expect(isRemoteFileSource("key=local.txt")).toBe(false);
  });

  it("tells inline YAML from a path the way kustomize tries them", () => {
    expect(isInlineYaml("patch.yaml")).toBe(false);
    expect(isInlineYaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")).toBe(true);
  });
});

describe("kustomization closure", () => {
  it("holds exactly what the build reads: bases, components, patches, generator sources, replacements, openapi, crds, configurations, plugin configs", async () => {
    const tree = new FakeTree({
      ...NOISE,
      "tekton/resources/kustomization.yaml": stringify({ resources: ["task.yaml"], configMapGenerator: [{ name: "cfg", files: ["conf/a.txt", "b=conf/b.bin"], envs: ["vars.env"] }] }),
      "tekton/resources/task.yaml": cm("task"),
      "tekton/resources/conf/a.txt": "a",
      "tekton/resources/conf/b.bin": Buffer.from([0xff, 0xfe, 0x00]),
      "tekton/resources/vars.env": "A=1\n",
      "tekton/resources/unused.yaml": cm("unused"),
      "tekton/components/label/kustomization.yaml": stringify({ apiVersion: "kustomize.config.k8s.io/v1alpha1", kind: "Component", patches: [{ path: "p.yaml" }] }),
      "tekton/components/label/p.yaml": cm("task"),
      "tekton/cd/dogfooding/kustomization.yaml": stringify({
        resources: ["../../resources", "extra.yaml"],
        components: ["../../components/label"],
        patchesStrategicMerge: ["smp.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: task\n"],
        patchesJson6902: [{ target: { kind: "ConfigMap", name: "task" }, path: "json.yaml" }],
        replacements: [{ path: "repl.yaml" }],
        openapi: { path: "schema.json" },
        crds: ["crd.yaml"],
        configurations: ["cfg.yaml"],
        transformers: ["tr.yaml", "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: t}\npath: inline-patch.yaml\n"],
      }),
      "tekton/cd/dogfooding/extra.yaml": cm("extra"),
      "tekton/cd/dogfooding/smp.yaml": cm("task"),
      "tekton/cd/dogfooding/json.yaml": "- op: add\n  path: /data\n  value: {}\n",
      "tekton/cd/dogfooding/repl.yaml": "- source: {kind: ConfigMap, name: extra}\n  targets: []\n",
      "tekton/cd/dogfooding/schema.json": "{}",
      "tekton/cd/dogfooding/crd.yaml": "kind: CustomResourceDefinition\n",
      "tekton/cd/dogfooding/cfg.yaml": "namePrefix: []\n",
      "tekton/cd/dogfooding/tr.yaml": stringify({ apiVersion: "builtin", kind: "PatchStrategicMergeTransformer", metadata: { name: "s" }, paths: ["tr-patch.yaml"] }),
      "tekton/cd/dogfooding/tr-patch.yaml": cm("task"),
      "tekton/cd/dogfooding/inline-patch.yaml": cm("task"),
      "tekton/cd/dogfooding/README.md": "not read",
    });
    const c = await computeClosure(tree, SHA, "tekton/cd/dogfooding");
    expect([...c.files.keys()].sort()).toEqual(
      [
        "tekton/cd/dogfooding/kustomization.yaml", "tekton/cd/dogfooding/extra.yaml", "tekton/cd/dogfooding/smp.yaml",
        "tekton/cd/dogfooding/json.yaml", "tekton/cd/dogfooding/repl.yaml", "tekton/cd/dogfooding/schema.json",
        "tekton/cd/dogfooding/crd.yaml", "tekton/cd/dogfooding/cfg.yaml", "tekton/cd/dogfooding/tr.yaml",
        "tekton/cd/dogfooding/tr-patch.yaml", "tekton/cd/dogfooding/inline-patch.yaml",
        "tekton/resources/kustomization.yaml", "tekton/resources/task.yaml", "tekton/resources/conf/a.txt",
        "tekton/resources/conf/b.bin", "tekton/resources/vars.env",
        "tekton/components/label/kustomization.yaml", "tekton/components/label/p.yaml",
      ].sort(),
    );
    expect(c.files.get("tekton/resources/conf/b.bin")).toEqual(Buffer.from([0xff, 0xfe, 0x00]));
    expect(c.kustomizations).toEqual(["tekton/cd/dogfooding/kustomization.yaml", "tekton/resources/kustomization.yaml", "tekton/components/label/kustomization.yaml"]);
    // the repo's symlinks, binaries, big files and other directories were never looked at
    // (the root is listed, one level, only to know that "tekton" is a directory and not a symlink)
    expect(tree.reads.filter((p) => !p.startsWith("tekton/"))).toEqual([]);
    expect(tree.listed.filter((p) => p !== "" && p !== "tekton" && !p.startsWith("tekton/"))).toEqual([]);
  });

  it("refuses a symlink, an over-size file and a submodule inside the closure with the line of the entry", async () => {
    const files = {
      ...NOISE,
      "app/kustomization.yaml": "resources:\n  - cm.yaml\n  - kodata/LICENSE\nconfigMapGenerator:\n  - name: big\n    files:\n      - big.svg\n  - name: sub\n    files: [mod/x]\n",
      "app/cm.yaml": cm("a"),
      "app/kodata/LICENSE": { symlink: "../../LICENSE" },
      "app/big.svg": Buffer.alloc(1_200_000, 0x20),
      "app/mod": { submodule: true },
    } as Record<string, Spec>;
    const ps = await problems(files, "app");
    expect(ps).toEqual([
      { file: "app/kustomization.yaml", line: 3, field: "resources[1]", message: expect.stringMatching(/"kodata\/LICENSE" is a symlink; plumber refuses symlinks/) },
      { file: "app/kustomization.yaml", line: 7, field: "configMapGenerator[0].files[0]", message: expect.stringMatching(/"app\/big.svg" is over the limit of 1048576 bytes/) },
      { file: "app/kustomization.yaml", line: 9, field: "configMapGenerator[1].files[0]", message: expect.stringMatching(/"mod\/x": "app\/mod" is a submodule, not a directory/) },
    ]);
  });

  it("refuses a symlinked directory on the way to a base", async () => {
    const ps = await problems({ "real/kustomization.yaml": "resources: []\n", "link": { symlink: "real" }, "app/kustomization.yaml": "resources:\n  - ../link\n" }, "app");
    expect(ps).toEqual([{ file: "app/kustomization.yaml", line: 2, field: "resources[0]", message: expect.stringContaining('"../link" is a symlink') }]);
  });

  it("applies kustomize's load restrictor: files under the root only, bases anywhere in the repo, nothing outside it", async () => {
    const ps = await problems(
      {
        "common/cm.yaml": cm("c"),
        "common/base/kustomization.yaml": "resources: [cm.yaml]\n",
        "common/base/cm.yaml": cm("b"),
        "app/kustomization.yaml": [
          "resources:", "  - ../common/base", "  - ../common/cm.yaml", "  - ../../outside", "  - /etc/passwd",
          "patches:", "  - path: ../common/cm.yaml",
        ].join("\n") + "\n",
      },
      "app",
    );
    expect(ps.map((p) => [p.line, p.field, p.message.slice(0, 60)])).toEqual([
      [3, "resources[1]", '"../common/cm.yaml" is a file outside the kustomization\'s di'],
      [4, "resources[2]", '"../../outside" is outside the repository'],
      [5, "resources[3]", '"/etc/passwd" is an absolute path; paths in a kustomization '],
      [7, "patches[0].path", '"../common/cm.yaml" is outside the kustomization\'s directory'],
    ]);
  });

  it("refuses a directory without a kustomization file (kustomize v5 does), two kustomization files, a cycle and a missing file", async () => {
    const ps = await problems(
      {
        "plain/cm.yaml": cm("p"),
        "two/kustomization.yaml": "resources: []\n",
        "two/kustomization.yml": "resources: []\n",
        "app/kustomization.yaml": "resources:\n  - ../plain\n  - ../two\n  - sub\n  - missing.yaml\n",
        "app/sub/kustomization.yaml": "resources:\n  - ..\n",
      },
      "app",
    );
    expect(ps.map((p) => `${p.file}:${p.line}: ${p.field}: ${p.message}`)).toEqual([
      expect.stringMatching(/^app\/kustomization.yaml:2: resources\[0\]: directory "plain" has no kustomization file/),
      expect.stringMatching(/^app\/kustomization.yaml:3: resources\[1\]: directory "two" holds more than one kustomization file/),
      expect.stringMatching(/^app\/sub\/kustomization.yaml:2: resources\[0\]: ".." \("app"\) is at or above "app".*cycle/),
      expect.stringMatching(/^app\/kustomization.yaml:5: resources\[3\]: "missing.yaml" does not exist in the commit/),
    ]);
  });

  it("refuses a remote reference in every field that takes a path, with file:line", async () => {
    const k = [
      /* 1 */ "resources:",
      /* 2 */ "  - https://example.com/r.yaml",
      /* 3 */ "bases: [github.com/org/repo//base?ref=v1]",
      /* 4 */ "components: [git@github.com:org/repo.git]",
      /* 5 */ "crds: [http://127.0.0.1:9/crd.yaml]",
      /* 6 */ "configurations: [https://h/c.yaml]",
      /* 7 */ "openapi: {path: 'https://h/schema.json'}",
      /* 8 */ "patchesStrategicMerge: [https://h/smp.yaml]",
      /* 9 */ "patches: [{path: 'http://h/p.yaml'}]",
      /* 10 */ "patchesJson6902: [{path: 'https://h/j.yaml', target: {kind: X}}]",
      /* 11 */ "replacements: [{path: 'https://h/r.yaml'}]",
      /* 12 */ "configMapGenerator:",
      /* 13 */ "  - name: c",
      /* 14 */ "    files: ['creds=http://169.254.169.254/latest/meta-data', 'https://h/f']",
      /* 15 */ "    envs: [https://h/e.env]",
      /* 16 */ "secretGenerator:",
      /* 17 */ "  - {name: s, env: 'https://h/s.env'}",
      /* 18 */ "helmCharts:",
      /* 19 */ "  - {name: x, repo: 'https://charts.example.com', valuesFile: 'https://h/values.yaml'}",
      /* 20 */ "generators: [oci://registry/gen]",
      /* 21 */ "transformers:",
      /* 22 */ "  - |",
      /* 23 */ "    apiVersion: builtin",
      /* 24 */ "    kind: PatchTransformer",
      /* 25 */ "    metadata: {name: t}",
      /* 26 */ "    path: https://h/t.yaml",
      /* 27 */ "validators: [file:///etc/v.yaml]",
    ].join("\n");
    const ps = await problems({ "app/kustomization.yaml": k + "\n" }, "app");
    const got = ps.map((p) => `${p.line} ${p.field}`);
    expect(got).toEqual([
      "2 resources[0]", "3 bases[0]", "4 components[0]", "5 crds[0]", "6 configurations[0]", "7 openapi.path",
      "8 patchesStrategicMerge[0]", "9 patches[0].path", "10 patchesJson6902[0].path", "11 replacements[0].path",
      "14 configMapGenerator[0].files[0]", "14 configMapGenerator[0].files[1]", "15 configMapGenerator[0].envs[0]",
      "17 secretGenerator[0].env", "19 helmCharts[0].repo", "19 helmCharts[0].valuesFile", "18 helmCharts",
      "20 generators[0]", "22 transformers[0] (inline).path", "27 validators[0]",
    ]);
    for (const p of ps.filter((x) => x.field !== "helmCharts")) expect(p.message).toMatch(/^remote (base|file|reference) ".*" is refused/);
    expect(ps.find((x) => x.field === "helmCharts")?.message).toMatch(/without helm/);
  });

  it("finds remote references in a transformer config file and in a base, naming their own file:line", async () => {
    const ps = await problems(
      {
        "base/kustomization.yaml": "resources:\n  - cm.yaml\n  - https://evil.example/x.yaml\n",
        "base/cm.yaml": cm("b"),
        "app/kustomization.yaml": "resources: [../base]\ntransformers: [t.yaml]\n",
        "app/t.yaml": "apiVersion: builtin\nkind: ReplacementTransformer\nmetadata: {name: r}\nreplacements:\n  - path: https://h/r.yaml\n",
      },
      "app",
    );
    expect(ps.map((p) => `${p.file}:${p.line}: ${p.field}`)).toEqual(["base/kustomization.yaml:3: resources[1]", "app/t.yaml:5: replacements[0].path"]);
  });

  it("reads the plugin configs a generators directory produces, with their paths relative to the kustomization listing it", async () => {
    const files: Record<string, Spec> = {
      "app/kustomization.yaml": "generators:\n  - gens\n",
      "app/gens/kustomization.yaml": "resources: [gen.yaml]\n",
      "app/gens/gen.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: g}\nfiles:\n  - data.txt\n",
      "app/data.txt": "from the outer root",
    };
    const c = await computeClosure(new FakeTree(files), SHA, "app");
    expect([...c.files.keys()].sort()).toEqual(["app/data.txt", "app/gens/gen.yaml", "app/gens/kustomization.yaml", "app/kustomization.yaml"]);
    files["app/gens/gen.yaml"] = "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: g}\nfiles:\n  - creds=http://127.0.0.1:1/latest\n";
    expect((await problems(files, "app")).map((p) => `${p.file}:${p.line}: ${p.field}`)).toEqual(["app/gens/gen.yaml:5: files[0]"]);
  });

  it("sees entries through YAML aliases and << merges, as kustomize's YAML reader does", async () => {
    const ps = await problems({ "app/kustomization.yaml": "x: &r\n  - https://h/a.yaml\nresources: *r\npatches:\n  - <<: {path: 'https://h/p.yaml'}\n" }, "app");
    expect(ps.map((p) => `${p.line} ${p.field}`)).toEqual(["3 resources[0]", "5 patches[0].path"]);
  });

  it("leaves remote bases to kustomize when allowRemoteBases is set, but never remote files", async () => {
    const ps = await problems({ "app/kustomization.yaml": "resources: [https://h/base]\npatches: [{path: 'https://h/p.yaml'}]\n" }, "app", { allowRemoteBases: true });
    expect(ps.map((p) => p.field)).toEqual(["patches[0].path"]);
  });

  it("names the kustomization file itself when it cannot be read: a symlink, bad YAML", async () => {
    expect(await problems({ "real.yaml": "resources: []\n", "app/kustomization.yaml": { symlink: "../real.yaml" } }, "app")).toEqual([
      { file: "app/kustomization.yaml", line: 1, field: "", message: expect.stringContaining("is a symlink") },
    ]);
    expect(await problems({ "app/kustomization.yaml": "resources:\n  - a.yaml\n - b.yaml\n" }, "app")).toEqual([
      { file: "app/kustomization.yaml", line: 3, field: "", message: expect.stringMatching(/^cannot parse YAML/) },
    ]);
  });

  it("bounds the files and bytes of a closure", async () => {
    const files: Record<string, Spec> = { "app/kustomization.yaml": stringify({ resources: ["a.yaml", "b.yaml", "c.yaml"] }) };
    for (const n of ["a", "b", "c"]) files[`app/${n}.yaml`] = cm(n);
    const ps = await problems(files, "app", { limits: { maxFileBytes: 1 << 20, maxTotalBytes: 1 << 20, maxFiles: 3 } });
    expect(ps).toEqual([expect.objectContaining({ field: "resources[2]", message: expect.stringContaining("more than 3 files") })]);
  });
});

describe("kustomize's environment", () => {
  it("holds nothing of plumber's, an empty PATH and a proxy that drops every connection", async () => {
    const home = await mkdtemp(join(tmpdir(), "plumber-offline-env-"));
    process.env.PLUMBER_TEST_SECRET_TOKEN = "s3cret";
    try {
      const env = await offlineEnv(home, { mode: "netns", prefix: [], description: "" });
      expect(Object.values(env)).not.toContain("s3cret");
      expect(env.PATH).toBe(join(home, "bin"));
      expect(await readdir(env.PATH as string)).toEqual([]);
      expect(env.TMPDIR).toBe(join(home, "tmp"));
      expect(await readdir(env.TMPDIR as string)).toEqual([]);
      expect(env.NO_PROXY).toBe("");
      expect(env.no_proxy).toBe("");
      for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"]) expect(env[k], k).toBe(env.HTTP_PROXY);
      const url = new URL(env.HTTP_PROXY as string);
      expect(url.hostname).toBe("127.0.0.1");
      const refused0 = proxyStats.refused;
      const got = await new Promise<string>((resolve) => {
        let data = "";
        const sock = connect(Number(url.port), "127.0.0.1", () => sock.write("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"));
        sock.on("data", (b) => (data += b.toString()));
        sock.on("error", () => resolve(data));
        sock.on("close", () => resolve(data));
      });
      expect(got).toBe("");
      expect(proxyStats.refused).toBe(refused0 + 1);
    } finally {
      delete process.env.PLUMBER_TEST_SECRET_TOKEN;
      await rm(home, { recursive: true, force: true });
    }
  });

  it("says why there is no network namespace when the binary is missing, and that the network is allowed by config", async () => {
    const none = await detectIsolation("/nonexistent/kustomize");
    expect(none.mode).toBe("proxy-only");
    expect(none.description).toContain('kustomize binary "/nonexistent/kustomize" not found');
    expect((await detectIsolation("/nonexistent/kustomize", true)).mode).toBe("network-allowed");
  });
});
