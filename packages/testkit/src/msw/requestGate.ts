import { http } from "msw";

/** A gate on a vendor endpoint: holds the requests it matches until released (see `requestGate`). */
export interface RequestGate {
  /** An MSW handler to put in front of the fake's (`server.use`). */
  readonly handler: ReturnType<typeof http.all>;
  /** Resolves when the first matching request has arrived (and is held). */
  readonly arrived: Promise<void>;
  /** Lets the held requests (and every later one) through to the fake. */
  readonly release: () => void;
}

/**
 * Holds requests to a vendor fake at the boundary, so a test can act while a write is in flight
 * (deterministically: no latency to guess). A matching request waits until `release`, then the
 * next handler (the fake) answers it as usual; requests `matches` turns down pass at once.
 *
 * @example
 * const gate = requestGate("POST", /\/batch\/update$/);
 * server.use(gate.handler);
 * // start the push, await gate.arrived, change the record locally, gate.release()
 */
export const requestGate = (
  method: string,
  path: RegExp,
  matches: (request: Request) => boolean = () => true,
): RequestGate => {
  let arrive!: () => void;
  let release!: () => void;
  const arrived = new Promise<void>((resolve) => {
    arrive = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const handler = http.all(/.*/, async ({ request }) => {
    if (request.method !== method || !path.test(new URL(request.url).pathname) || !matches(request)) return;
    arrive();
    await released;
    // No answer: the fake's handler answers the request now.
  });
  return { handler, arrived, release };
};
