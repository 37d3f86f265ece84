/**
 * Connects a HubSpot account, runs a full sync of its contacts while printing live
 * progress, then reads the synced records through the change feed.
 *
 *   TANDEM_URL=http://127.0.0.1:3000 TANDEM_API_KEY=tdm_... \
 *   HUBSPOT_BASE_URL=https://api.hubapi.com HUBSPOT_TOKEN=pat-... node src/main.ts
 */
import { tandemClient } from "./client.ts";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`example-client: set ${name}\n`);
    process.exit(2);
  }
  return value;
};

const tandem = tandemClient(env("TANDEM_URL"), env("TANDEM_API_KEY"));

const connection = await tandem.connections.create.mutate({
  connector: "hubspot",
  name: `example-${Date.now()}`,
  config: { baseUrl: env("HUBSPOT_BASE_URL"), accessToken: env("HUBSPOT_TOKEN") },
});
console.log(`connection ${connection.id} created`);

const { jobId } = await tandem.sync.trigger.mutate({ connectionId: connection.id, entity: "contacts", mode: "full" });
console.log(`sync job ${jobId} queued`);

const final = await new Promise<{ status: string; processed: number }>((resolve, reject) => {
  const subscription = tandem.jobs.watch.subscribe(
    { id: jobId },
    {
      onData: (progress) => {
        console.log(`  ${progress.phase}: ${progress.processed} records (${progress.recordsPerSecond}/s)`);
        if (progress.status === "completed" || progress.status === "dead" || progress.status === "cancelled") {
          subscription.unsubscribe();
          resolve(progress);
        }
      },
      onError: reject,
    },
  );
});
if (final.status !== "completed") {
  console.error(`sync ended ${final.status}`);
  process.exit(1);
}

// The change feed: every record changed after the cursor, page by page. Keep the last
// cursor to read only what changed since, next time.
let cursor: string | undefined;
let count = 0;
for (;;) {
  const page = await tandem.records.list.query({ connectionId: connection.id, entity: "contacts", limit: 500, cursor });
  count += page.items.length;
  cursor = page.cursor;
  if (!page.hasMore) break;
}
console.log(`read ${count} contacts from the change feed (next cursor ${cursor})`);
