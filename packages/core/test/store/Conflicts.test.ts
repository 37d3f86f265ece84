import { describe, expect, it, layer } from "@effect/vitest";
import {
  Conflicts,
  Connections,
  Database,
  decide,
  defineConnector,
  llmResolver,
  OutboundWebhooks,
  type SettleInput,
  Tenants,
  threeWayMerge,
} from "@tandem/core";
import { dialects, testEngineLayer } from "@tandem/testkit";
import { Effect, Redacted, Schema } from "effect";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";

describe("threeWayMerge", () => {
  it("merges edits to different fields and flags only fields both sides changed differently", () => {
    const base = { name: "Ada", email: "ada@x.io", phone: "1", city: "London" };
    const local = { name: "Ada L.", email: "ada@x.io", phone: "2", city: "Paris" };
    const remote = { name: "Ada", email: "ada@lovelace.io", phone: "3", city: "Paris" };
    const { merged, conflicts } = threeWayMerge(base, local, remote);
    expect(merged).toEqual({ name: "Ada L.", email: "ada@lovelace.io", city: "Paris" });
    expect(conflicts).toEqual([{ field: "phone", base: "1", local: "2", remote: "3" }]);
  });

  it("treats added and removed fields as edits, and nested values as wholes", () => {
    const { merged, conflicts } = threeWayMerge(
      { tags: ["a"], old: 1 },
      { tags: ["a", "b"], old: 1, added: true },
      { tags: ["a", "c"] },
    );
    expect(merged).toEqual({ added: true });
    expect(conflicts.map((c) => c.field)).toEqual(["tags"]);
  });

  it("without a base, every differing field conflicts", () => {
    expect(threeWayMerge(null, { a: 1, b: 2 }, { a: 1, b: 3 }).conflicts.map((c) => c.field)).toEqual(["b"]);
  });
});

const input = (over: Partial<SettleInput> = {}) => {
  const base = { name: "Ada", phone: "1", email: "a@x.io" };
  const local = { name: "Ada L.", phone: "2", email: "a@x.io" };
  const remote = { name: "Ada", phone: "3", email: "b@x.io" };
  const { merged, conflicts } = threeWayMerge(base, local, remote);
  return {
    entity: "contacts",
    externalId: "42",
    base,
    local,
    remote,
    merged,
    conflicts,
    localUpdatedAt: new Date("2026-01-02T00:00:00Z"),
    remoteUpdatedAt: new Date("2026-01-01T00:00:00Z"),
    ...over,
  };
};

describe("conflict policies", () => {
  it.effect("last-write-wins picks the side modified last", () =>
    Effect.gen(function* () {
      expect(yield* decide({ kind: "last-write-wins" }, input())).toEqual({
        _tag: "Resolved",
        values: { phone: "2" },
        resolvedBy: "policy:last-write-wins:local",
      });
      const later = input({ remoteUpdatedAt: new Date("2026-01-03T00:00:00Z") });
      expect(yield* decide({ kind: "last-write-wins" }, later)).toMatchObject({ values: { phone: "3" } });
    }),
  );

  it.effect("last-write-wins with a clock-skew tolerance: local wins only when later by more than it", () =>
    Effect.gen(function* () {
      // Local is a day later than remote (see input()).
      const day = 86_400_000;
      expect(yield* decide({ kind: "last-write-wins", clockSkewToleranceMs: day - 1 }, input())).toMatchObject({
        values: { phone: "2" },
        resolvedBy: "policy:last-write-wins:local",
      });
      expect(yield* decide({ kind: "last-write-wins", clockSkewToleranceMs: day }, input())).toMatchObject({
        values: { phone: "3" },
        resolvedBy: "policy:last-write-wins:remote",
      });
    }),
  );

  it.effect("source-priority follows field owners, then the default", () =>
    Effect.gen(function* () {
      const two = input({
        local: { name: "L", phone: "2" },
        remote: { name: "R", phone: "3" },
        base: { name: "B", phone: "1" },
      });
      const c = threeWayMerge(two.base, two.local, two.remote).conflicts;
      const decision = yield* decide(
        { kind: "source-priority", default: "remote", fieldOwners: { phone: "local" } },
        { ...two, conflicts: c },
      );
      expect(decision).toMatchObject({ _tag: "Resolved", values: { name: "R", phone: "2" } });
    }),
  );

  it.effect("a custom resolver that throws leaves the conflict to a person", () =>
    Effect.gen(function* () {
      const decision = yield* decide(
        {
          kind: "custom",
          name: "broken",
          resolve: async () => {
            throw new Error("no idea");
          },
        },
        input(),
      );
      expect(decision).toEqual({ _tag: "Manual", reason: "resolver broken failed: no idea" });
    }),
  );
});

describe("llmResolver over an OpenAI-compatible API", () => {
  let answer: () => Response = () => HttpResponse.json({});
  let lastRequest: { model?: string; messages?: Array<{ content: string }> } = {};
  const server = setupServer(
    http.post("https://llm.test/v1/chat/completions", async ({ request }) => {
      if (request.headers.get("authorization") !== "Bearer llm-key") return HttpResponse.json({}, { status: 401 });
      lastRequest = (await request.json()) as typeof lastRequest;
      return answer();
    }),
  );
  beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
  afterAll(() => server.close());

  const completion = (content: string) => () =>
    HttpResponse.json({ choices: [{ message: { role: "assistant", content } }] });
  const Contact = Schema.Struct({ name: Schema.String, phone: Schema.String, email: Schema.String });
  const policy = llmResolver({
    baseUrl: "https://llm.test/v1",
    apiKey: Redacted.make("llm-key"),
    model: "m1",
    record: Contact,
  });

  it.effect("uses a valid answer, and sends the conflict to the model", () =>
    Effect.gen(function* () {
      answer = completion('{"phone":"+44 2"}');
      expect(yield* decide(policy, input())).toEqual({
        _tag: "Resolved",
        values: { phone: "+44 2" },
        resolvedBy: "llm:m1",
      });
      expect(lastRequest.model).toBe("m1");
      expect(lastRequest.messages?.[1]?.content).toContain('"field":"phone"');
    }),
  );

  it.effect("falls back to manual review on prose, wrong fields, wrong types or HTTP errors", () =>
    Effect.gen(function* () {
      const cases: Array<[() => Response, string]> = [
        [completion("Sure! The phone should be 2."), "LLM answer is not JSON"],
        [completion('{"phone":"2","name":"x"}'), "LLM answered fields [name, phone], expected [phone]"],
        [completion('{"phone":2}'), "LLM answer does not fit the record schema"],
        [completion("[1]"), "LLM answer is not a JSON object"],
        [() => HttpResponse.json({ error: "nope" }, { status: 400 }), "LLM answered HTTP 400"],
        [() => HttpResponse.json({ unexpected: true }), "LLM response is not a chat completion"],
      ];
      for (const [respond, reason] of cases) {
        answer = respond;
        expect(yield* decide(policy, input())).toEqual({ _tag: "Manual", reason });
      }
      answer = () => HttpResponse.json({}, { status: 503 });
      const unavailable = yield* decide(policy, input());
      expect(unavailable._tag).toBe("Manual");
      expect(unavailable._tag === "Manual" && unavailable.reason).toMatch(/^LLM request failed/);
    }),
  );
});

const acme = defineConnector({
  name: "acme",
  version: "1.0.0",
  config: Schema.Struct({ token: Schema.Redacted(Schema.String) }),
  entities: {},
});
const services = (dialect: (typeof dialects)[number]) => testEngineLayer({ dialect, connectors: [acme] });

for (const dialect of dialects) {
  layer(services(dialect))(`Conflicts on ${dialect}`, (it) => {
    const setup = Effect.gen(function* () {
      const tenant = yield* Effect.flatMap(Tenants, (t) => t.create({ name: "T" }));
      const connection = yield* Effect.flatMap(Connections, (c) =>
        c.create(tenant.id, { connector: "acme", name: `c-${crypto.randomUUID()}`, config: { token: "t" } }),
      );
      const { merged: _m, conflicts: _c, ...rest } = input();
      return { tenantId: tenant.id, settle: { ...rest, tenantId: tenant.id, connectionId: connection.id } };
    });

    it.effect("clean merges leave no trace; resolved conflicts are recorded with who resolved them", () =>
      Effect.gen(function* () {
        const { tenantId, settle } = yield* setup;
        const conflicts = yield* Conflicts;
        const clean = yield* conflicts.settle(
          { ...settle, local: { ...settle.base!, name: "L" }, remote: { ...settle.base!, phone: "9" } },
          { kind: "manual" },
        );
        expect(clean).toEqual({ status: "merged", record: { name: "L", phone: "9", email: "a@x.io" } });
        expect((yield* conflicts.list(tenantId, {})).items).toEqual([]);

        const resolved = yield* conflicts.settle(settle, { kind: "last-write-wins" });
        expect(resolved).toMatchObject({ status: "resolved", record: { name: "Ada L.", email: "b@x.io", phone: "2" } });
        const listed = yield* conflicts.list(tenantId, { status: "resolved" });
        expect(listed.items).toHaveLength(1);
        expect(listed.items[0]).toMatchObject({
          fields: ["phone"],
          policy: "last-write-wins",
          resolution: { phone: "2" },
          resolvedBy: "policy:last-write-wins:local",
          base: settle.base,
          local: settle.local,
          remote: settle.remote,
        });
      }),
    );

    it.effect("manual conflicts wait for a person; resolving twice is refused; other tenants see nothing", () =>
      Effect.gen(function* () {
        const { tenantId, settle } = yield* setup;
        const other = yield* Effect.flatMap(Tenants, (t) => t.create({ name: "Other" }));
        const conflicts = yield* Conflicts;
        const open = yield* conflicts.settle(settle, { kind: "manual" });
        expect(open.status).toBe("open");
        if (open.status !== "open") return;
        expect((yield* conflicts.get(tenantId, open.conflictId)).reason).toBe("policy is manual review");
        expect((yield* Effect.flip(conflicts.get(other.id, open.conflictId)))._tag).toBe("ResourceNotFound");

        const bad = yield* Effect.flip(
          conflicts.resolve(tenantId, open.conflictId, { choose: "values", values: { nope: 1 } }, "api-key:k"),
        );
        expect(bad._tag).toBe("InvalidInput");
        expect(bad._tag === "InvalidInput" && bad.issues.map((i) => i.path)).toEqual(["values.phone", "values.nope"]);

        const done = yield* conflicts.resolve(tenantId, open.conflictId, { choose: "remote" }, "api-key:k");
        expect(done.record).toEqual({ name: "Ada L.", email: "b@x.io", phone: "3" });
        expect(done.conflict).toMatchObject({
          status: "resolved",
          resolvedBy: "api-key:k",
          resolution: { phone: "3" },
        });
        const again = yield* Effect.flip(
          conflicts.resolve(tenantId, open.conflictId, { choose: "local" }, "api-key:k"),
        );
        expect(again._tag).toBe("PreconditionFailed");
      }),
    );

    it.effect("every recorded conflict emits conflict.detected with its outcome; a clean merge emits nothing", () =>
      Effect.gen(function* () {
        const { tenantId, settle } = yield* setup;
        const conflicts = yield* Conflicts;
        const outbound = yield* OutboundWebhooks;
        const db = yield* Database;
        const subscription = yield* outbound.create(tenantId, {
          url: "https://hooks.example.test/tandem",
          events: ["conflict.detected"],
        });
        yield* conflicts.settle(
          { ...settle, local: { ...settle.base!, name: "L" }, remote: { ...settle.base!, phone: "9" } },
          { kind: "manual" },
        );
        const open = yield* conflicts.settle(settle, { kind: "manual" });
        const resolved = yield* conflicts.settle({ ...settle, externalId: "x-lww" }, { kind: "last-write-wins" });
        const rows = yield* db
          .query((k) =>
            k
              .selectFrom("webhook_deliveries")
              .select(["subscription_id", "event_type", "payload"])
              .where("subscription_id", "=", subscription.id)
              .orderBy("created_at")
              .execute(),
          )
          .pipe(Effect.orDie);
        const data = rows.map((r) => {
          expect([r.subscription_id, r.event_type]).toEqual([subscription.id, "conflict.detected"]);
          return (r.payload as { data: Record<string, unknown> }).data;
        });
        expect(data).toEqual([
          {
            conflictId: open.status === "open" ? open.conflictId : "?",
            connectionId: settle.connectionId,
            entity: settle.entity,
            externalId: settle.externalId,
            fields: ["phone"],
            policy: "manual",
            status: "open",
          },
          {
            conflictId: resolved.status === "resolved" ? resolved.conflictId : "?",
            connectionId: settle.connectionId,
            entity: settle.entity,
            externalId: "x-lww",
            fields: ["phone"],
            policy: "last-write-wins",
            status: "resolved",
          },
        ]);
      }),
    );

    it.effect("lists page by page with a stable cursor", () =>
      Effect.gen(function* () {
        const { tenantId, settle } = yield* setup;
        const conflicts = yield* Conflicts;
        for (let i = 0; i < 5; i++) yield* conflicts.settle({ ...settle, externalId: `x${i}` }, { kind: "manual" });
        const seen: Array<string> = [];
        let cursor: string | undefined;
        do {
          const page = yield* conflicts.list(tenantId, { limit: 2, ...(cursor ? { cursor } : {}) });
          seen.push(...page.items.map((c) => c.externalId));
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
        expect(seen).toEqual(["x0", "x1", "x2", "x3", "x4"]);
      }),
    );
  });
}
