import type { EntityDefinition } from "@tandem/connector-sdk";
import type { ReconcileCadence } from "../queue/Scheduler.ts";

/**
 * Whether an entity's deletions reach the engine on their own, read from its contract flags:
 * by delta (`deletes: "api"`: read pages list them), or by webhook (`deletes: "webhook"`, and the
 * vendor sends webhooks for it, `webhooks: true`). An entity that declares webhook deletions but
 * no webhooks learns them no other way than by comparing ids.
 */
export const deletionsArriveOnTheirOwn = (entity: Pick<EntityDefinition<any, any>, "deletes" | "webhooks">) =>
  entity.deletes === "api" || (entity.deletes === "webhook" && entity.webhooks === true);

/**
 * An entity's default reconciliation: none without `readIds` (it cannot be reconciled); the
 * less frequent safety net when its deletions arrive on their own; daily otherwise (the
 * default `deletes: "reconcile"`), since reconciliation is then the only way a deletion is seen.
 */
export const reconcileCadenceOf = (
  entity: Pick<EntityDefinition<any, any>, "deletes" | "webhooks" | "readIds">,
): ReconcileCadence | "none" =>
  entity.readIds === undefined ? "none" : deletionsArriveOnTheirOwn(entity) ? "safety-net" : "daily";
