import http from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "../../src/kube/kubeconfig.js";
import { afterEach, describe, expect, it } from "vitest";
import { KubeClient, MAX_RETRY_AFTER_MS, parseRetryAfter, parseWarnings, retryDelayMs } from "../../src/kube/client.js";

describe("Warning headers", () => {
  it("reads the quoted text of each warning, one header or several, escapes undone", () => {
    expect(parseWarnings(["Warning", '299 - "example.com/v1beta1 Widget is deprecated; use example.com/v1 Widget"'])).toEqual([
      "example.com/v1beta1 Widget is deprecated; use example.com/v1 Widget",
    ]);
    expect(parseWarnings(["warning", '299 - "a, b", 299 - "say \\"c\\""', "Content-Type", "x", "Warning", '299 - "d"'])).toEqual(["a, b", 'say "c"', "d"]);
  });
});

describe("Retry-After", () => {
  it("is honoured in seconds and as a date, bounded, else exponential backoff", () => {
    expect(parseRetryAfter("3")).toBe(3);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 5_000)).toBe(5);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(retryDelayMs(0, 3)).toBe(3000);
    expect(retryDelayMs(0, 3600)).toBe(MAX_RETRY_AFTER_MS);
    expect(retryDelayMs(2, undefined)).toBe(400);
  });

  let server: http.Server | undefined;
  afterEach(() => server?.close());

  it("a 429 with Retry-After is retried after the time the server asked for", async () => {
    let calls = 0;
    server = http.createServer((_req, res) => {
      calls++;
      if (calls < 3) {
        res.writeHead(429, { "Retry-After": calls === 1 ? "2" : "120", "Content-Type": "application/json" });
        res.end(JSON.stringify({ kind: "Status", reason: "TooManyRequests", message: "slow down" }));
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json", Warning: '299 - "v1 Thing is deprecated"' });
      res.end("{}");
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const waits: number[] = [];
    const client = await KubeClient.create(kc, { sleep: async (ms) => void waits.push(ms) });
    try {
      const res = await client.request({ method: "GET", path: "/api/v1/namespaces/x" });
      expect(res.status).toBe(200);
      expect(res.warnings).toEqual(["v1 Thing is deprecated"]);
      expect(waits).toEqual([2000, MAX_RETRY_AFTER_MS]);
      expect(calls).toBe(3);
    } finally {
      client.close();
    }
  });
});
