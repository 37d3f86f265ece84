/**
 * The process a webhook receiver runs in during webhook_ingest, apart from the load generator:
 * one of the baseline receivers, or Tandem's route.
 */
import { serveChildRpc } from "../measure/ChildProcessRpc.ts";
import { summarizeLatencies } from "../measure/Percentiles.ts";
import type { WebhookReceiver, WebhookReceiverInput } from "./WebhookReceiver.ts";

export type ReceiverKind = "ack-only" | "naive-store" | "tandem";

let receiver: WebhookReceiver | undefined;

const start = async (kind: ReceiverKind, input: WebhookReceiverInput): Promise<WebhookReceiver> => {
  if (kind === "tandem") return (await import("../tandem/TandemHooks.ts")).startTandemWebhookReceiver(input);
  const baselines = await import("./BaselineReceivers.ts");
  return kind === "ack-only" ? baselines.startAckOnlyReceiver(input) : baselines.startNaiveStoreReceiver(input);
};

serveChildRpc({
  start: async (input: WebhookReceiverInput & { readonly kind: ReceiverKind }) => {
    receiver = await start(input.kind, input);
    return { url: receiver.url };
  },
  /** Receipt-to-stored percentiles, and how many distinct events were stored. */
  stored: async () => ({
    receiptToStoredMs: summarizeLatencies(await receiver!.receiptToStoredMs()),
    storedEvents: await receiver!.storedEvents(),
  }),
  /** The warm-up is over: figures count from here. */
  mark: async () => {
    await receiver!.mark();
    return null;
  },
  stop: async () => {
    await receiver?.close();
    receiver = undefined;
    return null;
  },
});
