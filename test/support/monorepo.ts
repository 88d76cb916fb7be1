// A generated repository with the real shape of tektoncd/plumbing, for tests and benchmarks that
// must see what a real plumbing monorepo holds, not a toy fixture: a Go module with vendor/,
// bots whose kodata/LICENSE is a symlink, compiled Python, SQLite files and images, a >1 MiB
// SVG, and 30+ kustomizations — shared bases under tekton/resources, a component, per-cluster
// overlays under tekton/cd/<cluster>/<service>, CronJob overlays — with Tekton Tasks and
// Pipelines whose params have `default: .`, configMapGenerator files (one binary), patches of
// every kind and a replacement.
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { git, type TestRepo } from "../bed/testrepo.js";

export type MonorepoFile = string | Buffer | { symlink: string };

export interface MonorepoOptions {
  /** Go files under vendor/ and pkg/ (the bulk of the repo). Default 300. */
  goFiles?: number;
  /** Prefix of every namespace and cluster-scoped name the overlays set, so runs do not collide. Default "". */
  prefix?: string;
  /** Clusters with overlays under tekton/cd/. Default five of plumbing's. */
  clusters?: string[];
}

export interface Monorepo {
  files: Record<string, MonorepoFile>;
  /** Every directory holding a kustomization file. */
  kustomizations: string[];
  /** Kustomizations meant to be built on their own (overlays and cluster roots; not components). */
  buildable: string[];
  /** The namespace each tekton/cd/<cluster>/<service> overlay deploys into. */
  namespaceOf(service: string): string;
  clusters: string[];
  services: string[];
}

const SERVICES = ["ci", "cd", "nightly", "images"] as const;
const DEFAULT_CLUSTERS = ["dogfooding", "prow", "robocat", "oci-ci-cd", "sandbox"];

/** Deterministic pseudo-random bytes (the same repo every run, so oracle and plumber agree on a commit's content). */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function goFile(pkg: string, i: number): string {
  return `// Code generated for the plumber test monorepo. DO NOT EDIT.\n\npackage ${pkg}\n\nimport "fmt"\n\n// F${i} formats its argument.\nfunc F${i}(x int) string {\n\treturn fmt.Sprintf("%d-${i}", x)\n}\n`;
}

function task(name: string, image: string): string {
  return stringify({
    apiVersion: "tekton.dev/v1",
    kind: "Task",
    metadata: { name, annotations: { "tekton.dev/displayName": name } },
    spec: {
      params: [
        { name: "path", type: "string", default: ".", description: "path in the source to work on" },
        { name: "context", type: "string", default: "./" },
        { name: "verbose", type: "string", default: "true" },
      ],
      workspaces: [{ name: "source" }],
      steps: [
        { name: "run", image, workingDir: "$(workspaces.source.path)/$(params.path)", script: `#!/bin/sh\nset -e\necho ${name} in $(params.context)\n`, env: [{ name: "VERBOSE", value: "$(params.verbose)" }] },
      ],
    },
  });
}

function pipeline(name: string, tasks: string[]): string {
  return stringify({
    apiVersion: "tekton.dev/v1",
    kind: "Pipeline",
    metadata: { name },
    spec: {
      params: [{ name: "path", type: "string", default: "." }, { name: "revision", type: "string", default: "main" }],
      workspaces: [{ name: "source" }],
      tasks: tasks.map((t, i) => ({
        name: `${t}-${i}`,
        taskRef: { name: t },
        params: [{ name: "path", value: "$(params.path)" }],
        workspaces: [{ name: "source", workspace: "source" }],
        ...(i > 0 ? { runAfter: [`${tasks[i - 1]}-${i - 1}`] } : {}),
      })),
    },
  });
}

/** The files of the monorepo (content is deterministic for given options). */
export function monorepoFiles(opts: MonorepoOptions = {}): Monorepo {
  const prefix = opts.prefix ?? "";
  const clusters = opts.clusters ?? DEFAULT_CLUSTERS;
  const goFiles = opts.goFiles ?? 300;
  const files: Record<string, MonorepoFile> = {};
  const kustomizations: string[] = [];
  const buildable: string[] = [];
  const k = (dir: string, body: Record<string, unknown>, build = false): void => {
    files[`${dir}/kustomization.yaml`] = stringify(body);
    kustomizations.push(dir);
    if (build) buildable.push(dir);
  };
  const namespaceOf = (service: string): string => `${prefix}tekton-${service}`;

  // --- the Go monorepo around the config ---
  files["LICENSE"] = "\n                                 Apache License\n                           Version 2.0, January 2004\n";
  files["README.md"] = "# plumbing\n\nThis repository holds Tekton's own infrastructure.\n";
  files["go.mod"] = "module github.com/tektoncd/plumbing\n\ngo 1.22\n\nrequire github.com/google/go-github/v59 v59.0.0\n";
  files["go.sum"] = "github.com/google/go-github/v59 v59.0.0 h1:abc=\n";
  files["Makefile"] = "all:\n\tgo build ./...\n";
  files[".gitattributes"] = "*.db binary\n";
  const vendorLibs = ["github.com/google/go-github/v59/github", "golang.org/x/oauth2", "k8s.io/apimachinery/pkg/util/sets", "gopkg.in/yaml.v3"];
  for (let i = 0; i < goFiles; i++) {
    if (i % 3 === 2) files[`pkg/p${i % 40}/f${i}.go`] = goFile(`p${i % 40}`, i);
    else {
      const lib = vendorLibs[i % vendorLibs.length] as string;
      files[`vendor/${lib}/gen_${i}.go`] = goFile(lib.split("/").pop()?.replace(/\W/g, "") || "lib", i);
    }
  }
  files["vendor/modules.txt"] = vendorLibs.map((l) => `# ${l} v0.0.0\n## explicit\n${l}`).join("\n") + "\n";
  files["vendor/gopkg.in/yaml.v3/testdata/fixture.db"] = Buffer.concat([Buffer.from("SQLite format 3\0"), bytes(8192, 7)]);
  for (const bot of ["mariobot", "catbot", "labelbot"]) {
    files[`bots/${bot}/main.go`] = goFile("main", bot.length);
    files[`bots/${bot}/kodata/LICENSE`] = { symlink: "../../../LICENSE" };
    files[`bots/${bot}/kodata/HEAD`] = { symlink: "../../../.git/HEAD" };
    files[`bots/${bot}/config/config.yaml`] = stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `${bot}-config` }, data: { bot } });
  }
  files["hack/release.py"] = "print('release')\n";
  files["hack/__pycache__/release.cpython-311.pyc"] = Buffer.concat([Buffer.from([0xa7, 0x0d, 0x0d, 0x0a]), bytes(2048, 11)]);
  files["docs/images/dogfooding.png"] = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), bytes(40_000, 13)]);
  const path = "M0 0 L10 10 ".repeat(110_000);
  files["docs/architecture.svg"] = `<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><path d="${path}"/></svg>\n`; // ≈1.3 MB

  // --- shared bases ---
  const common = "tekton/resources/common";
  files[`${common}/config/defaults.properties`] = "timeout=1h\nretries=2\n";
  files[`${common}/assets/tekton.png`] = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), bytes(1024, 17)]);
  files[`${common}/serviceaccount.yaml`] = stringify({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "tekton-bot" } });
  k(common, {
    resources: ["serviceaccount.yaml"],
    configMapGenerator: [{ name: "plumbing-defaults", files: ["config/defaults.properties", "logo=assets/tekton.png"] }],
    labels: [{ pairs: { "app.kubernetes.io/part-of": "plumbing" } }],
  });
  for (const svc of SERVICES) {
    const dir = `tekton/resources/${svc}`;
    const names = [`${svc}-lint`, `${svc}-build`, `${svc}-test`, `${svc}-publish`];
    names.forEach((n, i) => (files[`${dir}/tasks/${n}.yaml`] = task(n, `ghcr.io/tektoncd/plumbing/${svc}-${i}:v0.${i}`)));
    files[`${dir}/pipelines/${svc}-pipeline.yaml`] = pipeline(`${svc}-pipeline`, names);
    files[`${dir}/config/${svc}.env`] = `SERVICE=${svc}\nLOG_LEVEL=info\n`;
    files[`${dir}/README.md`] = `# ${svc}\n`;
    k(dir, {
      resources: ["../common", ...names.map((n) => `tasks/${n}.yaml`), `pipelines/${svc}-pipeline.yaml`],
      configMapGenerator: [{ name: `${svc}-settings`, envs: [`config/${svc}.env`] }],
      commonAnnotations: { "plumbing.tekton.dev/service": svc },
    });
  }
  files["tekton/resources/org-permissions/clusterrole.yaml"] = stringify({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: `${prefix}tekton-plumbing-viewer` },
    rules: [{ apiGroups: ["tekton.dev"], resources: ["pipelineruns", "taskruns"], verbs: ["get", "list", "watch"] }],
  });
  k("tekton/resources/org-permissions", { resources: ["clusterrole.yaml"] });

  // --- a component every cluster uses ---
  files["tekton/components/cluster-label/patch.yaml"] = stringify([{ op: "add", path: "/metadata/annotations/plumbing.tekton.dev~1managed", value: "true" }]);
  k("tekton/components/cluster-label", {
    apiVersion: "kustomize.config.k8s.io/v1alpha1",
    kind: "Component",
    patches: [{ path: "patch.yaml", target: { kind: "Pipeline" } }],
  });

  // --- per-cluster overlays ---
  for (const cluster of clusters) {
    for (const svc of SERVICES) {
      const dir = `tekton/cd/${cluster}/${svc}`;
      files[`${dir}/cluster.properties`] = `cluster=${cluster}\nservice=${svc}\n`;
      files[`${dir}/patch-build.yaml`] = stringify({
        apiVersion: "tekton.dev/v1",
        kind: "Task",
        metadata: { name: `${svc}-build` },
        spec: { steps: [{ name: "run", image: `ghcr.io/tektoncd/plumbing/${svc}-1:${cluster}` }] },
      });
      files[`${dir}/replacements.yaml`] = stringify([
        {
          source: { kind: "ConfigMap", name: "cluster-config", fieldPath: "metadata.name" },
          targets: [{ select: { kind: "Pipeline" }, fieldPaths: ["metadata.annotations.cluster-config"], options: { create: true } }],
        },
      ]);
      k(
        dir,
        {
          namespace: namespaceOf(svc),
          resources: [`../../../resources/${svc}`],
          components: ["../../../components/cluster-label"],
          patches: [
            { path: "patch-build.yaml" },
            { target: { kind: "Task", name: `${svc}-lint` }, patch: stringify([{ op: "replace", path: "/spec/params/2/default", value: "false" }]) },
          ],
          patchesStrategicMerge: [stringify({ apiVersion: "tekton.dev/v1", kind: "Task", metadata: { name: `${svc}-test` }, spec: { params: [{ name: "context", default: `./${cluster}` }] } })],
          configMapGenerator: [{ name: "cluster-config", files: ["cluster.properties"] }],
          replacements: [{ path: "replacements.yaml" }],
          commonLabels: { "plumbing.tekton.dev/cluster": cluster },
        },
        true,
      );
    }
    k(`tekton/cd/${cluster}`, { resources: [...SERVICES, "../../resources/org-permissions"] }, true);
  }

  // --- CronJobs that trigger the pipelines ---
  files["tekton/cronjobs/base/cronjob.yaml"] = stringify({
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: { name: "trigger" },
    spec: {
      schedule: "0 2 * * *",
      jobTemplate: { spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "trigger", image: "curlimages/curl:8.8.0", args: ["-d", "@/etc/payload/payload.json", "$(SINK_URL)"], env: [{ name: "SINK_URL", value: "http://el-listener:8080" }] }] } } } },
    },
  });
  k("tekton/cronjobs/base", { resources: ["cronjob.yaml"] });
  for (const cluster of clusters) {
    const dir = `tekton/cronjobs/${cluster}/nightly-release`;
    files[`${dir}/payload.json`] = JSON.stringify({ cluster, pipeline: "nightly-pipeline" });
    files[`${dir}/patch.yaml`] = stringify({ apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "trigger" }, spec: { schedule: `${clusters.indexOf(cluster)} 3 * * *` } });
    k(
      dir,
      {
        namespace: namespaceOf("nightly"),
        nameSuffix: "-nightly-release",
        resources: ["../../base"],
        patchesStrategicMerge: ["patch.yaml"],
        configMapGenerator: [{ name: "payload", files: ["payload.json"] }],
      },
      true,
    );
  }
  return { files, kustomizations, buildable, namespaceOf, clusters, services: [...SERVICES] };
}

/**
 * Commits `files` as the first commit of `branch` (a root commit: the branch must not exist yet),
 * binary files and symlinks included; returns its sha. Later commits: TestRepo.commit.
 */
export async function commitFiles(repo: TestRepo, files: Record<string, MonorepoFile>, message = "monorepo", branch = repo.defaultBranch): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), "plumber-monorepo-"));
  try {
    await git(["init", "--quiet", `--initial-branch=${branch}`, work]);
    const dirs = new Set(Object.keys(files).map((p) => dirname(join(work, p))));
    for (const d of dirs) await mkdir(d, { recursive: true });
    for (const [p, spec] of Object.entries(files)) {
      const abs = join(work, p);
      if (typeof spec === "object" && !Buffer.isBuffer(spec)) await symlink(spec.symlink, abs);
      else await writeFile(abs, spec);
    }
    // gc.auto=0: a detached auto-gc over 20k loose objects would race the cleanup below
    await git(["-c", "gc.auto=0", "add", "--all"], work);
    await git(["-c", "gc.auto=0", "commit", "--quiet", "--no-verify", "-m", message], work);
    const sha = await git(["rev-parse", "HEAD"], work);
    await git(["-c", "gc.auto=0", "push", "--quiet", repo.bareDir, `HEAD:refs/heads/${branch}`], work);
    return sha;
  } finally {
    await rm(work, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** The monorepo committed to `repo` (one commit). */
export async function createMonorepo(repo: TestRepo, opts: MonorepoOptions = {}): Promise<Monorepo & { sha: string }> {
  const m = monorepoFiles(opts);
  const sha = await commitFiles(repo, m.files);
  return { ...m, sha };
}
