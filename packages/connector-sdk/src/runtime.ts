/**
 * How the engine calls connector code, for the engine itself and for tools that
 * must call it the same way (the testkit's conformance suite): both authoring
 * styles normalized to Effects and Streams, thrown values mapped to error
 * reasons, records decoded with the entity's schema, `ctx.http` under the egress
 * policy and the connection's rate budget.
 */

export * from "./ConnectorHttp.ts";
export * from "./callBatchWrite.ts";
export * from "./callConnector.ts";
export * from "./EgressPolicy.ts";
export * from "./LeasedBucket.ts";
export * from "./RateBudget.ts";
export * from "./RecordCodec.ts";
export * from "./TokenSource.ts";
