// The dashboard (#14) in real headless Chromium: `plumber run --dashboard-listen` deploying a
// fleet from the real git server into the real control plane (test/browser/fleet.ts), people
// with ServiceAccount tokens and RBAC that the apiserver enforces (test/bed/tokens.ts). Each page
// is saved under test-output/screenshots/; `npm run screenshot` also writes docs/dashboard.png.
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findRepoRoot } from "../bed/paths.js";
import { PHONE, screenshot, useBrowser } from "../bed/browser.js";
import { APPS, RELEASE, SECRET_VALUE, startFleet, type Fleet } from "./fleet.js";

/** The fleet page's order of phases: problems first. */
const RANK = ["Halted", "Failed", "WaitingApproval", "Verifying", "Ready", "Unknown"];
/** Enough for the dashboard's refresh and plumber's 1 s cycles, on a loaded 2-core machine. */
const SETTLE_MS = 60_000;

describe("dashboard in a browser", () => {
  const browser = useBrowser();
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await startFleet();
  });
  afterAll(async () => {
    await fleet?.close();
  });

  const row = (page: Page, app: string) => page.locator(`tr[data-testid="fleet-row"][data-app="${app}"]`);
  const rows = (page: Page) =>
    page.locator('tr[data-testid="fleet-row"]').evaluateAll((trs) => trs.map((tr) => ({ app: tr.getAttribute("data-app"), phase: tr.getAttribute("data-phase") })));

  /** Logs in as a person would: the labelled token field of /login, then the button. */
  async function login(page: Page, token: string): Promise<void> {
    await page.goto(`${fleet.url}/login`);
    await page.getByLabel("Bearer token").fill(token);
    await Promise.all([page.waitForURL(`${fleet.url}/`), page.locator('[data-testid="login"]').click()]);
  }

  it("the fleet page lists the failing app first, then the ones waiting for approval, then the ready ones", async () => {
    const page = await browser.page();
    await page.goto(`${fleet.url}/`);
    const listed = await rows(page);
    expect(listed[0]).toEqual({ app: APPS.failing, phase: "Failed" });
    expect(listed.map((r) => r.app).sort()).toEqual(Object.values(APPS).sort());
    const ranks = listed.map((r) => RANK.indexOf(r.phase ?? ""));
    expect(ranks.every((r) => r >= 0)).toBe(true);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    expect(await row(page, APPS.review).getAttribute("data-phase")).toBe("WaitingApproval");
    expect(await row(page, APPS.ready).locator('[data-col="revision"]').textContent()).toContain(fleet.initial.ready.slice(0, 7));
    await screenshot(page, "fleet");
    if (process.env.PLUMBER_DOCS_SCREENSHOT) await page.screenshot({ path: join(findRepoRoot(), "docs", "dashboard.png") });

    // A phone: the same list, problems first, and nothing wider than the screen.
    const phone = await browser.page(PHONE);
    await phone.goto(`${fleet.url}/`);
    expect((await rows(phone))[0]?.app).toBe(APPS.failing);
    expect(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await screenshot(phone, "fleet-phone");
  });

  it("an approval with an authorised token moves the app from WaitingApproval to deployed", async () => {
    const page = await browser.page();
    await login(page, fleet.people.approver.token);
    await page.goto(`${fleet.url}/apps/${APPS.approve}`);
    await page.locator('[data-testid="approve"]').click();
    // The flash is on the page the POST redirects back to.
    await page.locator('[data-testid="flash"]').waitFor();
    expect((await fleet.control("approve"))?.approvedRevision).toBe(fleet.initial.approve);
    await fleet.until("approve", "deployed", (d) => d.phase === "Ready" && d.revision === fleet.initial.approve);
    // The open page follows (live update): deployed, and the history names who approved it.
    await page.locator(`[data-testid="app-summary"][data-phase="Ready"]`).waitFor({ timeout: SETTLE_MS });
    const deployed = page.locator(`[data-testid="history-item"][data-revision="${fleet.initial.approve}"]`);
    expect(await deployed.getAttribute("data-result")).toBe("Applied");
    expect(await deployed.locator('[data-testid="by"]').textContent()).toBe(fleet.people.approver.username);
    await page.goto(`${fleet.url}/`);
    expect(await row(page, APPS.approve).getAttribute("data-phase")).toBe("Ready");
  });

  it("an approval with an unauthorised token is refused: 403 shown, nothing recorded", async () => {
    const page = await browser.page();
    await login(page, fleet.people.viewer.token);
    await page.goto(`${fleet.url}/apps/${APPS.refuse}`);
    const [answer] = await Promise.all([page.waitForResponse((r) => r.request().method() === "POST"), page.locator('[data-testid="approve"]').click()]);
    expect(answer.status()).toBe(403);
    await page.locator('[data-testid="forbidden"]').waitFor();
    expect((await fleet.control("refuse"))?.approvedRevision).toBeUndefined();
    expect(await fleet.state("refuse")).toMatchObject({ phase: "WaitingApproval", pendingRevision: fleet.initial.refuse, history: "[]" });
  });

  it("a live update shows a new deploy without a reload", async () => {
    const page = await browser.page();
    await page.goto(`${fleet.url}/`);
    let navigations = 0;
    page.on("framenavigated", (f) => {
      if (f === page.mainFrame()) navigations++;
    });
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    const cell = row(page, APPS.live).locator('[data-col="revision"]');
    expect(await cell.textContent()).toContain(fleet.initial.live.slice(0, 7));

    const rev = await fleet.repos.live.commit({ "config.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: catalog-config\ndata:\n  channel: stable\n` }, "catalog: stable channel");
    await page.waitForFunction(
      ([app, sha]) => document.querySelector(`tr[data-app="${app}"] [data-col="revision"]`)?.textContent?.includes(sha) ?? false,
      [APPS.live, rev.slice(0, 7)] as const,
      { timeout: SETTLE_MS, polling: 100 },
    );
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(navigations).toBe(0);
  });

  it("the app page renders the pending diff, Secret values masked", async () => {
    const page = await browser.page();
    await page.goto(`${fleet.url}/apps/${APPS.review}`);
    const diff = (await page.locator('[data-testid="pending"] [data-testid="diff"]').textContent()) ?? "";
    expect(diff).toContain("operator-config");
    expect(diff).toContain("channel: stable");
    expect(diff).toContain("operator-webhook");
    expect(diff).toContain("***");
    const html = await page.content();
    expect(html).not.toContain(SECRET_VALUE);
    expect(html).not.toContain(Buffer.from(SECRET_VALUE).toString("base64"));
    await screenshot(page, "app");
  });

  it("the read-only views render with JavaScript disabled", async () => {
    const page = await browser.page({ javaScriptEnabled: false });
    await page.goto(`${fleet.url}/`);
    expect((await rows(page)).length).toBe(Object.keys(APPS).length);
    // The filters are a plain GET form.
    await page.locator('#filters select[name="state"]').selectOption("Failed");
    await Promise.all([page.waitForURL(/state=Failed/), page.locator('#filters [type="submit"]').click()]);
    expect(await rows(page)).toEqual([{ app: APPS.failing, phase: "Failed" }]);

    await page.goto(`${fleet.url}/apps/${APPS.failing}`);
    expect(await page.locator('[data-testid="history-item"]').count()).toBeGreaterThan(0);
    // The last error points at the file and line.
    expect(await page.locator('[data-testid="last-error"]').textContent()).toContain("config.yaml:1");

    await page.goto(`${fleet.url}/releases`);
    const release = page.locator(`[data-testid="release"][data-release="${RELEASE}"]`);
    expect(await release.textContent()).toContain("Europe/Berlin");
    // 02:00 in Berlin is 01:00 UTC in winter, 00:00 in summer: the UTC column is converted, not copied.
    const utc = await release.locator('[data-testid="next-fire"] time').allTextContents();
    expect(utc.length).toBeGreaterThan(0);
    for (const t of utc) expect(t).toMatch(/T0[01]:00:00Z$/);
    await screenshot(page, "releases");

    await page.goto(`${fleet.url}/events`);
    expect(await page.locator('[data-testid="event"][data-kind="deploy"]').filter({ hasText: APPS.ready }).count()).toBeGreaterThan(0);
    await screenshot(page, "events");
  });

  it("keyboard: the approve control is reachable with Tab and labelled", async () => {
    const page = await browser.page();
    await login(page, fleet.people.approver.token);
    await page.goto(`${fleet.url}/apps/${APPS.review}`);
    let reached = false;
    for (let i = 0; i < 80 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement?.getAttribute("data-testid") === "approve");
    }
    expect(reached).toBe(true);
    // Found by its role and accessible name, as a screen reader announces it.
    const named = page.getByRole("button", { name: /approve/i });
    expect(await named.count()).toBe(1);
    expect(await named.getAttribute("data-testid")).toBe("approve");
  });
});
