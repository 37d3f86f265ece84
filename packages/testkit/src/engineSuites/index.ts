/*
 * Suites that run a connector on the engine (@tandem/core), over its vendor's fake: for the
 * workspace's connectors. Apart from `./conformance`, which a plugin outside the workspace runs
 * with the SDK alone.
 */
export * from "./describeConditionalPush.ts";
