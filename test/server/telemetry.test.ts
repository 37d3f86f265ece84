import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

interface ExportedSpan {
  readonly name: string;
  readonly traceId: string;
}

/** A real OTLP/HTTP receiver on loopback, collecting exported spans. */
const startCollector = async () => {
  const spans: Array<ExportedSpan> = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      if (req.url === "/v1/traces") {
        const payload = JSON.parse(body) as {
          resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<ExportedSpan> }> }>;
        };
        for (const r of payload.resourceSpans) for (const s of r.scopeSpans) spans.push(...s.spans);
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, close: () => server.close() };
};

describe("tracing", () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let t: TestServer;
  const lines: Array<string> = [];

  beforeAll(async () => {
    vi.spyOn(console, "log").mockImplementation((line: unknown) => {
      lines.push(String(line));
    });
    collector = await startCollector();
    t = await startTestServer("pglite", { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, LOG_LEVEL: "debug" });
  });
  afterAll(async () => {
    await t?.close();
    collector?.close();
    vi.restoreAllMocks();
  });

  it("exports a span per procedure and service call over OTLP, and logs carry its trace id", async () => {
    await t.client(t.adminKey).tenants.create.mutate({ name: "traced" });
    await expect.poll(() => collector.spans.map((s) => s.name), { timeout: 10_000 }).toContain("trpc.tenants.create");
    const procedure = collector.spans.find((s) => s.name === "trpc.tenants.create");
    const service = collector.spans.find((s) => s.name === "Tenants.create");
    expect(service?.traceId).toBe(procedure?.traceId);
    const log = lines
      .map((l) => JSON.parse(l) as { message: unknown; traceId?: string; annotations?: { procedure?: string } })
      .find((l) => l.annotations?.procedure === "tenants.create");
    expect(log?.traceId).toBe(procedure?.traceId);
  });
});
