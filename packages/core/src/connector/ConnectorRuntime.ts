/**
 * How the engine calls connector code, for tools that must call it the same way
 * (the testkit's conformance suite): both authoring styles normalized to Effects
 * and Streams, thrown values mapped to error reasons, records decoded with the
 * entity's schema. Re-exported from the engine's internal runtime so there is
 * one implementation; the engine itself imports the internal module.
 */
export {
  /** Calls connector code returning a Promise or an Effect (or throwing) as an Effect failing with a ConnectorError. */
  callConnector,
  /** What the engine keeps of one decoded record: external id, `updatedAt`, record and its JSON form. */
  type DecodedRecord,
  /** Decodes one raw record with its entity's schema: an `InvalidRecord` on a schema mismatch or a missing key. */
  decodeRecord,
  /** True for the connector error reasons (checked by `_tag`, so a bundled copy of core still counts). */
  isConnectorError,
  /** A connector context over one connection: config, `ctx.http` drawing from `bucket`, logging, abort signal. */
  makeConnectorContext,
  /** A connector's `read`/`readIds` result (async iterable or Effect Stream) as a Stream. */
  sourceStream,
} from "./callConnector.ts";
