import type { HttpHandler } from "msw";

/*
 * What the two-way scenario matrix (test/twoWay/matrix.ts) needs of one vendor's fake. One adapter
 * per built-in connector (vendors/hubspot.ts, vendors/salesforce.ts, vendors/businessCentral.ts);
 * the matrix runs the same scenarios over each, through the engine's services and through the API.
 *
 * Fields are named as the connector normalizes them (the names `records.update` takes), so the
 * matrix can compare the two sides without knowing the vendor's wire names.
 */

/** A record's fields, in the connector's normalized names. */
export type VendorFields = Readonly<Record<string, unknown>>;

/** How the matrix reaches the fake: through MSW in the test's process, or served on loopback. */
export type VendorTransport = "msw" | "loopback";

/** A vendor's change notification (webhook), ready to be delivered to the connection's endpoint. */
export interface VendorNotification {
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** A write request the fake received, as the matrix counts them (the echo loop: exactly one). */
export interface VendorWrite {
  readonly kind: "create" | "update" | "delete";
  /** The records it wrote (several for a batch); a create's ids are those the vendor assigned. */
  readonly ids: ReadonlyArray<string>;
}

/** One running fake. Every mutation moves the record's modification time past every earlier one. */
export interface VendorSession {
  /** The connection config pointing at this fake (the encoded form a user would enter). */
  readonly config: unknown;
  /** MSW handlers serving the fake (transport "msw"); empty when it is served on loopback. */
  readonly handlers: ReadonlyArray<HttpHandler>;
  /** Empties the fake: data, queued faults, request log. */
  readonly reset: () => void;
  readonly close: () => Promise<void>;

  /*
   * A user's actions are asynchronous: an adapter may wait before one (Salesforce's modification
   * times have a grain of one second) without stopping the scenarios running beside it.
   */
  /** As a user in the vendor's UI: creates a record and returns its id. */
  readonly create: (fields: VendorFields) => Promise<string>;
  /** As a user in the vendor's UI: changes these fields. */
  readonly edit: (id: string, fields: VendorFields) => Promise<void>;
  /** As a user in the vendor's UI: deletes (archives, recycles) the record. */
  readonly remove: (id: string) => Promise<void>;
  /** The live record's fields, normalized; undefined when it is deleted or never existed. */
  readonly read: (id: string) => VendorFields | undefined;
  /** The ids of the live records. */
  readonly liveIds: () => ReadonlyArray<string>;
  /** Write requests received since the last reset, in order. */
  readonly writes: () => ReadonlyArray<VendorWrite>;

  /**
   * The vendor's notification of a change to (or the deletion of) `id`, signed as the vendor
   * signs it, for the connection whose webhook endpoint is `endpointUrl`. Built when called, so
   * two built in turn and delivered in reverse order are out of order.
   */
  readonly notification: (id: string, kind: "change" | "delete", endpointUrl: string) => VendorNotification;
}

export interface TwoWayVendor {
  /** In test names: "HubSpot", "Salesforce", "Business Central". */
  readonly label: string;
  /** The registered connector's name, and the entity the matrix syncs. */
  readonly connector: string;
  readonly entity: string;
  /** Two independent string fields a user edits (neither critical nor the match key), and the match key. */
  readonly fields: { readonly a: string; readonly b: string; readonly matchKey: string };
  /** Fields for a new record, unique by `n` (its match key value included), valid on both sides. */
  readonly sample: (n: number) => VendorFields;
  /**
   * Fields a local create passes Tandem's validation with but the vendor refuses, per item, in a
   * batch (a taken unique value, say), and the vendor's message as a pattern.
   */
  readonly refusedCreate: (
    session: VendorSession,
  ) => Promise<{ readonly fields: VendorFields; readonly message: RegExp }>;
  /**
   * Starts a fresh fake. The matrix starts one per scenario and runs scenarios side by side: with
   * transport "msw", each session's handlers must answer on an origin of its own.
   */
  readonly start: (transport: VendorTransport) => Promise<VendorSession>;
}
