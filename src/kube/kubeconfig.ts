import { readFileSync } from "node:fs";
import type https from "node:https";
import { isIPv6 } from "node:net";
import { dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";

/**
 * The part of kubeconfig handling plumber needs: pick the current context's cluster and user,
 * and turn them into TLS options and headers (client certificates, bearer tokens and token files,
 * basic auth, impersonation, the in-cluster service account). It reads the same fields the same
 * way as @kubernetes/client-node, whose KubeConfig this replaces: that library loads some 70 MiB
 * of generated API code a long-running `plumber run` would carry for parsing one file. Only a user
 * with an exec plugin or an auth provider (OIDC, gcp, azure) still goes through client-node,
 * imported the first time such a user's credentials are needed.
 */

export interface KubeCluster {
  name: string;
  server: string;
  caData?: string;
  caFile?: string;
  skipTLSVerify: boolean;
  tlsServerName?: string;
  proxyUrl?: string;
}

export interface KubeUser {
  name: string;
  token?: string;
  /** Re-read on every credentials refresh (a projected or rotated token). */
  tokenFile?: string;
  certData?: string;
  certFile?: string;
  keyData?: string;
  keyFile?: string;
  username?: string;
  password?: string;
  impersonateUser?: string;
  exec?: unknown;
  authProvider?: { name?: string; config?: Record<string, string> } | null;
}

export interface KubeContext {
  name: string;
  cluster: string;
  user?: string;
  namespace?: string;
}

export interface KubeConfigOptions {
  clusters: KubeCluster[];
  users: KubeUser[];
  contexts: KubeContext[];
  currentContext?: string;
}

const SERVICEACCOUNT_ROOT = "/var/run/secrets/kubernetes.io/serviceaccount";

interface ClientNodeConfig {
  loadFromOptions(o: unknown): void;
  applyToHTTPSOptions(o: https.RequestOptions): Promise<void>;
}

export class KubeConfig {
  private clusters: KubeCluster[] = [];
  private users: KubeUser[] = [];
  private contexts: KubeContext[] = [];
  private currentContext?: string;
  /** client-node's KubeConfig for exec plugins and auth providers (it caches their tokens). */
  private delegate?: Promise<ClientNodeConfig>;
  private readonly tokens = new Map<string, string>();

  loadFromOptions(o: KubeConfigOptions): void {
    this.clusters = o.clusters;
    this.users = o.users;
    this.contexts = o.contexts;
    this.currentContext = o.currentContext;
    this.delegate = undefined;
  }

  loadFromFile(file: string): void {
    this.loadFromString(readFileSync(file, "utf8"), dirname(file));
  }

  /** Relative certificate and key paths are relative to the file, as kubectl reads them. */
  loadFromString(text: string, root?: string): void {
    const doc = (parse(text) ?? {}) as Record<string, unknown>;
    const abs = (p: string | undefined) => (p && root && !isAbsolute(p) ? join(root, p) : p);
    const clusters = list(doc.clusters).map((e, i) => {
      const c = entry(e, "cluster", `clusters[${i}]`);
      const server = str(c.server);
      if (!server) throw new Error(`clusters[${i}].cluster.server is missing`);
      return {
        name: str(e.name) as string,
        server: server.replace(/\/$/, ""),
        caData: str(c["certificate-authority-data"]),
        caFile: abs(str(c["certificate-authority"])),
        skipTLSVerify: c["insecure-skip-tls-verify"] === true,
        tlsServerName: str(c["tls-server-name"]),
        proxyUrl: str(c["proxy-url"]),
      };
    });
    const users = list(doc.users).map((e, i) => {
      if (!e.name) throw new Error(`users[${i}].name is missing`);
      const u = (e.user ?? {}) as Record<string, unknown>;
      const tokenFile = str(u["token-file"]);
      return {
        name: String(e.name),
        token: str(u.token),
        // Read now so a missing file fails the load, as it did; read again on every refresh.
        tokenFile: u.token || !tokenFile ? undefined : (readFileSync(tokenFile), tokenFile),
        certData: str(u["client-certificate-data"]),
        certFile: abs(str(u["client-certificate"])),
        keyData: str(u["client-key-data"]),
        keyFile: abs(str(u["client-key"])),
        username: str(u.username),
        password: str(u.password),
        impersonateUser: str(u.as),
        exec: u.exec ?? undefined,
        authProvider: (u["auth-provider"] as KubeUser["authProvider"]) ?? undefined,
      };
    });
    const contexts = list(doc.contexts).map((e, i) => {
      const c = entry(e, "context", `contexts[${i}]`);
      if (!c.cluster) throw new Error(`contexts[${i}].context.cluster is missing`);
      return { name: str(e.name) as string, cluster: String(c.cluster), user: str(c.user) || undefined, namespace: str(c.namespace) || undefined };
    });
    this.loadFromOptions({ clusters, users, contexts, currentContext: str(doc["current-context"]) });
  }

  /** The pod's service account: its token (re-read, it rotates) and CA, the in-cluster address. */
  loadFromCluster(pathPrefix = "", env: NodeJS.ProcessEnv = process.env): void {
    const host = env.KUBERNETES_SERVICE_HOST ?? "";
    const port = env.KUBERNETES_SERVICE_PORT;
    const scheme = port === "80" || port === "8080" || port === "8001" ? "http" : "https";
    const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
    let namespace: string | undefined;
    try {
      namespace = readFileSync(`${pathPrefix}${SERVICEACCOUNT_ROOT}/namespace`, "utf8");
    } catch {
      // not mounted: no namespace
    }
    this.loadFromOptions({
      clusters: [{ name: "inCluster", server, caFile: `${pathPrefix}${SERVICEACCOUNT_ROOT}/ca.crt`, skipTLSVerify: false }],
      users: [{ name: "inClusterUser", tokenFile: `${pathPrefix}${SERVICEACCOUNT_ROOT}/token` }],
      contexts: [{ name: "inClusterContext", cluster: "inCluster", user: "inClusterUser", namespace }],
      currentContext: "inClusterContext",
    });
  }

  getContextObject(name: string): KubeContext | undefined {
    return this.contexts.find((c) => c.name === name);
  }

  setCurrentContext(name: string): void {
    this.currentContext = name;
  }

  getCurrentContext(): string | undefined {
    return this.currentContext;
  }

  getCurrentCluster(): KubeCluster | undefined {
    const ctx = this.currentContext === undefined ? undefined : this.getContextObject(this.currentContext);
    return ctx && this.clusters.find((c) => c.name === ctx.cluster);
  }

  getCurrentUser(): KubeUser | undefined {
    const ctx = this.currentContext === undefined ? undefined : this.getContextObject(this.currentContext);
    return ctx?.user === undefined ? undefined : this.users.find((u) => u.name === ctx.user);
  }

  /** TLS material and headers for the current context, freshly read (token files rotate). */
  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const cluster = this.getCurrentCluster();
    const user = this.getCurrentUser();
    if (cluster?.server.startsWith("http:") && !cluster.skipTLSVerify) throw new Error("HTTP protocol is not allowed when skipTLSVerify is not set or false");
    if (user && needsClientNode(user)) return (await this.clientNode()).applyToHTTPSOptions(opts);
    if (!user) return;
    if (cluster?.skipTLSVerify) opts.rejectUnauthorized = false;
    const ca = cluster && bytes(cluster.caFile, cluster.caData);
    if (ca) opts.ca = ca;
    const cert = bytes(user.certFile, user.certData);
    if (cert) opts.cert = cert;
    const key = bytes(user.keyFile, user.keyData);
    if (key) opts.key = key;
    const headers: Record<string, string> = {};
    if (user.impersonateUser) headers["Impersonate-User"] = user.impersonateUser;
    const token = user.token ?? this.readToken(user.tokenFile ?? user.authProvider?.config?.tokenFile);
    if (token) headers.Authorization = `Bearer ${token}`;
    if (user.username) opts.auth = `${user.username}:${user.password}`;
    opts.headers = { ...(opts.headers as Record<string, string> | undefined), ...headers };
  }

  /** A token file's content; the last one read while the file is briefly gone (mid-rotation). */
  private readToken(file: string | undefined): string | undefined {
    if (!file) return undefined;
    try {
      const t = readFileSync(file, "utf8");
      this.tokens.set(file, t);
      return t;
    } catch (e) {
      const last = this.tokens.get(file);
      if (last === undefined) throw e;
      return last;
    }
  }

  private clientNode(): Promise<ClientNodeConfig> {
    this.delegate ??= import("@kubernetes/client-node").then(({ KubeConfig: ClientNode }) => {
      const kc = new ClientNode();
      const users = this.users.map((u) => ({ ...u, token: u.token ?? this.readToken(u.tokenFile) }));
      kc.loadFromOptions({ clusters: this.clusters, users, contexts: this.contexts, currentContext: this.currentContext });
      return kc as ClientNodeConfig;
    });
    return this.delegate;
  }
}

/** Exec plugins and auth providers (other than a token file) are client-node's to run. */
function needsClientNode(user: KubeUser): boolean {
  if (user.exec) return true;
  const ap = user.authProvider;
  return !!ap && !ap.config?.tokenFile;
}

function bytes(file: string | undefined, data: string | undefined): Buffer | undefined {
  if (file) return readFileSync(file);
  if (data) return Buffer.from(data, "base64");
  return undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function list(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? (v as Record<string, unknown>[]) : [];
}

function entry(e: Record<string, unknown>, key: string, where: string): Record<string, unknown> {
  if (!e.name) throw new Error(`${where}.name is missing`);
  const inner = e[key];
  if (!inner || typeof inner !== "object") throw new Error(`${where}.${key} is missing`);
  return inner as Record<string, unknown>;
}
