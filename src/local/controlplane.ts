// A real, throwaway Kubernetes control plane on this machine (`plumber demo`, the test bed and
// the sandbox): etcd plus kube-apiserver on loopback, no controller-manager, no scheduler, no nodes.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
import { createWriteStream, rmSync, type WriteStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { request as httpsRequest } from "node:https";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { stringify as yamlStringify } from "yaml";
import { ensureBinaries } from "./binaries.js";
import { packageFile } from "./package.js";
import { spawnReaper, type Reaper } from "./reaper.js";

const execFileP = promisify(execFile);

export interface ControlPlane {
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Bearer token of a user in group system:masters. */
  token: string;
  /** PEM the server's certificate chains to (the kubeconfig's certificate-authority-data). */
  caPem: string;
  binDir: string;
  /** Per-run temp dir: etcd data, certs, kubeconfig, logs (etcd.log, kube-apiserver.log). */
  dataDir: string;
  /** SIGKILLs kube-apiserver only (etcd keeps running); resolves once it has exited. */
  killApiserver(): Promise<void>;
  /** Starts kube-apiserver again on the same etcd, port, certs and tokens; resolves once /readyz is 200. */
  startApiserver(): Promise<void>;
  /** killApiserver() then startApiserver(). */
  restartApiserver(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartControlPlaneOptions {
  /** Progress lines (and, with verbose, the processes' output). */
  log?: (line: string) => void;
  /** Use this bin dir instead of ensureBinaries(). */
  binDir?: string;
  /** Default 60 000 ms. */
  readyTimeoutMs?: number;
  /** Forward etcd/kube-apiserver output to log (also env PLUMBER_SANDBOX_VERBOSE=1). */
  verbose?: boolean;
  /** Extra kube-apiserver flags, appended last. */
  extraApiServerArgs?: string[];
}

export const SANDBOX_CONTEXT = "plumber-sandbox";
const SERVICE_CIDR = "10.0.0.0/24";
const SERVICE_IP = "10.0.0.1";
const TAIL_LINES = 40;

// ---------------------------------------------------------------------------------------------
// Child processes, and making sure none outlive us.

interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string;
  tail: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
}

interface LiveRun {
  procs: Proc[];
  dataDir: string;
}

const liveRuns = new Set<LiveRun>();
let handlersInstalled = false;

function killRunSync(run: LiveRun): void {
  for (const p of run.procs) {
    if (p.hasExited()) continue;
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  try {
    rmSync(run.dataDir, { recursive: true, force: true });
  } catch {
    // best effort
  }
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => {
    for (const run of liveRuns) killRunSync(run);
    liveRuns.clear();
  });
  const signals: Array<[NodeJS.Signals, number]> = [
    ["SIGINT", 2],
    ["SIGTERM", 15],
    ["SIGHUP", 1],
  ];
  for (const [sig, num] of signals) {
    const handler = () => {
      // Someone else handles this signal (e.g. the sandbox calls stop(), or the test runner
      // tears down): leave it to them; the 'exit' handler and the reaper still back us up.
      if (process.listenerCount(sig) > 1) return;
      for (const run of liveRuns) killRunSync(run);
      liveRuns.clear();
      process.exit(128 + num);
    };
    process.on(sig, handler);
  }
}

function startProc(
  name: string,
  bin: string,
  args: string[],
  logFile: string,
  forward?: (line: string) => void,
): Proc {
  const out: WriteStream = createWriteStream(logFile, { flags: "a" });
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
  const tail: string[] = [];
  let exited = false;
  const onData = (() => {
    let buf = "";
    return (d: Buffer) => {
      out.write(d);
      buf += d.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        forward?.(`[${name}] ${line}`);
      }
    };
  })();
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exitedP = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.on("error", (err) => {
      tail.push(`spawn error: ${err.message}`);
      exited = true;
      out.end();
      res({ code: -1, signal: null });
    });
    // 'close' (not 'exit'): the output pipes are drained by then, so the tail is complete.
    child.on("close", (code, signal) => {
      exited = true;
      out.end();
      res({ code, signal });
    });
  });
  return {
    name,
    child,
    pid: child.pid ?? -1,
    logFile,
    tail,
    exited: exitedP,
    hasExited: () => exited,
  };
}

async function stopProc(p: Proc, graceMs: number): Promise<void> {
  if (p.hasExited()) return;
  try {
    p.child.kill("SIGTERM");
  } catch {
    // gone
  }
  const timer = setTimeout(() => {
    try {
      p.child.kill("SIGKILL");
    } catch {
      // gone
    }
  }, graceMs);
  await p.exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((res, rej) => {
          const s = createServer();
          s.once("error", rej);
          s.listen(0, "127.0.0.1", () => res(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((res) => s.close(() => res()))));
  return ports;
}

const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));

function httpStatus(url: string, timeoutMs = 1000): Promise<number> {
  return new Promise((res) => {
    const req = httpGet(url, { timeout: timeoutMs }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on("error", () => res(0));
    req.on("timeout", () => req.destroy());
  });
}

interface HttpsResult {
  status: number;
  body: string;
  error?: Error;
}

function httpsGet(
  url: string,
  token: string,
  tls: { ca?: string; insecure?: boolean },
  timeoutMs = 2000,
): Promise<HttpsResult> {
  return new Promise((res) => {
    const req = httpsRequest(
      url,
      {
        method: "GET",
        headers: { Authorization: `Bearer ${token}` },
        timeout: timeoutMs,
        ca: tls.ca,
        rejectUnauthorized: !tls.insecure,
        agent: false,
      },
      (r) => {
        let body = "";
        r.setEncoding("utf8");
        r.on("data", (d: string) => (body += d));
        r.on("end", () => res({ status: r.statusCode ?? 0, body }));
        r.on("error", (error) => res({ status: 0, body, error }));
      },
    );
    req.on("error", (error) => res({ status: 0, body: "", error }));
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

function tailOf(p: Proc, n = 25): string {
  return p.tail.slice(-n).join("\n");
}

class PortInUseError extends Error {}

function failure(p: Proc, what: string): Error {
  const tail = tailOf(p);
  const msg = `${what}\n--- last lines of ${p.name} log (${p.logFile}) ---\n${tail}`;
  return /address already in use/i.test(tail) ? new PortInUseError(msg) : new Error(msg);
}

async function generateOpensslCerts(dir: string): Promise<{ certFile: string; keyFile: string; caPem: string }> {
  const ca = join(dir, "ca.crt");
  const caKey = join(dir, "ca.key");
  const key = join(dir, "serving.key");
  const csr = join(dir, "serving.csr");
  const crt = join(dir, "serving.crt");
  const ext = join(dir, "serving.ext");
  await execFileP("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", ca, "-days", "30",
    "-subj", "/CN=plumber-sandbox-ca",
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await execFileP("openssl", [
    "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=kube-apiserver",
  ]);
  await writeFile(
    ext,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      `subjectAltName=IP:127.0.0.1,DNS:localhost,IP:${SERVICE_IP},DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc`,
      "",
    ].join("\n"),
  );
  await execFileP("openssl", [
    "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", crt,
    "-days", "30", "-extfile", ext,
  ]);
  return { certFile: crt, keyFile: key, caPem: await readFile(ca, "utf8") };
}

/** True when the first certificate in the PEM bundle names 127.0.0.1 in its SANs. */
function coversLoopback(pem: string): boolean {
  try {
    return new X509Certificate(pem).checkIP("127.0.0.1") !== undefined;
  } catch {
    return false;
  }
}

function kubeconfigYaml(server: string, caPem: string, token: string): string {
  return yamlStringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: SANDBOX_CONTEXT,
        cluster: { server, "certificate-authority-data": Buffer.from(caPem).toString("base64") },
      },
    ],
    users: [{ name: `${SANDBOX_CONTEXT}-admin`, user: { token } }],
    contexts: [
      {
        name: SANDBOX_CONTEXT,
        context: { cluster: SANDBOX_CONTEXT, user: `${SANDBOX_CONTEXT}-admin`, namespace: "default" },
      },
    ],
    "current-context": SANDBOX_CONTEXT,
    preferences: {},
  });
}

// ---------------------------------------------------------------------------------------------
// The control plane.

/**
 * Starts etcd and kube-apiserver on free loopback ports in a fresh temp dir and resolves once
 * /readyz is 200 and the `default` namespace exists. The kubeconfig (context `plumber-sandbox`)
 * authenticates as a system:masters user by bearer token.
 *
 * Children are killed on stop(), on process exit or SIGINT/SIGTERM/SIGHUP (when nobody else
 * handles them), and by a detached watchdog if this process dies without running any handler.
 */
export async function startControlPlane(opts: StartControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const binDir = opts.binDir ?? (await ensureBinaries({ log }));
  let lastErr: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await startOnce(binDir, opts, log);
    } catch (err) {
      lastErr = err;
      if (!(err instanceof PortInUseError)) throw err;
      log(`control plane: port clash, retrying (${attempt}/3)`);
    }
  }
  throw lastErr;
}

async function startOnce(
  binDir: string,
  opts: StartControlPlaneOptions,
  log: (line: string) => void,
): Promise<ControlPlane> {
  const t0 = Date.now();
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  const verbose = opts.verbose ?? process.env.PLUMBER_SANDBOX_VERBOSE === "1";
  const forward = verbose ? log : undefined;
  installExitHandlers();

  const dataDir = await mkdtemp(join(tmpdir(), "plumber-cp-"));
  const run: LiveRun = { procs: [], dataDir };
  liveRuns.add(run);
  let reaper: Reaper | undefined;
  const armReaper = () => {
    reaper?.disarm();
    reaper = spawnReaper({ pids: run.procs.map((p) => p.pid).filter((p) => p > 0), dirs: [dataDir] });
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      reaper?.disarm();
      const [etcd, ...rest] = run.procs;
      // API server first, so it does not spend its shutdown retrying a vanished etcd.
      await Promise.all(rest.map((p) => stopProc(p, 5000)));
      if (etcd) await stopProc(etcd, 5000);
      liveRuns.delete(run);
      await rm(dataDir, { recursive: true, force: true });
    })());

  try {
    const [etcdPort, peerPort, apiPort] = (await freePorts(3)) as [number, number, number];
    const token = randomBytes(24).toString("hex");
    const server = `https://127.0.0.1:${apiPort}`;

    const certDir = join(dataDir, "certs");
    const tokenFile = join(dataDir, "tokens.csv");
    const saPub = join(dataDir, "sa.pub");
    const saKey = join(dataDir, "sa.key");
    const kubeconfigPath = join(dataDir, "kubeconfig");
    await writeFile(tokenFile, `${token},plumber-admin,plumber-admin,"system:masters"\n`, { mode: 0o600 });
    const sa = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs1", format: "pem" },
    });
    await writeFile(saPub, sa.publicKey);
    await writeFile(saKey, sa.privateKey, { mode: 0o600 });

    // etcd -------------------------------------------------------------------------------
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const etcd = startProc(
      "etcd",
      join(binDir, "etcd"),
      [
        "--name=default",
        `--data-dir=${join(dataDir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        "--initial-cluster-state=new",
        "--unsafe-no-fsync",
        `--quota-backend-bytes=${2 * 1024 * 1024 * 1024}`,
        "--auto-compaction-mode=periodic",
        "--auto-compaction-retention=5m",
        "--log-level=warn",
      ],
      join(dataDir, "etcd.log"),
      forward,
    );
    run.procs.push(etcd);

    // kube-apiserver -----------------------------------------------------------------------
    const forceOpenssl = process.env.PLUMBER_SANDBOX_CERTS === "openssl";
    const apiArgs = (tls?: { certFile: string; keyFile: string }): string[] => [
      "--advertise-address=127.0.0.1",
      "--bind-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--etcd-servers=${etcdUrl}`,
      `--cert-dir=${certDir}`,
      ...(tls ? [`--tls-cert-file=${tls.certFile}`, `--tls-private-key-file=${tls.keyFile}`] : []),
      `--token-auth-file=${tokenFile}`,
      "--authorization-mode=RBAC",
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      // No controller-manager runs, so nothing creates the `default` ServiceAccount that the
      // ServiceAccount admission plugin insists on for pods.
      "--disable-admission-plugins=ServiceAccount",
      "--enable-priority-and-fairness=false",
      "--allow-privileged=true",
      "--profiling=false",
      "--v=1",
      ...(opts.extraApiServerArgs ?? []),
    ];
    let tls: { certFile: string; keyFile: string; caPem: string } | undefined;
    if (forceOpenssl) tls = await generateOpensslCerts(dataDir);

    const startApi = () => {
      const p = startProc("kube-apiserver", join(binDir, "kube-apiserver"), apiArgs(tls), join(dataDir, "kube-apiserver.log"), forward);
      run.procs.push(p);
      armReaper();
      return p;
    };
    let api = startApi();
    log(`control plane: etcd on ${etcdUrl}, kube-apiserver on ${server} (data ${dataDir})`);

    const deadline = t0 + readyTimeoutMs;
    const waitReady = async (p: Proc, until = deadline): Promise<void> => {
      let last: string;
      for (;;) {
        if (etcd.hasExited()) throw failure(etcd, "etcd exited during control-plane startup");
        if (p.hasExited()) throw failure(p, "kube-apiserver exited during startup");
        const r = await httpsGet(`${server}/readyz`, token, { insecure: true }, 2000);
        if (r.status === 200) return;
        last = r.error ? r.error.message : `HTTP ${r.status}: ${r.body.trim().split("\n").filter((l) => l.includes("[-]")).join("; ")}`;
        if (Date.now() > until) {
          const etcdHealth = await httpStatus(`${etcdUrl}/health`);
          throw failure(
            p,
            `kube-apiserver not ready after ${readyTimeoutMs / 1000}s at ${server}/readyz (last: ${last}; etcd /health: ${etcdHealth || "unreachable"})`,
          );
        }
        await sleep(100);
      }
    };
    await waitReady(api);

    let caPem: string;
    if (tls) {
      caPem = tls.caPem;
    } else {
      const bundle = await readFile(join(certDir, "apiserver.crt"), "utf8");
      if (coversLoopback(bundle)) {
        caPem = bundle;
      } else {
        // The self-signed serving cert does not name 127.0.0.1: mint our own and restart.
        log("control plane: self-generated serving cert does not cover 127.0.0.1; using openssl certs");
        await stopProc(api, 5000);
        run.procs.splice(run.procs.indexOf(api), 1);
        tls = await generateOpensslCerts(dataDir);
        caPem = tls.caPem;
        api = startApi();
        await waitReady(api);
      }
    }

    // Verify TLS for real with the CA we hand out, and wait for the bootstrap controller to
    // create the `default` namespace (it does so shortly after /readyz turns 200).
    for (;;) {
      const r = await httpsGet(`${server}/api/v1/namespaces/default`, token, { ca: caPem }, 2000);
      if (r.status === 200) break;
      if (r.error && /certificate|altname|self.signed|verify/i.test(r.error.message)) {
        throw failure(api, `TLS verification against the sandbox CA failed: ${r.error.message}`);
      }
      if (api.hasExited()) throw failure(api, "kube-apiserver exited during startup");
      if (Date.now() > deadline) throw failure(api, `namespace "default" did not appear (last: HTTP ${r.status} ${r.error?.message ?? r.body})`);
      await sleep(100);
    }

    await writeFile(kubeconfigPath, kubeconfigYaml(server, caPem, token), { mode: 0o600 });
    log(`control plane: ready in ${((Date.now() - t0) / 1000).toFixed(1)}s; kubeconfig ${kubeconfigPath}`);
    const killApiserver = async (): Promise<void> => {
      if (!api.hasExited()) {
        try {
          api.child.kill("SIGKILL");
        } catch {
          // gone
        }
      }
      await api.exited;
      const i = run.procs.indexOf(api);
      if (i >= 0) run.procs.splice(i, 1);
    };
    const startApiserver = async (): Promise<void> => {
      if (!api.hasExited()) throw new Error("kube-apiserver is already running");
      // The port was ours a moment ago; a restart on the same port is what clients see as
      // "the apiserver came back", so no port change here.
      api = startApi();
      await waitReady(api, Date.now() + readyTimeoutMs);
    };
    const restartApiserver = async (): Promise<void> => {
      await killApiserver();
      await startApiserver();
    };
    return { kubeconfigPath, server, token, caPem, binDir, dataDir, killApiserver, startApiserver, restartApiserver, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// kubectl and CRDs.

export interface KubectlOptions {
  kubeconfigPath: string;
  /** Directory with kubectl; default: ensureBinaries(). */
  binDir?: string;
  /** Written to kubectl's stdin. */
  input?: string;
  timeoutMs?: number;
}

/** Runs the built kubectl against the given kubeconfig; rejects (with stderr) on non-zero exit. */
export async function kubectl(args: string[], opts: KubectlOptions): Promise<{ stdout: string; stderr: string }> {
  const binDir = opts.binDir ?? (await ensureBinaries());
  const cacheDir = join(dirname(opts.kubeconfigPath), ".kube-cache");
  return new Promise((res, rej) => {
    const child = execFile(
      join(binDir, "kubectl"),
      [`--kubeconfig=${opts.kubeconfigPath}`, `--cache-dir=${cacheDir}`, ...args],
      { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          rej(new Error(`kubectl ${args.join(" ")} failed: ${err.message}\n${stderr}`.trim()));
        } else {
          res({ stdout, stderr });
        }
      },
    );
    child.stdin?.end(opts.input ?? "");
  });
}

/** The Tekton CRDs the demo repo's objects need (examples/crds/tekton.yaml, shipped with the package). */
export function tektonCrdsPath(): string {
  return packageFile("examples", "crds", "tekton.yaml");
}

/**
 * `kubectl apply --server-side -f <yamlFile>` then waits until every CRD in it is Established.
 * Default file: the Tekton CRDs.
 */
export async function installCrds(
  kubeconfigPath: string,
  yamlFile: string = tektonCrdsPath(),
  opts: { binDir?: string; timeoutSeconds?: number } = {},
): Promise<void> {
  const base = { kubeconfigPath, binDir: opts.binDir };
  const timeout = opts.timeoutSeconds ?? 60;
  await kubectl(["apply", "--server-side", "--force-conflicts", "-f", yamlFile], base);
  await kubectl(
    ["wait", "--for=condition=established", `--timeout=${timeout}s`, "-f", yamlFile],
    { ...base, timeoutMs: (timeout + 30) * 1000 },
  );
}
