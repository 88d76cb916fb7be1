// Builds one ReleaseScheduler per configured release on the runtime's connections, connecting the
// repos and clusters releases use (and the clusters of deployedTo apps) that apps did not.
// What a scheduler does is told to the observer as "release" events.

import type { ClusterConfig, PlumberConfig, RepoConfig } from "../config/types.js";
import type { ClusterConnection } from "../connect/cluster.js";
import type { RepoConnection } from "../connect/repo.js";
import type { Logger } from "../log.js";
import type { ObservedEvent, Observer } from "../observe/events.js";
import { ReleaseScheduler, type ReleaseEvent } from "./scheduler.js";

export interface ReleaseConnections {
  repos: Map<string, RepoConnection>;
  clusters: Map<string, ClusterConnection>;
  connectRepo(config: RepoConfig): Promise<RepoConnection>;
  connectCluster(config: ClusterConfig): Promise<ClusterConnection>;
}

export async function buildReleaseSchedulers(
  config: PlumberConfig,
  conns: ReleaseConnections,
  opts: { log: Logger; observer?: Observer | undefined },
): Promise<ReleaseScheduler[]> {
  const repo = async (name: string): Promise<RepoConnection> => {
    let c = conns.repos.get(name);
    if (!c) {
      const cfg = config.repos.find((r) => r.name === name);
      if (!cfg) throw new Error(`no repo named ${name}`);
      conns.repos.set(name, (c = await conns.connectRepo(cfg)));
    }
    return c;
  };
  const cluster = async (name: string): Promise<ClusterConnection> => {
    let c = conns.clusters.get(name);
    if (!c) {
      const cfg = config.clusters.find((x) => x.name === name);
      if (!cfg) throw new Error(`no cluster named ${name}`);
      conns.clusters.set(name, (c = await conns.connectCluster(cfg)));
    }
    return c;
  };

  const out: ReleaseScheduler[] = [];
  for (const rel of config.releases) {
    const r = await repo(rel.repo);
    const c = await cluster(rel.cluster);
    let appState: ((app: string) => ReturnType<ClusterConnection["store"]["load"]>) | undefined;
    if (rel.revision.kind === "deployedTo") {
      const app = config.apps.find((a) => a.name === (rel.revision as { app: string }).app);
      if (!app) throw new Error(`release ${rel.name}: no app named ${rel.revision.app}`);
      const appCluster = await cluster(app.cluster);
      appState = (name) => appCluster.store.load(name);
    }
    // The wrong-cluster guard of the connection, where there is one.
    const guard = (c as { verify?: () => Promise<void> }).verify;
    out.push(
      new ReleaseScheduler({
        release: rel,
        repo: r.repo,
        http: r.http,
        client: c.client,
        discovery: c.discovery,
        stateNamespace: config.state.namespace,
        log: opts.log,
        ...(appState ? { appState } : {}),
        ...(opts.observer ? { onEvent: (e: ReleaseEvent) => opts.observer?.observe(releaseEvent(e, rel.cluster)) } : {}),
        ...(guard ? { guard } : {}),
      }),
    );
  }
  return out;
}

/** A scheduler's event in the one vocabulary (src/observe/events.ts). */
export function releaseEvent(e: ReleaseEvent, cluster: string): ObservedEvent {
  return { type: "release", step: e.type, release: e.release, cluster, ...(e.record ? { record: e.record } : {}), ...(e.message !== undefined ? { message: e.message } : {}) };
}
