import { Effect } from "effect";

/**
 * Waits until `check` holds, polling every 50 ms, for a test whose engine works in the background
 * (the queue's worker, the push interval). Runs on the context's clock: give the test the real
 * one (`TestServices.provideLive`), or the wait never ends. A defect naming `what` after
 * `timeoutMs`.
 *
 * @example
 * yield* eventually("the edit in HubSpot", () => fake.store.get("contacts", id)?.properties.jobtitle === "x");
 */
export const eventually = (
  what: string,
  check: () => boolean | Effect.Effect<boolean, unknown, any>,
  timeoutMs = 30_000,
) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = check();
      if (typeof result === "boolean" ? result : yield* result) return;
      if (Date.now() > deadline) return yield* Effect.dieMessage(`not within ${timeoutMs / 1_000} s: ${what}`);
      yield* Effect.sleep("50 millis");
    }
  });
