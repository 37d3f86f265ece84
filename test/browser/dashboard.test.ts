import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hubSpotFakeToken, type ServedHubSpotFake, serveHubSpotFake } from "@tandem/testkit";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer, trpcCode } from "../support/server.ts";

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
const FAILURES_SCREENSHOT = join(tmpdir(), "tandem-dashboard-failures.png");

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
    // Alerts evaluated every 2 s, so a failing connection fires within the test.
    t = await startTestServer("pglite", { TANDEM_ALERTS_CRON: "*/2 * * * * *" });
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
    // Script errors and CSP violations both surface here. API answers of 4xx (already_running,
    // a refused key) are expected: Chromium logs each one, so those lines are left out.
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (
        m.type() === "error" &&
        !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())
      )
        pageErrors.push(m.text());
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

    // A second trigger of a live sync answers already_running; the page follows that job instead.
    fake.fake.knobs.latencyMs = 1_500;
    const companies = page.locator('#entities tr[data-entity="companies"]');
    await companies.locator('button[data-sync="full"]').click();
    await expect.poll(() => page.locator("#notice").textContent()).toContain("Queued a full sync of companies");
    const jobId = await page.locator("#live-job code").textContent();
    await companies.locator('button[data-sync="delta"]').click();
    await expect.poll(() => page.locator("#notice").textContent()).toContain("already running; following it");
    expect(await page.locator("#live-job code").textContent()).toBe(jobId);
    fake.fake.knobs.latencyMs = 0;
    await page.locator('#live-job [data-job-status="completed"]').waitFor({ timeout: 30_000 });
    await expect
      .poll(() => companies.locator('td[data-mode="full"]').textContent(), { timeout: 10_000 })
      .toContain("5 created");

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

  it("lists dead letters and firing alerts; retries and discards a dead job by click", async () => {
    const api = t.client(key);
    const broken = await api.connections.create.mutate({
      connector: "hubspot",
      name: "Revoked CRM",
      config: { baseUrl: fake.url, accessToken: "pat-revoked" },
    });
    const rule = await api.alerts.setRule.mutate({
      name: "revoked failures",
      kind: "sync_failures",
      connectionId: broken.id,
      params: { failures: 1, windowMinutes: 60 },
    });
    const jobs = await Promise.all(
      ["contacts", "companies"].map((entity) =>
        api.sync.trigger.mutate({ connectionId: broken.id, entity, mode: "full" }),
      ),
    );
    for (const { jobId } of jobs) {
      await expect
        .poll(async () => (await api.jobs.get.query({ id: jobId })).job.status, { timeout: 30_000 })
        .toBe("dead");
    }
    await expect
      .poll(async () => (await api.alerts.list.query({ status: "firing", ruleId: rule.id })).items.length, {
        timeout: 20_000,
      })
      .toBeGreaterThan(0);

    await page.click("#refresh");
    const [retried, discarded] = jobs.map(({ jobId }) => page.locator(`#dead-letters tr[data-dead-letter="${jobId}"]`));
    await retried!.waitFor({ timeout: 10_000 });
    expect(await retried!.textContent()).toContain("Revoked CRM");
    expect(await retried!.textContent()).toContain("AuthExpired");
    const attempts = (await api.deadLetters.list.query({})).find((d) => d.id === jobs[0]!.jobId)!.attempts.length;
    expect(await retried!.locator("td").nth(3).textContent()).toBe(String(attempts));
    expect(await page.locator("#alerts").textContent()).toContain("revoked failures");
    expect(await page.locator("#alerts").textContent()).toContain("Revoked CRM");

    await retried!.locator("button", { hasText: "Retry" }).click();
    await expect.poll(() => page.locator("#notice").textContent()).toContain("again");
    page.once("dialog", (dialog) => dialog.accept());
    await discarded!.locator("button", { hasText: "Discard" }).click();
    await expect.poll(() => page.locator("#notice").textContent()).toContain("Discarded");
    await discarded!.waitFor({ state: "detached", timeout: 10_000 });
    expect(await trpcCode(api.jobs.get.query({ id: jobs[1]!.jobId }))).toBe("NOT_FOUND");
    expect((await api.jobs.get.query({ id: jobs[0]!.jobId })).job.attempts).toBeGreaterThan(0);

    await page.screenshot({ path: FAILURES_SCREENSHOT, fullPage: true });
    console.info(`dashboard screenshot with failures: ${FAILURES_SCREENSHOT}`);
    expect(pageErrors).toEqual([]);
  }, 90_000);

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
