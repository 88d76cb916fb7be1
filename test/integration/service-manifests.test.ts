// manifests/ against the real apiserver: a server-side dry-run of the whole directory, as users
// apply it; and what the Deployment promises (security context, probes, flags plumber knows).
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { findRepoRoot } from "../bed/paths.js";
import { checkSelfConfig } from "../../src/config/selfconfig.js";
import { reservedObjectGuard } from "../../src/state/guard.js";
import { plumberMain } from "../bed/plumber.js";
import type { KubeObject } from "../../src/types.js";
import { testEnv } from "../setup/env.js";

/** A manifest read as plain data, probed field by field. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the manifests are the subject; a full type of each would only restate them
type Loose = any;

const execFileP = promisify(execFile);
const dir = join(findRepoRoot(), "manifests");

async function objects(): Promise<Array<{ file: string; object: KubeObject }>> {
  const out: Array<{ file: string; object: KubeObject }> = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith(".yaml")).sort()) {
    for (const doc of parseAllDocuments(await readFile(join(dir, file), "utf8"))) {
      const object = doc.toJS() as KubeObject | null;
      if (object) out.push({ file, object });
    }
  }
  return out;
}

describe("manifests/", () => {
  it("kubectl apply --server-side --dry-run=server -f manifests/ succeeds", async () => {
    const env = testEnv();
    const kubectl = join(env.binDir, "kubectl");
    const kc = `--kubeconfig=${env.kubeconfigPath}`;
    // The namespace must exist for the server to dry-run what goes in it (a real first apply
    // creates it before the rest: the files are applied in name order, 00-namespace.yaml first).
    await execFileP(kubectl, [kc, "apply", "--server-side", "-f", join(dir, "00-namespace.yaml")]);
    const { stdout, stderr } = await execFileP(kubectl, [kc, "apply", "--server-side", "--dry-run=server", "-f", dir]);
    expect(stderr).toBe("");
    const lines = stdout.trim().split("\n");
    const all = await objects();
    expect(lines).toHaveLength(all.length);
    for (const l of lines) expect(l).toMatch(/ (serverside-applied|unchanged) \(server dry run\)$/);
    for (const kind of ["namespace", "serviceaccount", "role", "rolebinding", "clusterrole", "clusterrolebinding", "configmap", "deployment", "service"]) {
      expect(lines.some((l) => l.startsWith(`${kind}.`) || l.startsWith(`${kind}/`))).toBe(true);
    }
  });

  it("the Deployment runs plumber non-root, read-only, with probes, resources and flags plumber knows", async () => {
    const all = await objects();
    const dep = all.find((o) => o.object.kind === "Deployment")?.object as Loose;
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    expect(pod.serviceAccountName).toBe("plumber");
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect(c.livenessProbe.httpGet.path).toBe("/healthz");
    expect(c.readinessProbe.httpGet.path).toBe("/readyz");
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(20 + 5);
    // Writable paths are volumes: the git cache and /tmp.
    const mounts = c.volumeMounts.map((m: { mountPath: string; readOnly?: boolean }) => `${m.mountPath}:${m.readOnly ? "ro" : "rw"}`);
    expect(mounts).toEqual(expect.arrayContaining(["/var/cache/plumber:rw", "/tmp:rw", "/etc/plumber/config:ro", "/etc/plumber/git:ro"]));
    expect(c.env).toEqual(expect.arrayContaining([{ name: "PLUMBER_CACHE_DIR", value: "/var/cache/plumber/repos" }]));
    // Every flag the Deployment passes is one `plumber run` accepts.
    const { stdout } = await execFileP(process.execPath, [plumberMain(), "run", "--help"]);
    const { stdout: top } = await execFileP(process.execPath, [plumberMain(), "--help"]);
    for (const arg of c.args as string[]) {
      if (!arg.startsWith("--")) continue;
      const flag = arg.split("=")[0] as string;
      expect(`${stdout}\n${top}`).toContain(flag);
    }
    // The Service exposes the metrics port the container serves.
    const svc = all.find((o) => o.object.kind === "Service")?.object as Loose;
    expect(svc.spec.ports[0].targetPort).toBe(c.ports[0].name);
  });

  it("the config ConfigMap carries a config plumber accepts, marked as plumber's own", async () => {
    const all = await objects();
    const cm = all.find((o) => o.object.kind === "ConfigMap");
    expect(cm?.object.metadata.annotations?.["plumber.dev/config"]).toBe("true");
    expect(checkSelfConfig([{ object: cm!.object, source: { file: cm!.file, line: 1 } }])).toEqual([]);
    // The state namespace in the config is the namespace the Role grants.
    const role = all.find((o) => o.object.kind === "Role")?.object;
    expect(String((cm!.object as Loose).data["plumber.yaml"])).toMatch(new RegExp(`state:\\s*\\n\\s*namespace: ${role?.metadata.namespace}`));
    // ...and plumber's config is outside it, so an app may manage it from git: the guard that keeps
    // every app out of the state namespace lets this one object through.
    const guard = reservedObjectGuard({ stateNamespace: role!.metadata.namespace! });
    expect(guard({ group: "", kind: "ConfigMap", namespace: cm!.object.metadata.namespace!, name: cm!.object.metadata.name })).toBeUndefined();
  });
});
