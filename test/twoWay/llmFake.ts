import { delay, HttpResponse, http } from "msw";
import { llmHost } from "./localSide.ts";

/*
 * An OpenAI-style chat completions endpoint for the engine's LLM conflict resolver, served through
 * MSW in the test's process (the API server runs in it too). Scenarios run side by side, so how it
 * answers is chosen by the model a connection names (`llmModel(behaviour)`), and calls are counted
 * by model.
 */

export const llmBaseUrl = `https://${llmHost}/v1`;

/**
 * - `valid`: every conflicting field as `llmMerge(local, remote)`;
 * - `invalid`: prose, not the JSON object asked for;
 * - `timeout`: no answer before the resolver gives up (it waits its `timeoutMs`).
 */
export type LlmBehaviour = "valid" | "invalid" | "timeout";

/** The value the valid answer gives a field both sides changed. */
export const llmMerge = (local: unknown, remote: unknown) => `${String(local)} / ${String(remote)}`;

let models = 0;
/** A model name of its own for one scenario, answering as `behaviour` says. */
export const llmModel = (behaviour: LlmBehaviour) => `${behaviour}-${++models}`;

const behaviourOf = (model: string): LlmBehaviour => model.split("-")[0] as LlmBehaviour;

const calls = new Map<string, number>();
/** Requests received for this model. */
export const llmCalls = (model: string) => calls.get(model) ?? 0;

export const llmHandlers = [
  http.post(`${llmBaseUrl}/chat/completions`, async ({ request }) => {
    const body = (await request.json()) as { model: string; messages: Array<{ role: string; content: string }> };
    calls.set(body.model, llmCalls(body.model) + 1);
    const prompt = JSON.parse(body.messages.at(-1)!.content) as {
      conflicts: Array<{ field: string; local: unknown; remote: unknown }>;
    };
    const completion = (content: string) =>
      HttpResponse.json({ choices: [{ message: { role: "assistant", content } }] });
    switch (behaviourOf(body.model)) {
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
];
