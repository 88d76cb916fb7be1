// The normalized, defaulted configuration the rest of plumber uses. Produced by parseConfig/loadConfig
// (src/config/load.ts) from config/plumber.yaml, validated against config/plumber.schema.json.

/** featureGates.apiFields: which configuration fields may be used (stable < beta < alpha). */
export type ApiFieldsGate = "stable" | "beta" | "alpha";

/** A sync window (evaluated by src/windows): open from each time `schedule` fires, for `durationMs`. */
export interface SyncWindow {
  kind: "allow" | "deny";
  /** Cron expression: 5 fields (minute …) or 6 (second minute …), or @daily etc. */
  schedule: string;
  durationMs: number;
  /** IANA time zone the schedule is evaluated in. */
  timezone: string;
  /** Drift is repaired while this window blocks syncing. Default true. */
  allowDriftRepair: boolean;
}

export interface ClusterConfig {
  name: string;
  /** Absolute path (resolved against the config file's directory). Unset: KUBECONFIG env, then in-cluster. */
  kubeconfig?: string;
  context?: string;
  /** Wrong-cluster guard: the identity the cluster must have. */
  expect?: { kubeSystemUID: string };
}

/** Exactly one of tokenFile, or usernameFile + passwordFile. Paths are absolute. */
export interface RepoAuthConfig {
  tokenFile?: string;
  usernameFile?: string;
  passwordFile?: string;
}

export interface RepoConfig {
  name: string;
  /** http(s) URL without credentials. */
  url: string;
  intervalMs: number;
  timeoutMs: number;
  /** Apps of this repo reconciled at once after each listing (schema default 4). */
  concurrency: number;
  auth?: RepoAuthConfig;
  /** Absolute path. */
  caFile?: string;
  /** Signed commits: the commit deployed must be signed by one of the keys (absolute path). */
  verify?: { mode: "head"; keysFile: string };
}

export interface AppConfig {
  name: string;
  /** The repo; for a promoted app, its source's (a promoted revision is a commit of it). */
  repo: string;
  /**
   * The branch to follow; with branchPattern, the pattern itself (the branch followed is picked each
   * cycle); with promote, the branch (or pattern) the chain's first app follows.
   */
  branch: string;
  /** Follow another app instead of a branch (src/promote): its newest revision good there for soakMs. */
  promote?: { from: string; soakMs: number };
  /** Follow the branch matching this glob that branchPolicy picks (src/branches). */
  branchPattern?: string;
  branchPolicy?: "highestSemver";
  /** Normalized POSIX path relative to the repo root, never absolute, never starting with "..". The root is ".". */
  path: string;
  cluster: string;
  namespace: string;
  /** Sync windows: the global ones, then the app's own. */
  windows: SyncWindow[];
  /** Apps that must be healthy at their current revision before this one applies a new revision. */
  dependsOn: string[];
  /** Forces every namespaced object into this namespace. */
  targetNamespace?: string;
  /** Namespaced objects only in these namespaces. */
  allowedNamespaces?: string[];
  /** false: cluster-scoped objects are refused. */
  allowClusterScoped: boolean;
  prune: boolean;
  allowEmpty: boolean;
  applyConcurrency: number;
  checks: { pre: CheckConfig[]; post: CheckConfig[]; keep: number };
  healthTimeoutMs: number;
  rollback: "auto" | "off";
  approval: "none" | "manual";
}

/** A pre- or post-deploy check: a Job or a Tekton PipelineRun/TaskRun, from the repo or inline. */
export interface CheckConfig {
  name: string;
  kind: "job" | "pipelineRun";
  /** Path in the repo (relative to its root), read at the revision being deployed. */
  file?: string;
  manifest?: Record<string, unknown>;
  timeoutMs: number;
}

export interface NotificationSinkConfig {
  name: string;
  type: "slack" | "webhook";
  /** Absolute path of the file holding the URL. */
  urlFile: string;
  secretFile?: string;
  on: string[];
}

/** A scheduled release (src/releases): a PipelineRun, TaskRun or Job created on a cron schedule. */
export interface ReleaseConfig {
  name: string;
  /** 5-field cron expression (or @daily etc.), evaluated in `timezone`. */
  schedule: string;
  /** IANA time zone. Default UTC. */
  timezone: string;
  repo: string;
  branch: string;
  cluster: string;
  /** Namespace the runs are created in. */
  namespace: string;
  suspend: boolean;
  /** A file in the repo (normalized, relative to its root), read at the chosen revision; or an inline manifest. */
  template: { path: string } | { inline: Record<string, unknown> };
  /** Values for $(plumber.params.NAME) in the template. */
  params: Record<string, string>;
  /**
   * deployedTo with `repo`: the app deploys another repo than the release's (its code, say); the
   * revision released is a commit of that repo, and the template is read at the release branch's head.
   */
  revision: { kind: "head" } | { kind: "deployedTo"; app: string; olderThanMs: number; repo?: string };
  concurrency: "forbid" | "replace" | "allow";
  skipIfUnchanged: boolean;
  /** How late a missed slot may still fire; undefined: no limit. */
  catchUpMs?: number;
}

export interface PlumberConfig {
  /** Absolute path of the config file. */
  file: string;
  clusters: ClusterConfig[];
  repos: RepoConfig[];
  apps: AppConfig[];
  state: { namespace: string };
  notifications: NotificationSinkConfig[];
  releases: ReleaseConfig[];
  featureGates: { apiFields: ApiFieldsGate };
  /** Rendering of apps whose path holds a kustomization file (src/kustomize). */
  kustomize: { binary: string; allowRemoteBases: boolean; timeoutMs: number };
  /** The dashboard of `plumber run` (src/dashboard): where it listens (none when unset), whether reads need a token. */
  dashboard: { listen?: string; public: boolean };
}
