// A connection to one git repo, shared by its apps and releases: the HTTP transport (with the
// repo's credentials and CA read from their files), the cached clone, and request counters.
import { join } from "node:path";
import { homedir } from "node:os";
import type { RepoConfig } from "../config/types.js";
import { readConfigFile, readSecretFile } from "../config/secrets.js";
import { createGitHttp, type GitHttpAuth, type GitHttpClient } from "../git/http.js";
import { GitRepo } from "../git/repo.js";

export interface RepoConnection {
  config: RepoConfig;
  repo: GitRepo;
  http: GitHttpClient;
  /** Git HTTP requests sent, for logs, status and the benchmark. */
  requests: { total: number; failed: number };
}

export function defaultCacheDir(): string {
  return process.env.PLUMBER_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "plumber", "repos");
}

export async function connectRepo(config: RepoConfig, cacheDir: string): Promise<RepoConnection> {
  let auth: GitHttpAuth | undefined;
  if (config.auth?.tokenFile) auth = { token: await readSecretFile(config.auth.tokenFile, `repos[${config.name}].auth.tokenFile`) };
  else if (config.auth?.usernameFile && config.auth.passwordFile) {
    auth = {
      username: await readSecretFile(config.auth.usernameFile, `repos[${config.name}].auth.usernameFile`),
      password: await readSecretFile(config.auth.passwordFile, `repos[${config.name}].auth.passwordFile`),
    };
  }
  const caPem = config.caFile ? await readConfigFile(config.caFile, `repos[${config.name}].caFile`) : undefined;
  const requests = { total: 0, failed: 0 };
  const http = createGitHttp({
    auth,
    caPem,
    timeoutMs: config.timeoutMs,
    onRequest: (info) => {
      requests.total++;
      if (info.status === 0 || info.status >= 400) requests.failed++;
    },
  });
  const repo = new GitRepo({ url: config.url, http, cacheDir });
  return { config, repo, http, requests };
}
