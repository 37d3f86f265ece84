import { Effect, Either, Redacted, Schema } from "effect";
import type { ConflictInput, ConflictPolicy, PolicyDecision } from "./ConflictPolicy.ts";
import { makeConnectorHttp } from "./ConnectorHttp.ts";
import type { EgressPolicyService } from "./EgressPolicy.ts";

export interface LlmResolverOptions {
  /** An OpenAI-compatible API base, e.g. `https://llm.internal/v1` (POST `<baseUrl>/chat/completions`). */
  readonly baseUrl: string;
  readonly apiKey?: Redacted.Redacted<string>;
  readonly model: string;
  /**
   * The entity's record schema. The merged record (clean merges plus the model's
   * values) must decode with it, or the conflict goes to manual review.
   */
  readonly record?: Schema.Schema<any, any, never>;
  readonly timeoutMs?: number;
  /** Where it may connect. Default: the strict policy; pass one allowing a model served on a private address. */
  readonly egress?: EgressPolicyService;
}

const ChatCompletion = Schema.Struct({
  choices: Schema.NonEmptyArray(Schema.Struct({ message: Schema.Struct({ content: Schema.String }) })),
});

const prompt = (input: ConflictInput) =>
  JSON.stringify({
    task:
      "Two systems edited the same record since they last agreed (base). For each conflicting field, choose or " +
      "combine the values, preferring the most recent and most complete information. Answer with one JSON object " +
      "mapping each conflicting field name to its value, and nothing else.",
    entity: input.entity,
    localUpdatedAt: input.localUpdatedAt.toISOString(),
    remoteUpdatedAt: input.remoteUpdatedAt.toISOString(),
    conflicts: input.conflicts,
  });

const manual = (reason: string): PolicyDecision => ({ _tag: "Manual", reason });

/**
 * A `custom` conflict policy that asks an LLM over an OpenAI-compatible chat API.
 * Its answer is data, not trusted: it must be a JSON object with exactly the
 * conflicting fields, and the merged record must pass the entity's schema.
 * Anything else (HTTP failure, prose, extra or missing fields, wrong types)
 * falls back to manual review, with the reason recorded.
 */
export const llmResolver = (options: LlmResolverOptions): ConflictPolicy => {
  const http = makeConnectorHttp({ timeoutMs: options.timeoutMs ?? 30_000, egress: options.egress });
  return {
    kind: "custom",
    name: `llm:${options.model}`,
    resolve: (input) =>
      Effect.gen(function* () {
        const response = yield* Effect.tryPromise(() =>
          http.request({
            method: "POST",
            url: `${options.baseUrl.replace(/\/$/, "")}/chat/completions`,
            headers: options.apiKey ? { authorization: `Bearer ${Redacted.value(options.apiKey)}` } : {},
            body: {
              model: options.model,
              temperature: 0,
              response_format: { type: "json_object" },
              messages: [
                {
                  role: "system",
                  content: "You resolve data conflicts between two copies of a record. Reply with JSON only.",
                },
                { role: "user", content: prompt(input) },
              ],
            },
          }),
        ).pipe(Effect.either);
        if (Either.isLeft(response)) return manual(`LLM request failed: ${String(response.left.error)}`);
        if (response.right.status !== 200) return manual(`LLM answered HTTP ${response.right.status}`);
        const completion = Schema.decodeUnknownEither(ChatCompletion)(response.right.body);
        if (Either.isLeft(completion)) return manual("LLM response is not a chat completion");
        let values: unknown;
        try {
          values = JSON.parse(completion.right.choices[0].message.content);
        } catch {
          return manual("LLM answer is not JSON");
        }
        if (typeof values !== "object" || values === null || Array.isArray(values)) {
          return manual("LLM answer is not a JSON object");
        }
        const expected = input.conflicts.map((c) => c.field).sort();
        const got = Object.keys(values).sort();
        if (expected.join("\u0000") !== got.join("\u0000")) {
          return manual(`LLM answered fields [${got.join(", ")}], expected [${expected.join(", ")}]`);
        }
        if (options.record !== undefined) {
          const candidate = { ...input.merged, ...(values as Record<string, unknown>) };
          if (Either.isLeft(Schema.decodeUnknownEither(options.record)(candidate))) {
            return manual("LLM answer does not fit the record schema");
          }
        }
        return {
          _tag: "Resolved",
          values: values as Record<string, unknown>,
          resolvedBy: `llm:${options.model}`,
        } as const;
      }),
  };
};
