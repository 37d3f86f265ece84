/**
 * The connector SDK: everything a connector author imports (the contract, its
 * errors, conflict policies, vendor-response and webhook-signature helpers). The engine-side
 * pieces that call a connector (for the engine and the conformance suite) are
 * in `@tandem/connector-sdk/runtime`.
 */
export * from "./BatchWrite.ts";
export * from "./ConflictMerge.ts";
export * from "./ConflictPolicy.ts";
export * from "./Connector.ts";
export * from "./ForeignResponse.ts";
export * from "./LlmResolver.ts";
export * from "./WebhookSignature.ts";
