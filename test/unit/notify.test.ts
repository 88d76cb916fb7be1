import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Dispatcher, type DispatcherOptions } from "../../src/notify/dispatcher.js";
import { slackPayload, slackText } from "../../src/notify/slack.js";
import { commitUrl, NOTIFY_EVENTS, type Notification, type NotificationConfig, type NotifyEvent } from "../../src/notify/types.js";
import { verifySignature } from "../../src/notify/webhook.js";
import { notificationOf } from "../../src/notify/notifier.js";
import { configSchema } from "../../src/config/schema.js";

// ---- a real HTTP receiver on 127.0.0.1 ------------------------------------------------------

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** What the receiver answers: a status, a status with headers, or "hang" (never answer). */
type Answer = number | { status: number; headers?: Record<string, string> } | "hang";

class Receiver {
  readonly received: Received[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];
  private hanging: ServerResponse[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** answer(request, index) decides the response; it may wait (a promise) before answering. */
  static async start(answer: (r: Received, i: number) => Answer | Promise<Answer> = () => 200): Promise<Receiver> {
    const made: { rx?: Receiver } = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const r: Received = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) };
        const rx = made.rx as Receiver;
        const i = rx.received.push(r) - 1;
        rx.wake();
        void Promise.resolve(answer(r, i)).then((a) => {
          if (a === "hang") {
            rx.hanging.push(res);
            return;
          }
          const { status, headers } = typeof a === "number" ? { status: a, headers: {} } : a;
          res.writeHead(status, { "Content-Type": "text/plain", ...headers });
          res.end(status < 300 ? "ok" : "no");
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const rx = new Receiver(server, (server.address() as AddressInfo).port);
    made.rx = rx;
    receivers.push(rx);
    return rx;
  }

  url(path = "/hook"): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Resolves once `count` requests have arrived. */
  waitFor(count: number): Promise<Received[]> {
    if (this.received.length >= count) return Promise.resolve(this.received);
    return new Promise((resolve) => this.waiters.push({ count, resolve: () => resolve(this.received) }));
  }

  private wake(): void {
    const ready = this.waiters.filter((w) => this.received.length >= w.count);
    this.waiters = this.waiters.filter((w) => this.received.length < w.count);
    for (const w of ready) w.resolve();
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const receivers: Receiver[] = [];
const dispatchers: Dispatcher[] = [];

afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((d) => d.close()));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

/** A port nothing listens on: bound, then released. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

interface LogEntry {
  obj: object;
  msg: string;
}

function dispatcher(sinks: NotificationConfig[], opts: DispatcherOptions = {}): { d: Dispatcher; logs: LogEntry[] } {
  const logs: LogEntry[] = [];
  const d = new Dispatcher(sinks, { backoffMs: 5, timeoutMs: 2000, log: { warn: (obj, msg) => logs.push({ obj, msg }) }, ...opts });
  dispatchers.push(d);
  return { d, logs };
}

const SHA = "3f9c2a1b7d4e5f60718293a4b5c6d7e8f9012345";

function note(event: NotifyEvent, extra: Partial<Notification> = {}): Notification {
  return {
    event,
    app: "web",
    cluster: "prod",
    revision: SHA,
    result: "applied 3, pruned 1",
    timestamp: "2024-05-01T10:00:00.000Z",
    ...extra,
  };
}

const sink = (name: string, type: "slack" | "webhook", url: string, on: NotifyEvent[], secret?: string): NotificationConfig => ({
  name,
  type,
  url,
  on,
  ...(secret ? { secret } : {}),
});

// ---- commitUrl ----------------------------------------------------------------------------

describe("commitUrl", () => {
  it.each([
    ["https://github.com/acme/plumbing.git", `https://github.com/acme/plumbing/commit/${SHA}`],
    ["https://github.com/acme/plumbing", `https://github.com/acme/plumbing/commit/${SHA}`],
    ["https://github.com/acme/plumbing.git/", `https://github.com/acme/plumbing/commit/${SHA}`],
    ["https://gitlab.com/acme/infra/plumbing.git", `https://gitlab.com/acme/infra/plumbing/-/commit/${SHA}`],
    ["https://gitlab.example.com/acme/plumbing", `https://gitlab.example.com/acme/plumbing/-/commit/${SHA}`],
    ["https://bitbucket.org/acme/plumbing.git", `https://bitbucket.org/acme/plumbing/commits/${SHA}`],
    ["https://gitea.example.com/acme/plumbing.git", `https://gitea.example.com/acme/plumbing/commit/${SHA}`],
    ["https://codeberg.org/acme/plumbing", `https://codeberg.org/acme/plumbing/commit/${SHA}`],
    ["https://git.example.com:8443/acme/plumbing.git", `https://git.example.com:8443/acme/plumbing/commit/${SHA}`],
  ])("%s", (repo, want) => {
    expect(commitUrl(repo, SHA)).toBe(want);
  });

  it.each([
    ["http (not https)", "http://github.com/acme/plumbing.git"],
    ["ssh", "ssh://git@github.com/acme/plumbing.git"],
    ["scp-like", "git@github.com:acme/plumbing.git"],
    ["credentials", "https://x-access-token:ghp_secret@github.com/acme/plumbing.git"],
    ["user only", "https://deploy@github.com/acme/plumbing.git"],
    ["a query", "https://git.example.com/acme/plumbing.git?token=abc"],
    ["no path", "https://github.com/"],
    ["not a URL", "plumbing"],
  ])("undefined for %s", (_, repo) => {
    expect(commitUrl(repo, SHA)).toBeUndefined();
  });

  it("undefined for a revision that is not a sha", () => {
    expect(commitUrl("https://github.com/acme/plumbing", "main")).toBeUndefined();
    expect(commitUrl("https://github.com/acme/plumbing", "abc/../x")).toBeUndefined();
  });
});

// ---- payloads ------------------------------------------------------------------------------

describe("slack payload", () => {
  it("is delivered as {text, blocks} with a one-line text linking the commit", async () => {
    const rx = await Receiver.start();
    const { d } = dispatcher([sink("team", "slack", rx.url("/services/T000/B000/XXXX"), ["deployed"])]);
    const n = note("deployed", { commitUrl: `https://github.com/acme/plumbing/commit/${SHA}` });
    d.notify(n);
    const [req] = await rx.waitFor(1);
    expect(req?.method).toBe("POST");
    expect(req?.url).toBe("/services/T000/B000/XXXX");
    expect(req?.headers["content-type"]).toMatch(/^application\/json/);
    const body = JSON.parse(req?.body.toString("utf8") ?? "") as { text: string; blocks: { type: string; text?: { text: string }; fields?: { text: string }[] }[] };
    expect(body.text).toBe(`✅ deployed app \`web\` to cluster \`prod\` at <https://github.com/acme/plumbing/commit/${SHA}|\`3f9c2a1\`>: applied 3, pruned 1`);
    expect(body.blocks[0]).toEqual({ type: "section", text: { type: "mrkdwn", text: body.text } });
    const fields = body.blocks.find((b) => b.fields)?.fields?.map((f) => f.text) ?? [];
    expect(fields).toContain("*App*\n`web`");
    expect(fields).toContain("*Cluster*\n`prod`");
    expect(fields).toContain("*Result*\napplied 3, pruned 1");
    expect(body.blocks.at(-1)?.type).toBe("context");
    await d.flush();
    expect(d.stats).toEqual({ delivered: 1, failed: 0, dropped: 0 });
  });

  it("reads well for each event and escapes what is not markup", () => {
    expect(slackText(note("failed", { reason: "HealthCheckFailed", message: "Deployment/web: <LessReady> 1/3 & more" }))).toBe(
      "❌ deploy of app `web` to cluster `prod` at `3f9c2a1` failed: HealthCheckFailed: Deployment/web: &lt;LessReady&gt; 1/3 &amp; more",
    );
    expect(slackText(note("rolledBack", { result: "rolled back to the last healthy revision" }))).toBe(
      "⏪ rolled back app `web` on cluster `prod` to `3f9c2a1`: rolled back to the last healthy revision",
    );
    expect(slackText(note("approvalNeeded", { result: "" }))).toBe("✋ app `web` on cluster `prod` needs approval to deploy `3f9c2a1`");
    const { app: _, ...release } = note("releaseFailed", { release: "nightly", result: "Failed" });
    expect(slackText(release)).toBe("❌ release `nightly` failed on cluster `prod` at `3f9c2a1`: Failed");
    const payload = slackPayload(note("failed", { message: "line1\n```oops```" }));
    expect(JSON.stringify(payload.blocks)).toContain("'''oops'''");
    expect(payload.text).not.toContain("\n");
  });
});

describe("webhook payload", () => {
  it("is the Notification as JSON, with event header and an HMAC-SHA256 signature over the exact bytes", async () => {
    const rx = await Receiver.start();
    const secret = "s3cr3t-key";
    const { d } = dispatcher([sink("ci", "webhook", rx.url(), ["failed"], secret)]);
    const n = note("failed", { reason: "PreCheckFailed", message: "smoke: TestsFailed — «é» ✓", commitUrl: `https://github.com/acme/plumbing/commit/${SHA}` });
    d.notify(n);
    const [req] = await rx.waitFor(1);
    if (!req) throw new Error("nothing received");
    expect(JSON.parse(req.body.toString("utf8"))).toEqual(n);
    expect(req.headers["content-type"]).toBe("application/json");
    expect(req.headers["x-plumber-event"]).toBe("failed");
    expect(Number(req.headers["content-length"])).toBe(req.body.length);
    const sig = req.headers["x-plumber-signature"];
    expect(sig).toBe(`sha256=${createHmac("sha256", secret).update(req.body).digest("hex")}`);
    expect(verifySignature(req.body, secret, String(sig))).toBe(true);
    expect(verifySignature(req.body, "other-key", String(sig))).toBe(false);
    expect(verifySignature(Buffer.concat([req.body, Buffer.from(" ")]), secret, String(sig))).toBe(false);
    expect(req.headers["x-plumber-delivery"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("is unsigned without a secret", async () => {
    const rx = await Receiver.start();
    const { d } = dispatcher([sink("ci", "webhook", rx.url(), ["deployed"])]);
    d.notify(note("deployed"));
    const [req] = await rx.waitFor(1);
    expect(req?.headers["x-plumber-signature"]).toBeUndefined();
    expect(req?.headers["x-plumber-event"]).toBe("deployed");
  });
});

// ---- routing, retries, failures -------------------------------------------------------------

describe("Dispatcher", () => {
  it("routes each event to the sinks whose `on` lists it", async () => {
    const a = await Receiver.start();
    const b = await Receiver.start();
    const { d } = dispatcher([sink("a", "webhook", a.url(), ["deployed", "driftRepaired"]), sink("b", "webhook", b.url(), ["failed", "rolledBack"])]);
    for (const e of ["deployed", "failed", "held", "rolledBack", "releaseFired"] as const) d.notify(note(e));
    await d.flush(5000);
    const events = (r: Receiver): unknown[] => r.received.map((x) => JSON.parse(x.body.toString()).event);
    expect(events(a)).toEqual(["deployed"]);
    expect(events(b)).toEqual(["failed", "rolledBack"]);
    expect(d.stats).toEqual({ delivered: 3, failed: 0, dropped: 0 });
  });

  it("retries after a 500 and delivers the same body", async () => {
    const rx = await Receiver.start((_, i) => (i === 0 ? 500 : 200));
    const { d, logs } = dispatcher([sink("ci", "webhook", rx.url(), ["deployed"], "k")]);
    d.notify(note("deployed"));
    await d.flush(5000);
    expect(rx.received).toHaveLength(2);
    expect(rx.received[1]?.body.equals(rx.received[0]?.body ?? Buffer.alloc(0))).toBe(true);
    expect(rx.received[1]?.headers["x-plumber-delivery"]).toBe(rx.received[0]?.headers["x-plumber-delivery"]);
    expect(d.stats).toEqual({ delivered: 1, failed: 0, dropped: 0 });
    expect(logs).toEqual([]);
  });

  it("retries a 429, honouring Retry-After", async () => {
    const at: number[] = [];
    const rx = await Receiver.start((_, i) => {
      at.push(performance.now());
      return i === 0 ? { status: 429, headers: { "Retry-After": "1" } } : 200;
    });
    const { d } = dispatcher([sink("team", "slack", rx.url(), ["deployed"])], { backoffMs: 5 });
    d.notify(note("deployed"));
    await d.flush(5000);
    expect(rx.received).toHaveLength(2);
    expect(d.stats.delivered).toBe(1);
    // The 5 ms backoff gave way to the server's 1 s (a lower bound: safe on a busy machine).
    expect((at[1] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it("does not retry a 400, and logs the sink name and status but not the URL", async () => {
    const rx = await Receiver.start(() => 400);
    const { d, logs } = dispatcher([sink("team", "slack", rx.url("/services/T000/B000/SECRETPART?token=QUERYSECRET"), ["failed"])]);
    d.notify(note("failed"));
    await d.flush(5000);
    expect(rx.received).toHaveLength(1);
    expect(d.stats).toEqual({ delivered: 0, failed: 1, dropped: 0 });
    expect(logs).toHaveLength(1);
    expect(logs[0]?.obj).toMatchObject({ sink: "team", status: 400, event: "failed", attempts: 1 });
    const logged = JSON.stringify(logs);
    expect(logged).not.toContain("SECRETPART");
    expect(logged).not.toContain("QUERYSECRET");
    expect(logged).not.toContain("/services");
  });

  it("gives up after the configured retries on 5xx", async () => {
    const rx = await Receiver.start(() => 503);
    const { d, logs } = dispatcher([sink("ci", "webhook", rx.url(), ["deployed"])], { retries: 2 });
    d.notify(note("deployed"));
    await d.flush(5000);
    expect(rx.received).toHaveLength(3);
    expect(d.stats).toEqual({ delivered: 0, failed: 1, dropped: 0 });
    expect(logs[0]?.obj).toMatchObject({ sink: "ci", status: 503, attempts: 3 });
  });

  it("times out a receiver that never answers, retrying, then fails", async () => {
    const rx = await Receiver.start(() => "hang");
    const { d, logs } = dispatcher([sink("ci", "webhook", rx.url(), ["deployed"])], { timeoutMs: 150, retries: 1 });
    d.notify(note("deployed"));
    await d.flush(5000);
    expect(rx.received).toHaveLength(2);
    expect(d.stats).toEqual({ delivered: 0, failed: 1, dropped: 0 });
    expect(logs[0]?.obj).toMatchObject({ sink: "ci", error: "ETIMEDOUT", attempts: 2 });
  });

  it("fails on connection refused after its retries", async () => {
    const port = await deadPort();
    const { d, logs } = dispatcher([sink("gone", "webhook", `http://127.0.0.1:${port}/hook`, ["deployed"])], { retries: 2 });
    d.notify(note("deployed"));
    await d.flush(5000);
    expect(d.stats).toEqual({ delivered: 0, failed: 1, dropped: 0 });
    expect(logs[0]?.obj).toMatchObject({ sink: "gone", error: "ECONNREFUSED", attempts: 3 });
  });

  it("notify() returns at once with dead sinks, and a live sink still gets its message", async () => {
    const port = await deadPort();
    const hang = await Receiver.start(() => "hang");
    const live = await Receiver.start();
    const { d } = dispatcher(
      [
        sink("refused", "webhook", `http://127.0.0.1:${port}/hook`, ["deployed"]),
        sink("silent", "slack", hang.url(), ["deployed"]),
        sink("live", "webhook", live.url(), ["deployed"]),
      ],
      // Defaults: 5 s per request, 3 retries, 500 ms backoff: the dead sinks stay busy for long.
      { timeoutMs: 5000, backoffMs: 500 },
    );
    let microtaskRan = false;
    queueMicrotask(() => {
      microtaskRan = true;
    });
    const ret: unknown = d.notify(note("deployed"));
    // notify() is synchronous and void: it returned before even a queued microtask could run,
    // so it cannot have waited for any network I/O.
    expect(ret).toBeUndefined();
    expect(microtaskRan).toBe(false);
    expect(live.received).toHaveLength(0);

    const [got] = await live.waitFor(1);
    expect(JSON.parse(got?.body.toString() ?? "").event).toBe("deployed");
    await hang.waitFor(1);
    // The live sink was not held up behind the dead ones: they are still in their first attempt or backoff.
    await expect.poll(() => d.stats.delivered).toBe(1);
    expect(d.stats.failed).toBe(0);
    // flush() with a bound returns even though the dead sinks are not done.
    await d.flush(50);
    expect(d.stats.failed).toBe(0);
    await d.close();
    expect(d.stats).toEqual({ delivered: 1, failed: 0, dropped: 2 });
  });

  it("bounds each sink's queue, dropping the oldest", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const rx = await Receiver.start(async () => {
      await gate;
      return 200;
    });
    const { d, logs } = dispatcher([sink("ci", "webhook", rx.url(), ["deployed"])], { maxQueue: 3 });
    const results = ["r1", "r2", "r3", "r4", "r5", "r6"];
    d.notify(note("deployed", { result: "r1" }));
    await rx.waitFor(1); // r1 is in flight
    for (const r of results.slice(1)) d.notify(note("deployed", { result: r }));
    expect(d.stats.dropped).toBe(2);
    expect(logs.map((l) => l.msg)).toEqual([expect.stringMatching(/queue full/), expect.stringMatching(/queue full/)]);
    release();
    await d.flush(5000);
    expect(rx.received.map((x) => JSON.parse(x.body.toString()).result)).toEqual(["r1", "r4", "r5", "r6"]);
    expect(d.stats).toEqual({ delivered: 4, failed: 0, dropped: 2 });
  });

  it("never throws from notify(): an unusable URL or payload is counted as failed", async () => {
    const rx = await Receiver.start();
    const { d, logs } = dispatcher([
      sink("bad", "slack", "not a url/services/T000/SECRETPART", ["deployed"]),
      sink("ok", "webhook", rx.url(), ["deployed"]),
    ]);
    expect(() => d.notify(note("deployed"))).not.toThrow();
    // A value JSON cannot encode: preparing the request throws inside notify(), which must not.
    expect(() => d.notify(note("deployed", { message: 10n as unknown as string }))).not.toThrow();
    await d.flush(5000);
    expect(rx.received).toHaveLength(1);
    expect(d.stats).toEqual({ delivered: 1, failed: 3, dropped: 0 });
    expect(JSON.stringify(logs)).not.toContain("SECRETPART");
  });

  it("flush() resolves at once when idle, and notify() after close() does nothing", async () => {
    const rx = await Receiver.start();
    const { d } = dispatcher([sink("ci", "webhook", rx.url(), ["deployed"])]);
    await d.flush();
    await d.close();
    d.notify(note("deployed"));
    await d.flush();
    expect(rx.received).toHaveLength(0);
    expect(d.stats).toEqual({ delivered: 0, failed: 0, dropped: 0 });
  });
});

describe("notifications from observed events", () => {
  const sha = "0123456789abcdef0123456789abcdef01234567";
  const now = new Date("2026-11-21T02:00:00.000Z");
  const url = "https://github.com/acme/plumbing.git";

  it("a deploy event is the notification of its outcome, fields in the order webhooks have always sent", () => {
    const n = notificationOf({ type: "deploy", outcome: "rolledBack", app: "tasks", cluster: "prod", revision: sha, result: "rolled back", reason: "Unhealthy", message: "timeout" }, url, now);
    expect(JSON.stringify(n)).toBe(
      JSON.stringify({
        event: "rolledBack",
        app: "tasks",
        cluster: "prod",
        revision: sha,
        result: "rolled back",
        reason: "Unhealthy",
        message: "timeout",
        timestamp: "2026-11-21T02:00:00.000Z",
        commitUrl: `https://github.com/acme/plumbing/commit/${sha}`,
      }),
    );
  });

  it("release steps: fired, succeeded or failed when finished, failed on error or a missed slot; nothing for the rest", () => {
    const rel = (step: "fired" | "skipped" | "missed" | "finished" | "cancelled" | "error", result?: "Succeeded" | "Failed") =>
      notificationOf({ type: "release", step, release: "nightly", cluster: "ci", ...(result ? { record: { slot: "s", trigger: "scheduled", result, revision: sha, reason: result } } : {}) }, url, now);
    expect(rel("fired")?.event).toBe("releaseFired");
    expect(rel("finished", "Succeeded")?.event).toBe("releaseSucceeded");
    expect(rel("finished", "Failed")?.event).toBe("releaseFailed");
    expect(rel("error")?.event).toBe("releaseFailed");
    expect(rel("missed")?.event).toBe("releaseFailed");
    expect(rel("skipped")).toBeUndefined();
    expect(rel("cancelled")).toBeUndefined();
    expect(JSON.stringify(rel("finished", "Succeeded"))).toBe(
      JSON.stringify({
        event: "releaseSucceeded",
        release: "nightly",
        cluster: "ci",
        revision: sha,
        result: "Succeeded",
        reason: "Succeeded",
        commitUrl: `https://github.com/acme/plumbing/commit/${sha}`,
        timestamp: "2026-11-21T02:00:00.000Z",
      }),
    );
    // Without a record: the step is the result, no revision, no link.
    expect(rel("error")).toMatchObject({ revision: "", result: "error", commitUrl: undefined });
  });

  it("cycle, object and source events are not notifications; every name in a sink's `on` list can be sent", () => {
    expect(notificationOf({ type: "cycle", app: "tasks", cluster: "prod", outcome: "failed", message: "x", durationMs: 1 }, url, now)).toBeUndefined();
    expect(notificationOf({ type: "source", repo: "plumbing", apps: [], health: {}, changes: [] }, url, now)).toBeUndefined();
    // The names a sink may list in the config are exactly the names sent.
    const schema = configSchema() as unknown as { $defs: { notification: { properties: { on: { items: { enum: string[] } } } } } };
    expect(NOTIFY_EVENTS).toEqual(schema.$defs.notification.properties.on.items.enum);
  });
});

