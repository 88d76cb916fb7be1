// Notifications from real deploys to real local HTTP receivers: payloads, HMAC signatures, and a
// dead sink that must not hold up a deploy.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { verifySignature } from "../../src/notify/webhook.js";
import { ControlStore } from "../../src/state/control.js";
import { sleep } from "../../src/util/pool.js";
import { configMap, harness, type Harness } from "./support.js";

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
}

async function receiver(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ server: Server; url: string; got: Received[] }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      got.push({ headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

async function waitFor<T>(fn: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = fn();
    if (v !== undefined) return v;
    await sleep(25);
  }
  throw new Error("timed out waiting");
}

describe("notifications", () => {
  it("sends signed webhook and Slack payloads for deploys and approvals, and a dead sink delays nothing", async () => {
    const hook = await receiver((_q, res) => res.writeHead(204).end());
    const slack = await receiver((_q, res) => res.writeHead(200).end("ok"));
    let hanging = 0;
    const dead = await receiver(() => {
      hanging++; // never answers
    });
    cleanup.push(() => {
      hook.server.close();
      slack.server.close();
      dead.server.closeAllConnections();
      dead.server.close();
    });

    // The harness writes the config next to these files; sink URLs and keys come only from files.
    const h: Harness = await harness({ "a.yaml": configMap("a", { v: "1" }) });
    cleanup.push(() => h.close());
    await writeFile(join(h.dir, "hook-url"), hook.url);
    await writeFile(join(h.dir, "hook-secret"), "s3cret-key");
    await writeFile(join(h.dir, "slack-url"), slack.url);
    await writeFile(join(h.dir, "dead-url"), dead.url);
    await h.reconfigure({
      app: { approval: "manual" },
      notifications: [
        { name: "hook", type: "webhook", urlFile: "hook-url", secretFile: "hook-secret", on: ["deployed", "approvalNeeded"] },
        { name: "chat", type: "slack", urlFile: "slack-url", on: ["deployed"] },
        { name: "dead", type: "webhook", urlFile: "dead-url", on: ["deployed", "approvalNeeded"] },
      ],
    });
    const rev = await h.repo.head("main");

    expect((await h.cycle()).kind).toBe("held");
    const approval = await waitFor(() => hook.got.find((r) => r.headers["x-plumber-event"] === "approvalNeeded"));
    expect(JSON.parse(approval.body)).toMatchObject({ event: "approvalNeeded", app: h.app, cluster: "local", revision: rev });

    await new ControlStore(h.kube, h.stateNamespace).update(h.app, { approvedRevision: rev });
    expect((await h.cycle()).kind).toBe("applied");
    // The dead sink holds its first request open and has not answered; the deploy finished anyway.
    expect(hanging).toBeGreaterThanOrEqual(1);

    const deployed = await waitFor(() => hook.got.find((r) => r.headers["x-plumber-event"] === "deployed"));
    const payload = JSON.parse(deployed.body);
    expect(payload).toMatchObject({ event: "deployed", app: h.app, cluster: "local", revision: rev, result: "Applied" });
    expect(verifySignature(deployed.body, "s3cret-key", deployed.headers["x-plumber-signature"] as string)).toBe(true);
    expect(verifySignature(deployed.body, "other-key", deployed.headers["x-plumber-signature"] as string)).toBe(false);

    const chat = await waitFor(() => slack.got[0]);
    const text = JSON.parse(chat.body).text as string;
    expect(text).toContain(h.app);
    expect(text).toContain(rev.slice(0, 7));
    // Slack only asked for deployed: no approval message there.
    expect(slack.got).toHaveLength(1);
  });
});
