/**
 * The bench's source API: the testkit's HubSpot fake, served over real loopback HTTP from this
 * separate process, so that serving pages costs the measured process nothing and the bytes
 * cross a real socket. The harness drives it over IPC (start and seed, change a share, archive
 * a share). No HubSpot behaviour lives here: store, list endpoint and paging are the testkit's.
 */
import { type ServedHubSpotFake, serveHubSpotFake } from "@tandem/testkit";
import { serveChildRpc } from "../measure/ChildProcessRpc.ts";

let served: ServedHubSpotFake | undefined;

/** How far back the seeded modification times reach, and how long ago the newest is. */
const historySpanMs = 365 * 86_400_000;
const historyEndsAgoMs = 86_400_000;

const fake = () => {
  if (served === undefined) throw new Error("source not started");
  return served.fake;
};

/** Every `step`-th live contact from `offset`: a deterministic spread over the whole id range. */
const pickShare = (share: number, offset: number): Array<string> => {
  const live = fake().live("contacts");
  const step = Math.max(1, Math.round(1 / share));
  const picked: Array<string> = [];
  for (let i = offset % step; i < live.length; i += step) picked.push(live[i]!.id);
  return picked;
};

serveChildRpc({
  start: async (input: { readonly records: number; readonly maxPageSize: number }) => {
    // HubSpot caps a list page at 100; the large-page variant lifts the cap.
    served = await serveHubSpotFake({ port: 0, knobs: { listMaxLimit: Math.max(100, input.maxPageSize) } });
    // A CRM's history, not a burst: the contacts were last modified over the past year, the
    // newest a day ago, each at its own time. So an untouched contact is older than the engine's
    // delta overlap (5 minutes, against clock skew and late commits), as it is at a real
    // vendor; seeded all "now", a delta would re-read every contact through the overlap.
    const newest = served.fake.clock.now() - historyEndsAgoMs;
    served.fake.seedContacts(input.records, {
      spacingMs: Math.max(1, Math.floor(historySpanMs / Math.max(1, input.records))),
      endAt: newest,
    });
    return { url: served.url };
  },
  /** Changes one property of a share of live contacts (which bumps their modification time). */
  change: (input: { readonly share: number; readonly label: string }) => {
    const ids = pickShare(input.share, 3);
    for (const id of ids) fake().store.update("contacts", id, { jobtitle: `${input.label} ${id}` });
    return ids;
  },
  /** Archives (HubSpot's delete) a share of live contacts. */
  archive: (input: { readonly share: number }) => {
    const ids = pickShare(input.share, 7);
    for (const id of ids) fake().store.archive("contacts", id);
    return ids;
  },
  stop: async () => {
    await served?.close();
    served = undefined;
    return null;
  },
});
