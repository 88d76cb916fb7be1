// Test support: real headless Chromium (Debian's, never a downloaded build) driven by
// playwright-core. One browser per test file, a fresh context (cookies, storage, JavaScript on or
// off, viewport) per test, and screenshots under test-output/screenshots/ for a person to look at.
import { mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll } from "vitest";
import { findRepoRoot } from "./paths.js";

const DEFAULT_CHROMIUM = "/usr/bin/chromium";

/** PLUMBER_CHROMIUM, else Debian's; an error that says how to get one when neither is there. */
export function chromiumPath(): string {
  const path = process.env.PLUMBER_CHROMIUM || DEFAULT_CHROMIUM;
  if (!existsSync(path)) {
    throw new Error(
      `no Chromium at ${path}: install Debian's (apt-get install chromium; .ci/run does) or point PLUMBER_CHROMIUM at a Chromium binary`,
    );
  }
  return path;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Chromium refuses to start its sandbox as root (CI runs as root); as anyone else keep it.
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
}

/** A phone-sized viewport (a small Android phone, portrait). */
export const PHONE: BrowserContextOptions = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 };

export function screenshotDir(): string {
  return join(findRepoRoot(), "test-output", "screenshots");
}

let taken = 0;

/** Writes test-output/screenshots/<name>.png (the whole page) and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const dir = screenshotDir();
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${name.replace(/[^\w.-]+/g, "-")}.png`);
  await page.screenshot({ path, fullPage: true });
  taken++;
  return path;
}

export interface BrowserBed {
  /** A new context for this test (closed after it), and a page in it. */
  page(opts?: BrowserContextOptions): Promise<Page>;
  context(opts?: BrowserContextOptions): Promise<BrowserContext>;
}

/**
 * Registers the file's hooks: the browser starts before its first test and stops after its last;
 * each test's contexts close after it, so no cookie or token leaks into the next test (tests pass
 * in any order).
 */
export function useBrowser(): BrowserBed {
  let browser: Browser | undefined;
  let open: BrowserContext[] = [];
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterEach(async (ctx) => {
    const closing = open;
    open = [];
    // What the browser showed when a test failed: the first thing to look at.
    if (ctx.task.result?.state === "fail") {
      const pages = closing.flatMap((c) => c.pages());
      for (const [i, p] of pages.entries()) await screenshot(p, `failed-${ctx.task.name}${pages.length > 1 ? `-${i + 1}` : ""}`).catch(() => undefined);
    }
    await Promise.all(closing.map((c) => c.close()));
  });
  afterAll(async () => {
    await browser?.close();
    if (taken > 0) process.stderr.write(`[browser] screenshots in ${screenshotDir()}\n`);
  });
  const context = async (opts: BrowserContextOptions = {}): Promise<BrowserContext> => {
    if (!browser) throw new Error("useBrowser(): the browser starts in beforeAll; call page()/context() inside a test");
    const c = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...opts });
    open.push(c);
    return c;
  };
  return {
    context,
    async page(opts) {
      return (await context(opts)).newPage();
    },
  };
}
