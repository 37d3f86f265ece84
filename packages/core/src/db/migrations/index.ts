import type { Migration } from "kysely/migration";
import * as init from "./2026_11_22_0001_init.ts";
import * as records from "./2026_11_22_0002_records.ts";
import * as jobs from "./2026_11_22_0003_jobs.ts";
import * as conflicts from "./2026_11_22_0004_conflicts.ts";
import * as webhooks from "./2026_11_22_0005_webhooks.ts";
import * as syncRuns from "./2026_11_22_0006_sync_runs.ts";
import * as alerts from "./2026_11_22_0007_alerts.ts";
import * as jobsClaimOrder from "./2026_11_22_0008_jobs_claim_order.ts";
import * as recordsWritePath from "./2026_12_03_0009_records_write_path.ts";
import * as jobsAnnouncedAfterCommit from "./2026_12_03_0010_jobs_announced_after_commit.ts";
import * as reconcileIdsUnlogged from "./2026_12_03_0011_reconcile_ids_unlogged.ts";
import * as jobsInfrastructureFaults from "./2026_12_05_0012_jobs_infrastructure_faults.ts";
import * as connectionsRefreshState from "./2026_12_05_0013_connections_refresh_state.ts";
import * as reconcileDrift from "./2026_12_06_0014_reconcile_drift.ts";
import * as changeFeedCommitOrder from "./2026_12_06_0015_change_feed_commit_order.ts";
import * as rateBudgets from "./2026_12_06_0016_rate_budgets.ts";
import * as quarantinedDeletions from "./2026_12_06_0017_quarantined_deletions.ts";
import * as pushOutbox from "./2026_12_06_0018_push_outbox.ts";
import * as connectionSyncSettings from "./2026_12_06_0020_connection_sync_settings.ts";
import * as initialMatching from "./2026_12_06_0021_initial_matching.ts";
import * as pushOutboxClaimOrder from "./2026_12_06_0022_push_outbox_claim_order.ts";
import * as pushOutboxRoomForClaims from "./2026_12_06_0023_push_outbox_room_for_claims.ts";

/**
 * Every migration, in order. Listed statically (not read from disk) so that the
 * set is fixed at build time and bundlers and type-stripping need no file scans.
 * Names are timestamped: Kysely applies them in name order.
 */
export const migrations: Record<string, Migration> = {
  "2026_11_22_0001_init": init,
  "2026_11_22_0002_records": records,
  "2026_11_22_0003_jobs": jobs,
  "2026_11_22_0004_conflicts": conflicts,
  "2026_11_22_0005_webhooks": webhooks,
  "2026_11_22_0006_sync_runs": syncRuns,
  "2026_11_22_0007_alerts": alerts,
  "2026_11_22_0008_jobs_claim_order": jobsClaimOrder,
  "2026_12_03_0009_records_write_path": recordsWritePath,
  "2026_12_03_0010_jobs_announced_after_commit": jobsAnnouncedAfterCommit,
  "2026_12_03_0011_reconcile_ids_unlogged": reconcileIdsUnlogged,
  "2026_12_05_0012_jobs_infrastructure_faults": jobsInfrastructureFaults,
  "2026_12_05_0013_connections_refresh_state": connectionsRefreshState,
  "2026_12_06_0014_reconcile_drift": reconcileDrift,
  "2026_12_06_0015_change_feed_commit_order": changeFeedCommitOrder,
  "2026_12_06_0016_rate_budgets": rateBudgets,
  "2026_12_06_0017_quarantined_deletions": quarantinedDeletions,
  "2026_12_06_0018_push_outbox": pushOutbox,
  "2026_12_06_0020_connection_sync_settings": connectionSyncSettings,
  "2026_12_06_0021_initial_matching": initialMatching,
  "2026_12_06_0022_push_outbox_claim_order": pushOutboxClaimOrder,
  "2026_12_06_0023_push_outbox_room_for_claims": pushOutboxRoomForClaims,
};
