// The plumber.yaml of `plumber demo`: two clusters (nightly, prod), one plumbing repo, an app per
// cluster — nightly follows main, prod is promoted from nightly after a soak and an approval —
// and the scheduled nightly release. Written out as YAML and loaded by the ordinary config
// loader, so the demo runs exactly what a user's config would.

/** Names the tour refers to; one place, so the steps and the config cannot disagree. */
export const DEMO = {
  repo: "plumbing",
  nightly: { cluster: "nightly", app: "plumbing-nightly", path: "overlays/nightly" },
  prod: { cluster: "prod", app: "plumbing-prod", path: "overlays/prod" },
  namespace: "ci-plumbing",
  check: "smoke",
  /** How long a revision must have been good on nightly before prod takes it. */
  soak: "1h",
  soakMs: 3_600_000,
  release: { name: "nightly-release", schedule: "0 2 * * *", cluster: "nightly" },
} as const;

export interface DemoConfigInput {
  /** Each cluster's kubeconfig and identity (the wrong-cluster guard: a swapped kubeconfig is refused). */
  nightly: { kubeconfig: string; uid: string };
  prod: { kubeconfig: string; uid: string };
  repoUrl: string;
  /** The kustomize of the control plane's bin dir (the overlays are kustomizations). */
  kustomize: string;
}

export function demoConfigYaml(i: DemoConfigInput): string {
  const post = [
    "    checks:",
    "      post:",
    `        - name: ${DEMO.check}`,
    "          timeout: 5m",
    "          pipelineRun: { file: checks/smoke-run.yaml }",
  ];
  return [
    "clusters:",
    `  - name: ${DEMO.nightly.cluster}`,
    `    kubeconfig: ${i.nightly.kubeconfig}`,
    `    expect: { kubeSystemUID: ${i.nightly.uid} }`,
    `  - name: ${DEMO.prod.cluster}`,
    `    kubeconfig: ${i.prod.kubeconfig}`,
    `    expect: { kubeSystemUID: ${i.prod.uid} }`,
    "repos:",
    `  - name: ${DEMO.repo}`,
    `    url: ${i.repoUrl}`,
    "    interval: 1s",
    "    auth:",
    "      tokenFile: token",
    "apps:",
    `  - name: ${DEMO.nightly.app}`,
    `    repo: ${DEMO.repo}`,
    "    branch: main",
    `    path: ${DEMO.nightly.path}`,
    `    cluster: ${DEMO.nightly.cluster}`,
    `    namespace: ${DEMO.namespace}`,
    ...post,
    `  - name: ${DEMO.prod.app}`,
    `    promote: { from: ${DEMO.nightly.app}, soak: ${DEMO.soak} }`,
    "    approval: manual",
    `    path: ${DEMO.prod.path}`,
    `    cluster: ${DEMO.prod.cluster}`,
    `    namespace: ${DEMO.namespace}`,
    ...post,
    "releases:",
    `  - name: ${DEMO.release.name}`,
    `    schedule: "${DEMO.release.schedule}"`,
    "    timezone: UTC",
    `    repo: ${DEMO.repo}`,
    "    branch: main",
    `    cluster: ${DEMO.release.cluster}`,
    `    namespace: ${DEMO.namespace}`,
    "    template: { path: releases/nightly-run.yaml }",
    "    params:",
    "      versionTag: $(plumber.versionTag)",
    "kustomize:",
    `  binary: ${i.kustomize}`,
    "",
  ].join("\n");
}
