import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hubSpotFakeToken, type ServedHubSpotFake, serveHubSpotFake } from "@tandem/testkit";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

/** Debian's Chromium: playwright-core drives it but ships no browser (`.ci/run` installs it). */
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SCREENSHOT = join(tmpdir(), "tandem-dashboard.png");

describe("the dashboard at /", () => {
  let t: TestServer;
  let fake: ServedHubSpotFake;
  let browser: Browser;
  let page: Page;
  let key: string;
  const pageErrors: Array<string> = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
    fake = await serveHubSpotFake({ port: 0 });
    fake.fake.seedContacts(120);
    fake.fake.seedCompanies(5);
    t = await startTestServer("pglite");
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "Acme" });
    key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "dashboard" })).key;
    await t.client(key).connections.create.mutate({
      connector: "hubspot",
      name: "Acme CRM",
      config: { baseUrl: fake.url, accessToken: hubSpotFakeToken },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
    // Script errors and CSP violations both surface here.
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text());
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await fake?.close();
  });

  it("serves the page and its assets with their content types, and nothing else under /dashboard", async () => {
    const index = await fetch(`${t.server.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(index.headers.get("content-security-policy")).toContain("script-src 'self'");
    const js = await fetch(`${t.server.url}/dashboard/dashboard.js`);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const css = await fetch(`${t.server.url}/dashboard/dashboard.css`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    for (const path of ["/dashboard/dashboard.ts", "/dashboard/..%2fhttp.ts", "/dashboard/%2e%2e%2fcontext.ts"]) {
      expect((await fetch(`${t.server.url}${path}`)).status, path).toBe(404);
    }
  });

  it("asks for a key, runs a full sync by click, follows it live and shows the finished run", async () => {
    await page.goto(t.server.url);
    await page.fill("#api-key", key);
    await page.click("#key-form button[type=submit]");

    const connectionRow = page.locator("#connections tbody tr").first();
    await expect.poll(() => connectionRow.textContent(), { timeout: 10_000 }).toContain("Acme CRM");
    expect(await connectionRow.textContent()).toContain("active");

    const contacts = page.locator('#entities tr[data-entity="contacts"]');
    await contacts.waitFor({ timeout: 10_000 });
    expect(await contacts.locator('td[data-mode="full"]').textContent()).toContain("never");
    await contacts.locator('button[data-sync="full"]').click();

    // Live progress arrives over SSE, authenticated by the key in tRPC's connection params.
    const live = page.locator('#live-job [data-job-status="completed"]');
    await live.waitFor({ timeout: 30_000 });
    expect(await live.textContent()).toMatch(/Created\s*120/);

    // The finished job refreshes the status: the full run with its counts, and a freshness.
    await expect
      .poll(() => contacts.locator('td[data-mode="full"]').textContent(), { timeout: 10_000 })
      .toContain("120 created");
    expect(await contacts.locator('td[data-mode="full"]').textContent()).toContain("succeeded");
    expect(await contacts.locator("td.freshness").textContent()).toMatch(/\d+ s/);
    expect(await page.locator("#status-summary").textContent()).toContain("contacts full");
    await expect.poll(() => page.locator("#jobs tbody").textContent()).toContain("completed");
    expect(await page.locator("#conflicts").textContent()).toContain("No open conflicts.");
    expect(await page.locator("#dead-letters").textContent()).toContain("No dead letters.");

    // Pausing shows in the status and the connection list; resuming undoes it.
    await page.click("#pause-toggle");
    await expect.poll(() => page.locator("#pause-toggle").textContent()).toBe("Resume schedules");
    await expect.poll(() => connectionRow.textContent()).toContain("paused");
    await page.click("#pause-toggle");
    await expect.poll(() => page.locator("#pause-toggle").textContent()).toBe("Pause schedules");

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.info(`dashboard screenshot: ${SCREENSHOT}`);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("refuses a wrong key and returns to the key form", async () => {
    await page.click("#forget-key");
    await page.fill("#api-key", "tk_not-a-real-key");
    await page.click("#key-form button[type=submit]");
    await expect.poll(() => page.locator("#notice").textContent(), { timeout: 10_000 }).toContain("refused");
    expect(await page.locator("#key-form").isVisible()).toBe(true);
    expect(await page.locator("#main").isVisible()).toBe(false);
    expect(await page.evaluate(() => sessionStorage.getItem("tandem.apiKey"))).toBeNull();
  });
});
