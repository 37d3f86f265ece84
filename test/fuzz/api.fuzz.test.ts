import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fuzzServer } from "./apiFuzzer.ts";
import { type FuzzFixture, startFuzzFixture } from "./fuzzFixture.ts";

/**
 * A short fuzz run over every procedure and the webhook route on each test run (a fresh seed each
 * time, printed on failure, so that a finding can be replayed with `pnpm fuzz --seed N`). The long
 * runs quoted in the closing notes use `pnpm fuzz --count 20000`.
 */
describe("the HTTP surface under fuzzed input", () => {
  let fixture: FuzzFixture;
  beforeAll(async () => {
    fixture = await startFuzzFixture();
  });
  afterAll(() => fixture?.close());

  it("answers every input without a 5xx, a stack trace, internals or an echo of a large input", async () => {
    const seed = Math.floor(Math.random() * 1_000_000);
    const report = await fuzzServer({
      url: fixture.t.server.url,
      keys: fixture.keys,
      ids: fixture.ids,
      count: 1_500,
      seed,
      concurrency: 6,
      webhookConnectors: ["hubspot", "salesforce", "erp"],
    });
    expect(report.sent).toBe(1_500);
    expect(report.findings, `seed ${seed}: ${JSON.stringify(report.findings.slice(0, 5), null, 1)}`).toEqual([]);
    // The server still serves after the run.
    expect((await fetch(`${fixture.t.server.url}/healthz`)).status).toBe(200);
  });
});
