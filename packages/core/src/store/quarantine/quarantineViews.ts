import type { QuarantineSource, QuarantineStatus } from "../../db/schema.ts";
import type { QuarantineRow } from "../QuarantineRows.ts";

/** A deletion the mass-deletion guard held back, as the API shows it. Timestamps are ISO-8601. */
export interface QuarantinedDeletionView {
  readonly id: string;
  readonly connectionId: string;
  readonly entity: string;
  readonly externalId: string;
  /** Which path reported the deletion: `reconcile`, `delta`, `full` or `webhook`. */
  readonly source: QuarantineSource;
  /** `pending` (waiting for review), `approved` (applied), `rejected` (record kept), `reappeared` (seen live remotely). */
  readonly status: QuarantineStatus;
  /** The rule that held it (`max-deletions`, `pending-review`, `max-share`) and its figures. */
  readonly guard: Record<string, unknown>;
  /** A rejected deletion keeps its record until the record is seen live remotely again. */
  readonly keepsRecord: boolean;
  readonly detectedAt: string;
  readonly resolvedAt: string | null;
  /** `api-key:<id>`, `admin`, `reconciliation`, `sync option allowMassDeletion`, or `remote` (reappeared). */
  readonly resolvedBy: string | null;
  /** The reason given with a rejection. */
  readonly reason: string | null;
}

export const toView = (row: QuarantineRow): QuarantinedDeletionView => ({
  id: row.id,
  connectionId: row.connection_id,
  entity: row.entity,
  externalId: row.external_id,
  source: row.source,
  status: row.status,
  guard: row.guard,
  keepsRecord: row.keeps_record,
  detectedAt: new Date(row.detected_at).toISOString(),
  resolvedAt: row.resolved_at === null ? null : new Date(row.resolved_at).toISOString(),
  resolvedBy: row.resolved_by,
  reason: row.reason,
});
