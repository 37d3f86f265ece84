import { withClient as withConnection } from "../BenchDatabase.ts";
import { timed } from "../measure/Clock.ts";
import { listContactIds } from "../source/ContactPages.ts";
import { copyIds } from "./CopyRows.ts";
import type { BaselineTarget } from "./ImportBaselines.ts";

/**
 * naive reconciliation: every remote id and every local id into memory, the difference in
 * JavaScript, then one UPDATE per vanished record.
 */
export const naiveReconcile = (input: BaselineTarget) =>
  withConnection(input.databaseUrl, async (client) => {
    const { value: softDeleted, seconds } = await timed(async () => {
      const remote = new Set(await listContactIds(input.sourceUrl, input));
      const local = await client.query<{ external_id: string }>(
        `select external_id from ${input.table} where deleted_at is null`,
      );
      let deleted = 0;
      for (const { external_id } of local.rows) {
        if (remote.has(external_id)) continue;
        await client.query(`update ${input.table} set deleted_at = now() where external_id = $1`, [external_id]);
        deleted++;
      }
      return deleted;
    });
    return { seconds, softDeleted };
  });

/**
 * copy + anti-join: the remote ids streamed into a temporary table with COPY, then one UPDATE
 * that soft-deletes the local rows without a remote match. The database does the comparison;
 * the process holds one page of ids at a time at most (here: the list, for simplicity of timing).
 */
export const copyAntiJoinReconcile = (input: BaselineTarget) =>
  withConnection(input.databaseUrl, async (client) => {
    const { value: softDeleted, seconds } = await timed(async () => {
      const ids = await listContactIds(input.sourceUrl, input);
      await client.query("begin");
      await client.query("create temp table remote_ids (external_id text primary key) on commit drop");
      await copyIds(client, "remote_ids", ids);
      const result = await client.query(
        `update ${input.table} t set deleted_at = now()
         where t.deleted_at is null
           and not exists (select 1 from remote_ids r where r.external_id = t.external_id)`,
      );
      await client.query("commit");
      return result.rowCount ?? 0;
    });
    return { seconds, softDeleted };
  });
