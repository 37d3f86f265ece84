import { readFileSync } from "node:fs";
import { request } from "node:http";
import { type DatabaseConfig, generateApiKey, generateSecretKey } from "@tandem/core";
import type { AppRouter } from "@tandem/server";
import { freshDatabaseConfig } from "@tandem/testkit";
import { createTRPCClient, httpLink } from "@trpc/client";
import { Effect, Exit, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SpawnedTandem, spawnTandem } from "../support/process.ts";

const BODY_BYTES = 100 * 1024 * 1024;

/** The process's peak resident set so far, in bytes (Linux). */
const peakRss = (pid: number) => {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1]) * 1024;
};

/**
 * POSTs a `sync.push` body of `BODY_BYTES` (about 2.8M changes), written as the socket takes it,
 * with a content-length or chunked. Resolves with the answer, or with the error if the server
 * dropped the connection without one.
 */
const pushHuge = (url: string, key: string, connectionId: string, declareLength: boolean) =>
  new Promise<{ status: number; body: string } | { error: string }>((resolve) => {
    const head = Buffer.from(`{"connectionId":"${connectionId}","entity":"contacts","changes":[`);
    const chunk = Buffer.from(`${'{"externalId":"1","fields":{}},'.repeat(2_000)}`);
    const tail = Buffer.from(`{"externalId":"1","fields":{}}]}`);
    const chunks = Math.floor((BODY_BYTES - head.length - tail.length) / chunk.length);
    const req = request(`${url}/trpc/sync.push`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${key}`,
        "content-type": "application/json",
        ...(declareLength ? { "content-length": head.length + chunks * chunk.length + tail.length } : {}),
      },
    });
    let answered = false;
    req.on("response", (response) => {
      answered = true;
      let body = "";
      response.on("data", (c: Buffer) => {
        body += c.toString();
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    // Writing may fail once the server has answered and closed: the answer is what counts.
    req.on("error", (e) => {
      if (!answered) resolve({ error: e.message });
    });
    let sent = 0;
    const write = () => {
      if (sent === 0) req.write(head);
      while (sent < chunks && !answered) {
        sent += 1;
        if (!req.write(chunk)) return void req.once("drain", write);
      }
      if (!answered) req.end(tail);
    };
    write();
  });

describe("a 100 MB request body", () => {
  let scope: Scope.CloseableScope;
  let proc: SpawnedTandem;
  let url: string;
  let key: string;
  let connectionId: string;

  beforeAll(async () => {
    scope = await Effect.runPromise(Scope.make());
    const database = (await Effect.runPromise(Scope.extend(freshDatabaseConfig("postgres"), scope))) as Extract<
      DatabaseConfig,
      { kind: "postgres" }
    >;
    const adminKey = generateApiKey();
    proc = spawnTandem({
      DATABASE_URL: database.url,
      TANDEM_SECRET_KEY: generateSecretKey(),
      TANDEM_ADMIN_KEY: adminKey,
      TANDEM_WORKER: "false",
      LOG_LEVEL: "error",
    });
    url = await proc.listening;
    const client = (k: string) =>
      createTRPCClient<AppRouter>({
        links: [httpLink({ url: `${url}/trpc`, headers: { authorization: `Bearer ${k}` } })],
      });
    const tenant = await client(adminKey).tenants.create.mutate({ name: "big bodies" });
    key = (await client(adminKey).apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
    connectionId = (
      await client(key).connections.create.mutate({ connector: "hubspot", name: "c", config: { accessToken: "pat" } })
    ).id;
  }, 60_000);
  afterAll(async () => {
    proc?.child.kill("SIGTERM");
    await proc?.exited;
    await Effect.runPromise(Scope.close(scope, Exit.void));
  });

  it.each([
    ["with a content-length", true],
    ["chunked", false],
  ])(
    "%s is refused with 413 while read, with memory bounded, and the server answers afterwards",
    async (_name, declare) => {
      const pid = proc.child.pid!;
      const before = peakRss(pid);
      const answer = await pushHuge(url, key, connectionId, declare);
      expect(answer).toMatchObject({ status: 413 });
      expect((answer as { body: string }).body).toContain(
        "request body larger than 4194304 bytes (TANDEM_MAX_BODY_BYTES)",
      );
      // The body was never held: the peak resident set grew by far less than its 100 MB.
      const growth = peakRss(pid) - before;
      console.info(`peak RSS growth over the 100 MB body: ${(growth / 1048576).toFixed(1)} MB`);
      expect(growth).toBeLessThan(48 * 1024 * 1024);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      const list = await fetch(`${url}/trpc/connections.list`, { headers: { authorization: `Bearer ${key}` } });
      expect(list.status).toBe(200);
    },
    120_000,
  );
});
