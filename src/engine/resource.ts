import type { KubeObject, Manifest, SourceRef, FileProblem } from "../types.js";
import { FileProblemError } from "../types.js";
import type { Discovery, ResourceMapping } from "../kube/discovery.js";
import { splitApiVersion } from "../kube/discovery.js";
import { idKey, type ObjectId } from "../manifests/identity.js";
import { subjectOf } from "./changeset.js";
import { withMarks } from "./marks.js";

/** One desired object, resolved against the cluster: where it goes and how it is addressed. */
export interface Resource {
  key: string;
  id: ObjectId;
  subject: string;
  object: KubeObject;
  source: SourceRef;
  mapping: ResourceMapping;
  /** Its kind comes from a CRD in the same set that the cluster does not serve yet. */
  pendingKind: boolean;
}

export interface ResolveOptions {
  owner: string;
  defaultNamespace: string;
  discovery: Discovery;
  policy?: NamespacePolicy;
  /**
   * The resources of the last resolve, by the parsed manifest they came from: an unchanged file's
   * manifests are the same objects across commits (manifests/read.ts), so a 10k-object app's
   * one-line commit resolves one object, not 10k. Resources are never modified after resolve.
   */
  cache?: WeakMap<object, CachedResource>;
}

/** A resolve's answer for one manifest, and what it depended on besides the manifest. */
export interface CachedResource {
  resource: Resource;
  owner: string;
  defaultNamespace: string;
  policy: NamespacePolicy | undefined;
  /** The discovery generation its mapping was last found at. */
  discovery: number;
}

/** Where an app's objects may go; checked for every object before anything is written. */
export interface NamespacePolicy {
  /** Every namespaced object goes into this namespace, whatever its manifest says. */
  targetNamespace?: string;
  /** Namespaced objects (and Namespace objects) only in these namespaces. */
  allowedNamespaces?: string[];
  /** false: cluster-scoped kinds are refused. Default true. */
  allowClusterScoped?: boolean;
}

const CRD_GROUP = "apiextensions.k8s.io";

/**
 * Resolves every manifest to a REST mapping before anything is written: an unknown kind, a
 * version not served, or two manifests for one object are errors naming file:line.
 */
export function resolveResources(manifests: Manifest[], opts: ResolveOptions): Resource[] {
  const fromCrds = crdMappings(manifests);
  const problems: FileProblem[] = [];
  const seen = new Map<string, SourceRef>();
  const out: Resource[] = [];
  for (const m of manifests) {
    const hit = opts.cache?.get(m.object);
    // Discovery may have changed since (a CRD installed, a version dropped): then the mapping is
    // looked up again, and only the same answer reuses the resource.
    if (hit && hit.owner === opts.owner && hit.defaultNamespace === opts.defaultNamespace && hit.policy === opts.policy && hit.resource.source === m.source && !hit.resource.pendingKind) {
      const r = hit.resource;
      if (hit.discovery === opts.discovery.generation || opts.discovery.lookup(m.object.apiVersion, m.object.kind) === r.mapping) {
        hit.discovery = opts.discovery.generation;
        const first = seen.get(r.key);
        if (!first) {
          seen.set(r.key, m.source);
          out.push(r);
          continue;
        }
      }
    }
    const { apiVersion, kind } = m.object;
    const { group, version } = splitApiVersion(apiVersion);
    let mapping = opts.discovery.lookup(apiVersion, kind);
    let pendingKind = false;
    if (!mapping) {
      mapping = fromCrds.get(`${group}/${version}/${kind}`);
      pendingKind = mapping !== undefined;
    }
    if (!mapping) {
      const message = opts.discovery.hasKind(group, kind)
        ? `kind ${kind} is not served in version ${apiVersion} by the cluster`
        : `unknown kind ${kind} (${apiVersion}): the cluster does not serve it and no CustomResourceDefinition in this app defines it`;
      problems.push({ file: m.source.file, line: m.source.line, field: "kind", message });
      continue;
    }
    const metadata = { ...m.object.metadata };
    const policy = opts.policy ?? {};
    if (mapping.namespaced) metadata.namespace = policy.targetNamespace || metadata.namespace || opts.defaultNamespace;
    else delete metadata.namespace;
    const refused = policyProblem(policy, mapping.namespaced, kind, group, metadata.namespace ?? "", metadata.name);
    if (refused) {
      problems.push({ file: m.source.file, line: m.source.line, field: mapping.namespaced ? "metadata.namespace" : "kind", message: refused });
      continue;
    }
    const object = withMarks({ ...m.object, metadata }, opts.owner);
    const id: ObjectId = { group, version, kind, namespace: metadata.namespace ?? "", name: metadata.name };
    const key = idKey(id);
    const first = seen.get(key);
    if (first) {
      problems.push({
        file: m.source.file,
        line: m.source.line,
        field: "metadata.name",
        message: `duplicate object ${subjectOf(kind, id.namespace, id.name)}: also defined at ${first.file}:${first.line}`,
      });
      continue;
    }
    seen.set(key, m.source);
    const resource: Resource = { key, id, subject: subjectOf(kind, id.namespace, id.name), object, source: m.source, mapping, pendingKind };
    out.push(resource);
    opts.cache?.set(m.object, { resource, owner: opts.owner, defaultNamespace: opts.defaultNamespace, policy: opts.policy, discovery: opts.discovery.generation });
  }
  if (problems.length) throw new FileProblemError(problems);
  return out;
}

function policyProblem(policy: NamespacePolicy, namespaced: boolean, kind: string, group: string, namespace: string, name: string): string | undefined {
  const allowed = policy.allowedNamespaces;
  if (namespaced) {
    if (allowed && !allowed.includes(namespace)) return `namespace "${namespace}" of ${kind} ${name} is not allowed for this app (allowedNamespaces: ${allowed.join(", ")})`;
    return undefined;
  }
  if (policy.allowClusterScoped === false) return `${kind} ${name} is cluster-scoped, and this app does not allow cluster-scoped objects (allowClusterScoped: false)`;
  if (allowed && group === "" && kind === "Namespace" && !allowed.includes(name)) return `namespace "${name}" is not allowed for this app (allowedNamespaces: ${allowed.join(", ")})`;
  return undefined;
}

interface CrdSpec {
  group?: string;
  scope?: string;
  names?: { kind?: string; plural?: string };
  versions?: { name?: string; served?: boolean }[];
}

function crdMappings(manifests: Manifest[]): Map<string, ResourceMapping> {
  const out = new Map<string, ResourceMapping>();
  for (const m of manifests) {
    if (m.object.kind !== "CustomResourceDefinition" || splitApiVersion(m.object.apiVersion).group !== CRD_GROUP) continue;
    const spec = (m.object.spec ?? {}) as CrdSpec;
    if (!spec.group || !spec.names?.kind || !spec.names.plural) continue;
    for (const v of spec.versions ?? []) {
      if (!v.name || v.served === false) continue;
      out.set(`${spec.group}/${v.name}/${spec.names.kind}`, {
        group: spec.group,
        version: v.name,
        kind: spec.names.kind,
        resource: spec.names.plural,
        namespaced: spec.scope !== "Cluster",
      });
    }
  }
  return out;
}

export function isCrd(r: { id: { group: string; kind: string } }): boolean {
  return r.id.group === CRD_GROUP && r.id.kind === "CustomResourceDefinition";
}

export function isNamespace(r: { id: { group: string; kind: string } }): boolean {
  return r.id.group === "" && r.id.kind === "Namespace";
}
