/**
 * The bench's source API: the testkit's HubSpot fake, served over real loopback HTTP from this
 * separate process, so that serving pages costs Tandem's process nothing and the bytes cross a
 * real socket. The harness drives it over IPC (seed, change a share, archive a share).
 *
 * No HubSpot behaviour lives here: the fake (store, list endpoint, paging) is `@tandem/testkit`'s.
 * This module only adapts to its exports, which are looked up by name so that the bench still
 * starts (and reports the source as missing) on a branch where the fake has not landed yet.
 */
import * as testkit from "@tandem/testkit";
import { serveChildRpc } from "../measure/ChildProcessRpc.ts";

/** What the bench needs of the fake's store (see `HubSpotStore` in the testkit). */
interface FakeStore {
  readonly all: (type: "contacts") => ReadonlyArray<{ readonly id: string; readonly archived: boolean }>;
  readonly seed: (type: "contacts", n: number, options?: { readonly spacingMs?: number }) => ReadonlyArray<unknown>;
  readonly update: (type: "contacts", id: string, properties: Record<string, unknown>) => unknown;
  readonly archive: (type: "contacts", id: string) => void;
}

interface FakeServer {
  readonly url: string;
  readonly close: () => Promise<void>;
}

const exported = testkit as Record<string, unknown>;

/**
 * Expected testkit exports (branch `hubspot`): `createHubSpotFake(options)` returning an object
 * with its `store` and mutable `knobs`, and `serveHubSpotFake(fake, { port, host })` serving it on
 * loopback. If the names differ when the fake lands, this function is the only place to adapt.
 */
const startFake = async (maxPageSize: number): Promise<{ store: FakeStore; server: FakeServer }> => {
  const create = exported.createHubSpotFake;
  const serve = exported.serveHubSpotFake;
  if (typeof create !== "function" || typeof serve !== "function") {
    throw new Error(
      "@tandem/testkit does not export createHubSpotFake/serveHubSpotFake yet (the HubSpot fake is built on branch " +
        "`hubspot`; merge it, then adapt startFake in bench/src/source/hubSpotSourceMain.ts if its names differ)",
    );
  }
  const clock = exported.systemClock;
  const fake = (create as (options: object) => { store: FakeStore; knobs?: Record<string, unknown> })({
    ...(clock === undefined ? {} : { clock }),
  });
  // HubSpot caps `limit` at 100. The large-page variant needs the fake to serve more per page; the
  // harness checks the page size it actually gets and says so if the cap was not lifted.
  if (fake.knobs !== undefined && "maxPageSize" in fake.knobs) fake.knobs.maxPageSize = maxPageSize;
  const server = await (serve as (fake: unknown, options: object) => Promise<FakeServer>)(fake, {
    port: 0,
    host: "127.0.0.1",
  });
  return { store: fake.store, server };
};

let current: { store: FakeStore; server: FakeServer } | undefined;

const live = (): FakeStore => {
  if (current === undefined) throw new Error("source not started");
  return current.store;
};

/** Every `step`-th live contact, starting at `offset`: a deterministic spread over the id range. */
const pickShare = (share: number, offset: number): Array<string> => {
  const contacts = live()
    .all("contacts")
    .filter((c) => !c.archived);
  const step = Math.max(1, Math.round(1 / share));
  const picked: Array<string> = [];
  for (let i = offset % step; i < contacts.length; i += step) picked.push(contacts[i]!.id);
  return picked;
};

serveChildRpc({
  start: async (input: { readonly records: number; readonly maxPageSize: number }) => {
    current = await startFake(input.maxPageSize);
    // 1 ms apart: distinct, ordered modification times, all in the recent past.
    current.store.seed("contacts", input.records, { spacingMs: 1 });
    return { url: current.server.url };
  },
  /** Changes one property of a share of live contacts (bumping their modification time). */
  change: (input: { readonly share: number; readonly label: string }) => {
    const ids = pickShare(input.share, 3);
    for (const id of ids) live().update("contacts", id, { jobtitle: `${input.label} ${id}` });
    return ids;
  },
  /** Archives (HubSpot's delete) a share of live contacts. */
  archive: (input: { readonly share: number }) => {
    const ids = pickShare(input.share, 7);
    for (const id of ids) live().archive("contacts", id);
    return ids;
  },
  stop: async () => {
    await current?.server.close();
    current = undefined;
    return null;
  },
});
