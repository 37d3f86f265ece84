import type { EntityDefinition } from "@tandem/connector-sdk";
import { Context } from "effect";

/** How local changes are pushed; every field has a default. */
export interface PushOptions {
  /**
   * How long a local change that touches no critical field may wait to be pushed together with
   * others, for entities that declare no `pushIntervalMs`: the window in which changes to one
   * record coalesce into one write, and changes to many records into one drain. Default 500 ms:
   * an edit reaches the vendor within the window plus a drain, and under load a drain's tail
   * takes up to about a second, so the default leaves that room inside the 2 s a local edit may
   * take (issue 17). Batching does not need a longer window: a drain takes every entry due, and
   * entries pile up while one is being written.
   */
  readonly intervalMs?: number;
  /**
   * Outbox entries a drain claims (and writes, in the vendor's batch sizes) at a time. Default
   * 1,000: each claimed batch costs four statements (claim, record read, settlement, outbox
   * delete) whatever its size, and a push of 10,000 edits took a third less of PostgreSQL's CPU
   * in batches of 1,000 than of 500 (bench/README.md, "Push against the example's worker").
   */
  readonly batchSize?: number;
  /** Single writes a drain has in flight at once (an entity without batch writes). Default 4. */
  readonly concurrency?: number;
  /** A drain's claim on its entries lapses after this if the drain dies. Default 2 minutes. */
  readonly claimLeaseMs?: number;
  /**
   * Claimed batches a drain has in flight at once (one claimed while another is written, one
   * settled while the next is written). Default 2.
   */
  readonly batchesInFlight?: number;
}

/**
 * The push configuration; a runtime that provides none gets the defaults. Provided once at the
 * root of the composition (`EngineConfig.push`).
 */
export class PushConfig extends Context.Reference<PushConfig>()("@tandem/core/PushConfig", {
  defaultValue: (): PushOptions => ({}),
}) {}

/** The push interval of entities that declare none, when the engine is given none. */
export const defaultPushIntervalMs = 500;

/** The push settings of one entity, defaults applied. */
export interface PushSettings {
  readonly intervalMs: number;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly claimLeaseMs: number;
  readonly batchesInFlight: number;
}

/** The defaults: half a second to batch in, 1,000 entries a claim, 4 writes at once, a 2-minute claim, 2 batches in flight. */
export const pushSettings = (options: PushOptions, entity?: EntityDefinition<any, any>): PushSettings => ({
  intervalMs: entity?.pushIntervalMs ?? options.intervalMs ?? defaultPushIntervalMs,
  batchSize: options.batchSize ?? 1_000,
  concurrency: options.concurrency ?? 4,
  claimLeaseMs: options.claimLeaseMs ?? 120_000,
  batchesInFlight: options.batchesInFlight ?? 2,
});
