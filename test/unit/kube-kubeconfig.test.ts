// plumber's kubeconfig loader reads what @kubernetes/client-node read (it replaced it on the
// common paths): the same files give the same TLS options and headers, and exec plugins still
// run through client-node, imported only for them.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import type https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig as ClientNodeKubeConfig } from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadKubeConfig } from "../../src/kube/client.js";
import { KubeConfig } from "../../src/kube/kubeconfig.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "plumber-kubeconfig-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString("base64");

async function kubeconfigFile(doc: unknown, name = "config"): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, stringify(doc));
  return file;
}

/** Everything applyToHTTPSOptions hands KubeClient, comparable across the two loaders. */
async function options(kc: { applyToHTTPSOptions(o: https.RequestOptions): Promise<void> }): Promise<Record<string, unknown>> {
  const o: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(o);
  const text = (v: unknown) => (v === undefined || v === null ? undefined : Buffer.isBuffer(v) ? v.toString() : String(v));
  const headers = Object.fromEntries(Object.entries((o.headers ?? {}) as Record<string, unknown>).filter(([, v]) => v !== undefined));
  return { ca: text(o.ca), cert: text(o.cert), key: text(o.key), auth: o.auth, rejectUnauthorized: o.rejectUnauthorized, headers };
}

function both(file: string, context?: string): [KubeConfig, ClientNodeKubeConfig] {
  const ours = new KubeConfig();
  ours.loadFromFile(file);
  const theirs = new ClientNodeKubeConfig();
  theirs.loadFromFile(file);
  if (context) {
    ours.setCurrentContext(context);
    theirs.setCurrentContext(context);
  }
  return [ours, theirs];
}

describe("kubeconfig loading", () => {
  it("gives what client-node gave for the same file: inline data, relative files, tokens, basic auth, impersonation, skip-verify", async () => {
    await mkdir(join(dir, "certs"));
    await writeFile(join(dir, "certs", "ca.pem"), "CA FROM FILE");
    await writeFile(join(dir, "certs", "client.pem"), "CERT FROM FILE");
    await writeFile(join(dir, "certs", "client.key"), "KEY FROM FILE");
    await writeFile(join(dir, "token"), "token-from-file");
    const file = await kubeconfigFile({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "inline",
      clusters: [
        { name: "data", cluster: { server: "https://data.example:6443/", "certificate-authority-data": b64("CA DATA") } },
        { name: "files", cluster: { server: "https://files.example", "certificate-authority": "certs/ca.pem" } },
        { name: "insecure", cluster: { server: "https://insecure.example", "insecure-skip-tls-verify": true } },
      ],
      users: [
        { name: "certs-inline", user: { "client-certificate-data": b64("CERT DATA"), "client-key-data": b64("KEY DATA") } },
        { name: "certs-files", user: { "client-certificate": "certs/client.pem", "client-key": "certs/client.key", as: "someone" } },
        { name: "token", user: { token: "plain-token" } },
        { name: "token-file", user: { "token-file": join(dir, "token") } },
        { name: "basic", user: { username: "ann", password: "secret" } },
      ],
      contexts: [
        { name: "inline", context: { cluster: "data", user: "certs-inline" } },
        { name: "files", context: { cluster: "files", user: "certs-files", namespace: "team" } },
        { name: "token", context: { cluster: "insecure", user: "token" } },
        { name: "token-file", context: { cluster: "data", user: "token-file" } },
        { name: "basic", context: { cluster: "files", user: "basic" } },
      ],
    });
    const seen: Record<string, unknown>[] = [];
    for (const context of [undefined, "files", "token", "token-file", "basic"]) {
      const [ours, theirs] = both(file, context);
      expect(ours.getCurrentCluster()?.server).toBe(theirs.getCurrentCluster()?.server);
      const got = await options(ours);
      expect(got).toEqual(await options(theirs));
      seen.push(got);
    }
    // Not vacuous: each context really carried its credentials.
    expect(seen.map((s) => [s.ca, s.cert, s.auth, (s.headers as Record<string, string>).Authorization])).toEqual([
      ["CA DATA", "CERT DATA", undefined, undefined],
      ["CA FROM FILE", "CERT FROM FILE", undefined, undefined],
      [undefined, undefined, undefined, "Bearer plain-token"],
      ["CA DATA", undefined, undefined, "Bearer token-from-file"],
      ["CA FROM FILE", undefined, "ann:secret", undefined],
    ]);
    expect(seen[1]?.headers).toMatchObject({ "Impersonate-User": "someone" });
    expect(seen[2]?.rejectUnauthorized).toBe(false);
  });

  it("re-reads a token file on every refresh (tokens rotate), keeping the last token while the file is briefly gone", async () => {
    const token = join(dir, "token");
    await writeFile(token, "first");
    const kc = new KubeConfig();
    kc.loadFromFile(await kubeconfigFile({ "current-context": "c", clusters: [{ name: "c", cluster: { server: "https://x" } }], users: [{ name: "u", user: { "token-file": token } }], contexts: [{ name: "c", context: { cluster: "c", user: "u" } }] }));
    expect((await options(kc)).headers).toEqual({ Authorization: "Bearer first" });
    await writeFile(token, "second");
    expect((await options(kc)).headers).toEqual({ Authorization: "Bearer second" });
    await rm(token);
    expect((await options(kc)).headers).toEqual({ Authorization: "Bearer second" });
  });

  it("in a pod: the service account's CA, namespace and rotating token, an IPv6 service host in brackets", async () => {
    const sa = join(dir, "var/run/secrets/kubernetes.io/serviceaccount");
    await mkdir(sa, { recursive: true });
    await writeFile(join(sa, "ca.crt"), "CLUSTER CA");
    await writeFile(join(sa, "token"), "sa-token-1");
    await writeFile(join(sa, "namespace"), "plumber-system");
    const kc = new KubeConfig();
    kc.loadFromCluster(dir, { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" });
    expect(kc.getCurrentCluster()?.server).toBe("https://[fd00::1]:443");
    expect(kc.getContextObject("inClusterContext")?.namespace).toBe("plumber-system");
    expect(await options(kc)).toMatchObject({ ca: "CLUSTER CA", headers: { Authorization: "Bearer sa-token-1" } });
    await writeFile(join(sa, "token"), "sa-token-2");
    expect((await options(kc)).headers).toEqual({ Authorization: "Bearer sa-token-2" });
  });

  it("an exec plugin runs through client-node, its token used like any other", async () => {
    const credential = JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token: "from-exec-plugin" } });
    const file = await kubeconfigFile({
      "current-context": "c",
      clusters: [{ name: "c", cluster: { server: "https://x" } }],
      users: [{ name: "u", user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: process.execPath, args: ["-e", `process.stdout.write(${JSON.stringify(credential)})`], interactiveMode: "Never" } } }],
      contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
    });
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    expect(await options(kc)).toMatchObject({ headers: { Authorization: "Bearer from-exec-plugin" } });
  });

  it("refuses what client-node refused: a missing context, no current cluster, plain http without skip-verify, a cluster without a server", async () => {
    const file = await kubeconfigFile({ "current-context": "c", clusters: [{ name: "c", cluster: { server: "http://x:8080" } }], users: [{ name: "u", user: { token: "t" } }], contexts: [{ name: "c", context: { cluster: "c", user: "u" } }] });
    expect(() => loadKubeConfig({ kubeconfig: file, context: "nope" })).toThrow(/no context "nope"/);
    await expect(options(loadKubeConfig({ kubeconfig: file }))).rejects.toThrow(/HTTP protocol is not allowed/);
    const none = await kubeconfigFile({ clusters: [], users: [], contexts: [] }, "empty");
    expect(() => loadKubeConfig({ kubeconfig: none })).toThrow(/names no current cluster/);
    const bad = await kubeconfigFile({ clusters: [{ name: "c", cluster: {} }] }, "bad");
    expect(() => loadKubeConfig({ kubeconfig: bad })).toThrow(/clusters\[0\]\.cluster\.server is missing/);
  });
});
