// The normalized, defaulted configuration the rest of plumber uses. Produced by parseConfig/loadConfig
// (src/config/load.ts) from config/plumber.yaml, validated against config/plumber.schema.json.

/** featureGates.apiFields: which configuration fields may be used (stable < beta < alpha). */
export type ApiFieldsGate = "stable" | "beta" | "alpha";

export interface ClusterConfig {
  name: string;
  /** Absolute path (resolved against the config file's directory). Unset: KUBECONFIG env, then in-cluster. */
  kubeconfig?: string;
  context?: string;
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
  auth?: RepoAuthConfig;
  /** Absolute path. */
  caFile?: string;
}

export interface AppConfig {
  name: string;
  repo: string;
  branch: string;
  /** Normalized POSIX path relative to the repo root, never absolute, never starting with "..". The root is ".". */
  path: string;
  cluster: string;
  namespace: string;
  prune: boolean;
  allowEmpty: boolean;
  applyConcurrency: number;
}

export interface PlumberConfig {
  /** Absolute path of the config file. */
  file: string;
  clusters: ClusterConfig[];
  repos: RepoConfig[];
  apps: AppConfig[];
  state: { namespace: string };
  featureGates: { apiFields: ApiFieldsGate };
}
