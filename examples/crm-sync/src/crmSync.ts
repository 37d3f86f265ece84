import { randomUUID } from "node:crypto";
import type { Contact, ContactsTable } from "./contactsTable.ts";
import type { TandemClient } from "./tandem.ts";

/** The fields the app keeps of a HubSpot contact (Tandem's names for them). */
export interface ContactFields {
  readonly email?: string | null;
  readonly firstName?: string | null;
  readonly lastName?: string | null;
}

/** What `status` shows: the app's rows by sync status, and the conflicts waiting for a person. */
export interface SyncOverview {
  readonly byStatus: Readonly<Record<string, number>>;
  readonly conflicts: ReadonlyArray<{
    readonly id: string;
    readonly contact: string;
    readonly fields: ReadonlyArray<string>;
  }>;
  readonly deadPushes: ReadonlyArray<{
    readonly id: string;
    readonly operation: string;
    readonly error: string | null;
  }>;
}

const text = (value: unknown) => (typeof value === "string" ? value : null);

/**
 * The host application's side of a two-way sync, written as any user of Tandem would write it:
 * local creates, edits and deletes go to Tandem through the typed client (which pushes them to
 * HubSpot by itself), and Tandem's change feed is read back into the app's own table. The app
 * addresses records by its own ids (`localId`), so it never has to wait for HubSpot's.
 */
export class CrmSync {
  private readonly tandem: TandemClient;
  private readonly table: ContactsTable;
  private readonly connectionId: string;

  constructor(tandem: TandemClient, table: ContactsTable, connectionId: string) {
    this.tandem = tandem;
    this.table = table;
    this.connectionId = connectionId;
  }

  private get scope() {
    return { connectionId: this.connectionId, entity: "contacts" } as const;
  }

  /** A new contact: in the app's table at once, then at HubSpot through Tandem. */
  async create(fields: ContactFields): Promise<Contact> {
    const id = randomUUID();
    const record = await this.tandem.records.create.mutate({ ...this.scope, localId: id, fields: { ...fields } });
    const contact: Contact = {
      id,
      tandemId: record.externalId,
      email: fields.email ?? null,
      firstName: fields.firstName ?? null,
      lastName: fields.lastName ?? null,
      syncStatus: record.syncStatus,
      syncError: record.syncError,
      deleted: false,
    };
    await this.table.put(contact);
    return contact;
  }

  /** An edit of some fields (Tandem refuses a bad value with BAD_REQUEST naming the field: nothing changes here then). */
  async edit(id: string, fields: ContactFields): Promise<Contact> {
    const current = await this.table.get(id);
    if (current === undefined) throw new Error(`no contact ${id}`);
    const record = await this.tandem.records.update.mutate({ ...this.scope, localId: id, fields: { ...fields } });
    const next: Contact = {
      ...current,
      ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
      syncStatus: record.syncStatus,
      syncError: record.syncError,
    };
    await this.table.put(next);
    return next;
  }

  /** A delete: gone from the app's list at once, archived at HubSpot by Tandem. */
  async delete(id: string): Promise<void> {
    const current = await this.table.get(id);
    if (current === undefined) return;
    const ref = current.tandemId !== null ? { externalId: current.tandemId } : { localId: id };
    const record = await this.tandem.records.delete.mutate({ ...this.scope, ...ref });
    await this.table.put({ ...current, deleted: true, syncStatus: record.syncStatus, syncError: record.syncError });
  }

  /** Asks Tandem to read HubSpot's changes now (it also does on its schedule and on webhooks). */
  async refresh(mode: "delta" | "full" = "delta"): Promise<void> {
    await this.tandem.sync.trigger.mutate({ ...this.scope, mode }).catch((error: unknown) => {
      // One is running already: its changes reach the feed all the same.
      if ((error as { data?: { code?: string } }).data?.code !== "CONFLICT") throw error;
    });
  }

  /**
   * Reads Tandem's change feed from where the app stopped into its table: each change is the
   * record as it now is (deletions included), with HubSpot's id and the app's own where it has
   * one. Answers how many changes were applied.
   */
  async pull(): Promise<number> {
    let applied = 0;
    for (;;) {
      const cursor = await this.table.cursor();
      const page = await this.tandem.records.list.query({
        ...this.scope,
        ...(cursor === undefined ? {} : { cursor }),
        includeDeleted: true,
        limit: 200,
      });
      for (const record of page.items) {
        // The app's own id when the record came from the app; otherwise found by HubSpot's id,
        // or new to the app (a contact created in HubSpot gets an app id here).
        const known =
          (record.localId !== null ? await this.table.get(record.localId) : undefined) ??
          (record.externalId !== null ? await this.table.byTandemId(record.externalId) : undefined);
        await this.table.put({
          id: known?.id ?? record.localId ?? randomUUID(),
          tandemId: record.externalId,
          email: text(record.data.email),
          firstName: text(record.data.firstName),
          lastName: text(record.data.lastName),
          syncStatus: record.syncStatus,
          syncError: record.syncError,
          deleted: record.deletedAt !== null,
        });
        applied++;
      }
      await this.table.saveCursor(page.cursor);
      if (!page.hasMore) return applied;
    }
  }

  /** The sync status of the app's contacts, the open conflicts and the pushes that gave up. */
  async status(): Promise<SyncOverview> {
    const byStatus: Record<string, number> = {};
    for (const c of await this.table.all()) byStatus[c.syncStatus] = (byStatus[c.syncStatus] ?? 0) + 1;
    const conflicts = await this.tandem.conflicts.list.query({ connectionId: this.connectionId, status: "open" });
    const dead = await this.tandem.sync.deadPushes.list.query({ connectionId: this.connectionId, entity: "contacts" });
    return {
      byStatus,
      conflicts: conflicts.items.map((c) => ({ id: c.id, contact: c.externalId, fields: c.fields })),
      deadPushes: dead.map((d) => ({ id: d.id, operation: d.operation, error: d.error })),
    };
  }
}
