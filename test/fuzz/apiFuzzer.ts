import { seededRandom } from "@tandem/testkit";

/**
 * A fuzzer of Tandem's HTTP surface: every tRPC procedure (named by the server's own OpenAPI
 * document, so a new procedure is fuzzed without touching this file) and the inbound webhook
 * route. Inputs are shaped by each procedure's JSON Schema, with fields swapped for hostile
 * values (NUL bytes, lone surrogates, huge strings and numbers, dates outside PostgreSQL's range,
 * deep nesting, wrong types), and sent with a tenant's key, the admin key, another tenant's ids or
 * no key at all.
 *
 * What counts as a finding: a 5xx answer, or an answer whose body shows a stack trace, a file
 * path, the pool's or the database's own words, or quotes a large input back.
 */

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json };

interface JsonSchema {
  readonly type?: string | ReadonlyArray<string>;
  readonly properties?: Record<string, JsonSchema>;
  readonly required?: ReadonlyArray<string>;
  readonly items?: JsonSchema;
  readonly anyOf?: ReadonlyArray<JsonSchema>;
  readonly enum?: ReadonlyArray<Json>;
  readonly const?: Json;
  readonly $ref?: string;
  readonly $defs?: Record<string, JsonSchema>;
  readonly additionalProperties?: boolean | JsonSchema;
}

interface OpenApiOperation {
  readonly parameters?: ReadonlyArray<{ readonly content?: { readonly "application/json"?: { schema: JsonSchema } } }>;
  readonly requestBody?: { readonly content: { readonly "application/json": { readonly schema: JsonSchema } } };
}

/** A procedure as the OpenAPI document describes it. */
export interface FuzzTarget {
  readonly path: string;
  readonly method: "GET" | "POST";
  readonly subscription: boolean;
  readonly schema: JsonSchema | undefined;
}

/** Ids that exist, so that generated inputs reach past the "not found" checks. */
export interface FuzzIds {
  readonly connectionIds: ReadonlyArray<string>;
  readonly foreignConnectionIds: ReadonlyArray<string>;
  readonly tenantIds: ReadonlyArray<string>;
  readonly entities: ReadonlyArray<string>;
  readonly externalIds: ReadonlyArray<string>;
  readonly otherIds: ReadonlyArray<string>;
}

export interface FuzzKeys {
  readonly tenant: string;
  readonly otherTenant: string;
  readonly admin: string;
}

export interface FuzzFinding {
  readonly target: string;
  readonly status: number;
  readonly reason: string;
  readonly input: string;
  readonly body: string;
}

export interface FuzzReport {
  readonly sent: number;
  readonly byStatus: Record<string, number>;
  readonly findings: ReadonlyArray<FuzzFinding>;
}

const LONG = "x".repeat(1_048_576);

/** Values that broke Tandem before, and their relatives. */
const hostileStrings: ReadonlyArray<string> = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\uD800",
  "x\uDFFFy",
  "\uDBFF\uDBFF",
  "\u202Eevil",
  "𝕏𝕐",
  "%00",
  "' OR 1=1 --",
  "../../../etc/passwd",
  "<script>alert(1)</script>",
  "99999999999999999999999999",
  "18446744073709551616",
  "-1",
  "1e309",
  "NaN",
  "0000-01-01T00:00:00Z",
  "-271821-04-20T00:00:00.000Z",
  "+275760-09-13T00:00:00.000Z",
  "294277-01-01T00:00:00Z",
  "4714-11-24T00:00:00Z BC",
  "2024-13-45",
  "2024-01-01",
  "00000000-0000-0000-0000-000000000000",
  "ffffffff-ffff-ffff-ffff-ffffffffffff",
  "http://169.254.169.254/latest/meta-data/",
  "http://127.0.0.1:5432/",
  "http://[::1]/",
  "http://0/",
  "http://2130706433/",
  "http://0x7f000001/",
  "x".repeat(10_000),
  LONG,
];

const hostileNumbers: ReadonlyArray<number> = [
  0,
  -1,
  0.5,
  -0,
  1e308,
  -1e308,
  2 ** 53 + 2,
  2 ** 63,
  -1_000_000_000_000_000,
  8_640_000_000_000_001,
  5e-324,
];

const deep = (depth: number, leaf: Json, asArray: boolean): Json => {
  let value: Json = leaf;
  for (let i = 0; i < depth; i++) value = asArray ? [value] : { a: value };
  return value;
};

/** Finds and describes every procedure in an OpenAPI document made by the server. */
export const targetsOf = (document: { readonly paths: Record<string, Record<string, OpenApiOperation>> }) =>
  Object.entries(document.paths).map(([path, item]): FuzzTarget => {
    const post = item.post;
    const get = item.get;
    const schema =
      post?.requestBody?.content["application/json"].schema ??
      get?.parameters?.[0]?.content?.["application/json"]?.schema;
    const subscription =
      (get as { responses?: { "200"?: { content?: Record<string, unknown> } } } | undefined)?.responses?.["200"]
        ?.content?.["text/event-stream"] !== undefined;
    return { path: path.replace(/^\/trpc\//, ""), method: post ? "POST" : "GET", subscription, schema };
  });

/** Generates inputs for targets from a seeded random source. */
export const makeGenerator = (seed: number, ids: FuzzIds) => {
  const random = seededRandom(seed);
  const chance = (p: number) => random() < p;
  const pick = <A>(values: ReadonlyArray<A>): A => values[Math.floor(random() * values.length)] as A;

  const hostile = (): Json => {
    const r = random();
    if (r < 0.5) return pick(hostileStrings);
    if (r < 0.7) return pick(hostileNumbers);
    if (r < 0.75) return pick<Json>([null, true, false, [], {}]);
    if (r < 0.82) return deep(pick([20, 200, 2_500, 10_000]), "x", chance(0.5));
    if (r < 0.86) return Array.from({ length: pick([1_001, 10_000]) }, () => "y");
    if (r < 0.9) return JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}') as Json;
    return { [pick(hostileStrings).slice(0, 100) || "k"]: pick(hostileStrings) };
  };

  /** A value near what the field wants: a real id for an id field, else a plausible value. */
  const plausible = (name: string, schema: JsonSchema | undefined, root: JsonSchema, depth: number): Json => {
    const lower = name.toLowerCase();
    if (lower === "connectionid") return pick(chance(0.85) ? ids.connectionIds : ids.foreignConnectionIds);
    if (lower === "tenantid") return pick(ids.tenantIds);
    if (lower === "entity") return pick(ids.entities);
    if (lower === "externalid") return pick(ids.externalIds);
    if (lower === "id" || lower.endsWith("id")) return pick(ids.otherIds.length > 0 ? ids.otherIds : ids.connectionIds);
    return fromSchema(schema, root, depth + 1);
  };

  const resolve = (schema: JsonSchema, root: JsonSchema): JsonSchema => {
    if (schema.$ref === undefined) return schema;
    const name = schema.$ref.replace(/^#\/\$defs\//, "");
    return root.$defs?.[name] ?? {};
  };

  const fromSchema = (schemaIn: JsonSchema | undefined, root: JsonSchema, depth: number): Json => {
    if (schemaIn === undefined || depth > 6) return hostile();
    const schema = resolve(schemaIn, root);
    if (chance(0.15)) return hostile();
    if (schema.const !== undefined) return schema.const;
    if (schema.enum !== undefined) return pick(schema.enum);
    if (schema.anyOf !== undefined) return fromSchema(pick(schema.anyOf), root, depth + 1);
    const type = Array.isArray(schema.type) ? pick(schema.type) : schema.type;
    switch (type) {
      case "object": {
        const out: Record<string, Json> = {};
        for (const [key, property] of Object.entries(schema.properties ?? {})) {
          const required = schema.required?.includes(key) ?? false;
          if (!required && chance(0.4)) continue;
          out[key] = chance(0.25) ? hostile() : plausible(key, property, root, depth);
        }
        if (schema.properties === undefined || chance(0.2)) {
          // A free-form record (record fields, connector config): hostile keys and values.
          const n = Math.floor(random() * 4);
          for (let i = 0; i < n; i++) {
            out[pick(["title", "email", "name", "archived", "accessToken", "baseUrl", "\u0000", "k".repeat(300)])] =
              hostile();
          }
        }
        return out;
      }
      case "array": {
        const n = Math.floor(random() * 4);
        return Array.from({ length: n }, () => fromSchema(schema.items, root, depth + 1));
      }
      case "string": {
        const r = random();
        // NUL bytes and lone surrogates are what text columns refuse: weighted up.
        if (r < 0.15) return pick(["a\u0000b", "\u0000", "\uD800", "x\uDFFFy"]);
        if (r < 0.55) return pick(hostileStrings);
        return pick(["a", "contacts", "2024-01-01T00:00:00Z", "1"]);
      }
      case "integer":
      case "number":
        return pick(hostileNumbers);
      case "boolean":
        return chance(0.5);
      default:
        return hostile();
    }
  };

  const auth = (keys: FuzzKeys): string | undefined => {
    const r = random();
    if (r < 0.75) return keys.tenant;
    if (r < 0.85) return keys.otherTenant;
    if (r < 0.93) return keys.admin;
    return undefined;
  };

  return {
    chance,
    pick,
    hostile,
    auth,
    inputFor: (target: FuzzTarget): Json => (target.schema ? fromSchema(target.schema, target.schema, 0) : hostile()),
  };
};

/** Signs that an answer says more than it should. */
const leaks: ReadonlyArray<readonly [RegExp, string]> = [
  [/\n\s+at\s/, "stack trace"],
  [/\/(?:work|home|root|usr|tmp)\/[^\s"]*\.(?:ts|js)/, "file path"],
  [/node_modules/, "file path"],
  [
    /timeout exceeded when trying to connect|Connection terminated|ECONNREFUSED|sorry, too many clients/i,
    "pool message",
  ],
  [
    /invalid byte sequence|time zone displacement|index row size|out of range for type|violates .* constraint/i,
    "database message",
  ],
];

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

/**
 * Sends `count` generated requests to a running server, `concurrency` at a time, and returns
 * the status counts and findings. Bounded: each request has its own timeout.
 */
export const fuzzServer = async (options: {
  readonly url: string;
  readonly keys: FuzzKeys;
  readonly ids: FuzzIds;
  readonly count: number;
  readonly seed: number;
  readonly concurrency?: number;
  readonly webhookConnectors?: ReadonlyArray<string>;
}): Promise<FuzzReport> => {
  const document = (await (await fetch(`${options.url}/openapi.json`)).json()) as Parameters<typeof targetsOf>[0];
  const targets = targetsOf(document);
  const generate = makeGenerator(options.seed, options.ids);
  const byStatus: Record<string, number> = {};
  const findings: Array<FuzzFinding> = [];
  let sent = 0;

  const one = async (): Promise<void> => {
    const webhook = options.webhookConnectors !== undefined && generate.chance(0.08);
    const target = generate.pick(targets);
    const input = webhook ? generate.hostile() : generate.inputFor(target);
    const key = generate.auth(options.keys);
    const headers: Record<string, string> = key === undefined ? {} : { authorization: `Bearer ${key}` };
    let body: string;
    try {
      body = JSON.stringify(input) ?? "null";
    } catch {
      body = "null";
    }
    let url: string;
    let init: RequestInit;
    let label: string;
    if (webhook) {
      const connector = generate.pick(options.webhookConnectors ?? []);
      const connectionId = generate.pick([...options.ids.connectionIds, ...options.ids.foreignConnectionIds]);
      label = `webhook ${connector}`;
      url = `${options.url}/webhooks/${connector}/${connectionId}`;
      init = { method: "POST", headers: { ...headers, "content-type": "application/json" }, body };
    } else if (target.method === "POST") {
      label = target.path;
      url = `${options.url}/trpc/${target.path}`;
      init = { method: "POST", headers: { ...headers, "content-type": "application/json" }, body };
    } else {
      label = target.path;
      url = `${options.url}/trpc/${target.path}?input=${encodeURIComponent(body)}`;
      init = { method: "GET", headers };
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 30_000);
    try {
      // One retry on a transport error: a keep-alive socket the server closed after an earlier
      // answer (a 413 closes its connection) can fail the next request sent on it. A server that
      // died fails the retry too.
      const response = await fetch(url, { ...init, signal: controller.signal }).catch(() =>
        fetch(url, { ...init, signal: controller.signal }),
      );
      sent += 1;
      byStatus[String(response.status)] = (byStatus[String(response.status)] ?? 0) + 1;
      // A subscription that was accepted streams for ever: its status is all we need.
      const text = target.subscription && response.ok && !webhook ? "" : await response.text();
      const record = (reason: string) =>
        findings.push({
          target: label,
          status: response.status,
          reason,
          input: truncate(body, 300),
          body: truncate(text, 600),
        });
      if (response.status >= 500) record("5xx");
      for (const [pattern, reason] of leaks) if (pattern.test(text)) record(reason);
      if (body.length >= 10_000 && text.length > 20_000) record("echoes a large input");
    } catch (error) {
      sent += 1;
      byStatus.error = (byStatus.error ?? 0) + 1;
      findings.push({
        target: label,
        status: 0,
        reason: `no answer: ${String(error)} ${String((error as { cause?: unknown }).cause)}`,
        input: truncate(body, 300),
        body: "",
      });
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  };

  let next = 0;
  const worker = async () => {
    while (next < options.count) {
      next += 1;
      await one();
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
  return { sent, byStatus, findings };
};
