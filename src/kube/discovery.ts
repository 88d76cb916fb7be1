import type { KubeClient } from "./client.js";

/** How a kind is addressed: its REST resource name and whether it lives in a namespace. */
export interface ResourceMapping {
  group: string;
  version: string;
  kind: string;
  resource: string;
  namespaced: boolean;
}

const AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

interface AggregatedList {
  kind?: string;
  items?: {
    metadata?: { name?: string };
    versions?: {
      version: string;
      resources?: { resource: string; responseKind?: { kind?: string }; scope?: string }[];
    }[];
  }[];
}

interface LegacyResourceList {
  groupVersion: string;
  resources: { name: string; kind: string; namespaced: boolean }[];
}

/**
 * Kind → resource mapping from the apiserver. Two requests with aggregated discovery (/api and
 * /apis); refreshed on demand, e.g. after CRDs are established.
 */
export class Discovery {
  private byGvk = new Map<string, ResourceMapping>();
  private kindsByGroup = new Map<string, Set<string>>();
  private loaded = false;

  constructor(private readonly client: KubeClient) {}

  async refresh(): Promise<void> {
    const next = new Map<string, ResourceMapping>();
    for (const root of ["/api", "/apis"]) {
      const res = await this.client.raw({ method: "GET", path: root, accept: AGGREGATED });
      if (res.status >= 400) throw new Error(`discovery ${root}: HTTP ${res.status}`);
      const body = JSON.parse(res.text) as AggregatedList & { versions?: string[]; groups?: unknown[] };
      if (body.kind === "APIGroupDiscoveryList") this.addAggregated(next, body);
      else await this.addLegacy(next, root, body);
    }
    this.byGvk = next;
    this.generation++;
    this.kindsByGroup = new Map();
    for (const m of next.values()) {
      let s = this.kindsByGroup.get(m.group);
      if (!s) this.kindsByGroup.set(m.group, (s = new Set()));
      s.add(m.kind);
    }
    this.loaded = true;
  }

  private addAggregated(into: Map<string, ResourceMapping>, list: AggregatedList): void {
    for (const g of list.items ?? []) {
      const group = g.metadata?.name ?? "";
      for (const v of g.versions ?? []) {
        for (const r of v.resources ?? []) {
          const kind = r.responseKind?.kind;
          if (!kind || r.resource.includes("/")) continue;
          into.set(key(group, v.version, kind), {
            group,
            version: v.version,
            kind,
            resource: r.resource,
            namespaced: r.scope === "Namespaced",
          });
        }
      }
    }
  }

  /** Servers without aggregated discovery (before 1.30 or behind some proxies). */
  private async addLegacy(into: Map<string, ResourceMapping>, root: string, body: { versions?: string[]; groups?: unknown[] }): Promise<void> {
    const gvs: string[] =
      root === "/api"
        ? (body.versions ?? [])
        : ((body.groups ?? []) as { versions: { groupVersion: string }[] }[]).flatMap((g) => g.versions.map((v) => v.groupVersion));
    for (const gv of gvs) {
      const list = await this.client.getOptional<LegacyResourceList>(root === "/api" ? `/api/${gv}` : `/apis/${gv}`);
      if (!list) continue;
      const [group, version] = gv.includes("/") ? (gv.split("/") as [string, string]) : ["", gv];
      for (const r of list.resources) {
        if (r.name.includes("/")) continue;
        into.set(key(group, version, r.kind), { group, version, kind: r.kind, resource: r.name, namespaced: r.namespaced });
      }
    }
  }

  async ensureLoaded(): Promise<void> {
    if (!this.loaded) await this.refresh();
  }

  /** Counts refreshes: a mapping looked up at one generation is the answer until the next. */
  generation = 0;

  lookup(apiVersion: string, kind: string): ResourceMapping | undefined {
    const { group, version } = splitApiVersion(apiVersion);
    return this.byGvk.get(key(group, version, kind));
  }

  /** True when the group serves the kind in some other version: a better error than "unknown". */
  hasKind(group: string, kind: string): boolean {
    return this.kindsByGroup.get(group)?.has(kind) ?? false;
  }

  /** For callers that learn a mapping before discovery shows it (a CRD applied in the same set). */
  add(m: ResourceMapping): void {
    this.byGvk.set(key(m.group, m.version, m.kind), m);
  }
}

function key(group: string, version: string, kind: string): string {
  return `${group}/${version}/${kind}`;
}

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf("/");
  return i < 0 ? { group: "", version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** The REST path of an object, or of the collection when name is omitted. */
export function resourcePath(m: ResourceMapping, namespace: string | undefined, name?: string): string {
  const base = m.group === "" ? `/api/${m.version}` : `/apis/${m.group}/${m.version}`;
  const ns = m.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  const tail = name === undefined ? "" : `/${encodeURIComponent(name)}`;
  return `${base}${ns}/${m.resource}${tail}`;
}
