import { ContactsTable } from "./contactsTable.ts";
import { CrmSync } from "./crmSync.ts";
import { tandemClient } from "./tandem.ts";

/*
 * The example's walk-through against a running Tandem (`pnpm start`: the demo, with the HubSpot
 * sandbox): reads the contacts into the app's table, creates, edits and deletes one locally, and
 * shows the sync status and conflicts. See README.md.
 */

const env = (name: string, fallback?: string) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") throw new Error(`set ${name} (see examples/crm-sync/README.md)`);
  return value;
};

const tandem = tandemClient(env("TANDEM_URL", "http://127.0.0.1:3000"), env("TANDEM_API_KEY"));
const table = await ContactsTable.open(process.env.CRM_DATA_DIR);
const app = new CrmSync(tandem, table, env("TANDEM_CONNECTION_ID"));
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

try {
  console.log(`read ${await app.pull()} changes from Tandem's feed`);
  const ada = await app.create({ email: `ada+${Date.now()}@example.com`, firstName: "Ada", lastName: "Lovelace" });
  console.log(`created ${ada.id} locally (${ada.syncStatus})`);
  await app.edit(ada.id, { lastName: "King" });
  // Tandem pushes by itself within seconds; the feed then carries HubSpot's id for the app's row.
  for (let i = 0; i < 30 && (await table.get(ada.id))?.tandemId == null; i++) {
    await wait(1_000);
    await app.pull();
  }
  console.log(`at HubSpot as ${(await table.get(ada.id))?.tandemId ?? "(not yet)"}`);
  await app.delete(ada.id);
  console.log(`deleted ${ada.id}; status:`, JSON.stringify(await app.status(), null, 2));
} finally {
  await table.close();
}
