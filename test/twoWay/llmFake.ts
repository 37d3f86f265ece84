import { delay, HttpResponse, http } from "msw";
import { llmHost } from "./localSide.ts";

/*
 * An OpenAI-style chat completions endpoint for the engine's LLM conflict resolver, served through
 * MSW in the test's process (the API server runs in it too). What it answers is set per scenario.
 */

export const llmBaseUrl = `https://${llmHost}/v1`;
export const llmModel = "matrix-merge-1";

/**
 * - `valid`: every conflicting field as "<local> / <remote>";
 * - `invalid`: prose, not the JSON object asked for;
 * - `timeout`: no answer before the resolver gives up (it waits `timeoutMs`).
 */
export type LlmBehaviour = "valid" | "invalid" | "timeout";

export interface LlmFake {
  readonly handlers: ReturnType<typeof http.post>[];
  behave: LlmBehaviour;
  /** Requests received since the last reset. */
  readonly calls: () => number;
  readonly reset: () => void;
}

/** The value the valid answer gives a field both sides changed. */
export const llmMerge = (local: unknown, remote: unknown) => `${String(local)} / ${String(remote)}`;

export const createLlmFake = (): LlmFake => {
  let calls = 0;
  const fake: LlmFake = {
    behave: "valid",
    calls: () => calls,
    reset: () => {
      calls = 0;
      fake.behave = "valid";
    },
    handlers: [
      http.post(`${llmBaseUrl}/chat/completions`, async ({ request }) => {
        calls++;
        const body = (await request.json()) as { messages: Array<{ role: string; content: string }> };
        const prompt = JSON.parse(body.messages.at(-1)!.content) as {
          conflicts: Array<{ field: string; local: unknown; remote: unknown }>;
        };
        const completion = (content: string) =>
          HttpResponse.json({ choices: [{ message: { role: "assistant", content } }] });
        switch (fake.behave) {
          case "valid":
            return completion(
              JSON.stringify(Object.fromEntries(prompt.conflicts.map((c) => [c.field, llmMerge(c.local, c.remote)]))),
            );
          case "invalid":
            return completion("Both values look plausible; I would keep the newer one.");
          case "timeout":
            await delay(10_000);
            return completion("{}");
        }
      }),
    ],
  };
  return fake;
};
