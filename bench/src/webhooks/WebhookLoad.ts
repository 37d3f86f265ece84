import { Agent, request } from "node:http";
import { getPriority, setPriority } from "node:os";
import autocannon from "autocannon";
import { type LatencySummary, summarizeLatencies } from "../measure/Percentiles.ts";
import { signedDeliveries } from "./SignedDeliveries.ts";

export interface WebhookLoadOptions {
  readonly url: string;
  readonly appSecret: string;
  readonly durationSeconds: number;
  /** Events per request (HubSpot batches up to 100 events per delivery). */
  readonly eventsPerRequest: number;
  /** Contact ids the events name (the seeded source range). */
  readonly objectIds: { readonly first: number; readonly count: number };
  /** The first event id (default 1): a warm-up load takes its own range. */
  readonly firstEventId?: number;
}

export interface WebhookLoadFigures {
  readonly acceptedRequests: number;
  readonly acceptedEventsPerSecond: number;
  readonly rejected: number;
  readonly errors: number;
  /** Time from sending a request to its acknowledgement, as the sender saw it. */
  readonly ackMs: LatencySummary;
  /** The sender's nice value while it sent (the latency load raises its priority, see raiseSenderPriority). */
  readonly senderNice?: number;
}

/** Flat out: autocannon keeps `connections` requests in flight for the whole duration. */
export const runWebhookLoadFlatOut = async (
  options: WebhookLoadOptions & { readonly connections: number },
): Promise<WebhookLoadFigures> => {
  const next = signedDeliveries(options);
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    requests: [
      {
        method: "POST",
        setupRequest: (request) => ({ ...request, ...next() }),
      },
    ],
  });
  const accepted = result["2xx"];
  return {
    acceptedRequests: accepted,
    acceptedEventsPerSecond: (accepted * options.eventsPerRequest) / result.duration,
    rejected: result.non2xx,
    errors: result.errors + result.timeouts,
    ackMs: { count: result.requests.total, p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
  };
};

/**
 * One POST on a kept-alive connection: its status once the answer is read. Node's http client,
 * not fetch: the sender shares the two cores with the receiver it measures, and fetch cost it
 * several times the CPU per request (its WHATWG streams and headers), taken from the receiver.
 */
const post = (agent: Agent, url: URL, body: string, headers: Record<string, string>): Promise<number> =>
  new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", agent, headers: { ...headers, "content-length": Buffer.byteLength(body).toString() } },
      (res) => {
        res.on("data", () => {});
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });

/**
 * At a fixed rate: deliveries sent on an even schedule whatever the answers (an open loop, as
 * HubSpot sends), each one's acknowledgement time measured. autocannon's own rate limit releases
 * each second's requests in one burst at the start of the second, which would measure the burst.
 */
/** The sender's nice value during the latency load (see raiseSenderPriority). */
const senderNice = -10;

/**
 * The latency load's sender stands in for the vendor, whose requests do not wait for a core of
 * ours: it runs at a higher scheduling priority than the receiver and PostgreSQL while it sends
 * (nice -10; it needs a small share of a core, so the receiver keeps what it had). Without it, on
 * two shared cores the sender's own wait for a core added 15 to 22 ms to the ack p99 over the
 * receiver's own receipt-to-stored p99. Answers the nice value in effect and how to restore the
 * one before; where raising it is not allowed (not root), the load runs at the priority it had.
 */
const raiseSenderPriority = (): { readonly nice: number; readonly restore: () => void } => {
  const before = getPriority();
  try {
    setPriority(senderNice);
  } catch {
    return { nice: before, restore: () => {} };
  }
  return { nice: senderNice, restore: () => setPriority(before) };
};

export const runWebhookLoadAtRate = async (
  options: WebhookLoadOptions & { readonly requestsPerSecond: number },
): Promise<WebhookLoadFigures> => {
  const next = signedDeliveries(options);
  const gapMs = 1000 / options.requestsPerSecond;
  const total = Math.round(options.durationSeconds * options.requestsPerSecond);
  const latencies: Array<number> = [];
  let accepted = 0;
  let rejected = 0;
  let errors = 0;
  const inFlight: Array<Promise<void>> = [];
  const url = new URL(options.url);
  const agent = new Agent({ keepAlive: true });
  const priority = raiseSenderPriority();
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + i * gapMs;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const delivery = next();
    const sentAt = performance.now();
    inFlight.push(
      post(agent, url, delivery.body, delivery.headers).then(
        (status) => {
          latencies.push(performance.now() - sentAt);
          if (status >= 200 && status < 300) accepted++;
          else rejected++;
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  priority.restore();
  agent.destroy();
  return {
    acceptedRequests: accepted,
    acceptedEventsPerSecond: (accepted * options.eventsPerRequest) / seconds,
    rejected,
    errors,
    ackMs: summarizeLatencies(latencies),
    senderNice: priority.nice,
  };
};
