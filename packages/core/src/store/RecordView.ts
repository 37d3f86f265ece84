import type { StoredRecord } from "./RecordStore.ts";

/** A stored record as the API shows it. */
export interface RecordView {
  /** The vendor's id; null for a record created locally whose create has not reached the vendor yet. */
  readonly externalId: string | null;
  /** The host application's id, when it gave one. */
  readonly localId: string | null;
  readonly data: Record<string, unknown>;
  readonly syncStatus: string;
  readonly syncError: string | null;
  readonly pendingChanges: Record<string, unknown> | null;
  readonly version: number;
  readonly remoteUpdatedAt: string | null;
  readonly localUpdatedAt: string | null;
  readonly lastSyncedAt: string | null;
  readonly deletedAt: string | null;
  readonly changedAt: string;
}

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

export const toRecordView = (r: StoredRecord): RecordView => ({
  externalId: r.provisional ? null : r.externalId,
  localId: r.localId,
  data: r.data,
  syncStatus: r.syncStatus,
  syncError: r.syncError,
  pendingChanges: r.pendingChanges,
  version: r.version,
  remoteUpdatedAt: iso(r.remoteUpdatedAt),
  localUpdatedAt: iso(r.localUpdatedAt),
  lastSyncedAt: iso(r.lastSyncedAt),
  deletedAt: iso(r.deletedAt),
  changedAt: r.changedAt.toISOString(),
});
