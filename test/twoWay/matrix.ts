import type { ConflictView } from "@tandem/core";
import { type SetupServer, setupServer } from "msw/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LlmBehaviour, llmBaseUrl, llmCalls, llmHandlers, llmMerge, llmModel } from "./llmFake.ts";
import { apiSide, engineSide, type LocalConnection, type LocalSide, type RecordRef } from "./localSide.ts";
import type { TwoWayVendor, VendorFields, VendorSession } from "./TwoWayVendor.ts";

/*
 * The two-way scenario matrix (issue 17): the same scenarios over each vendor's fake, once through
 * the engine's services (vendor over MSW, webhooks into the engine's intake) and once through the
 * API (a real server on loopback, the vendor served on loopback, webhooks POSTed to the server),
 * both on PostgreSQL. Nothing asks for a push: the queue's worker drains the outbox by itself
 * (pausing the connection is how a scenario holds local changes back). Each scenario has a
 * connection of its own and an emptied fake; after each one, both sides hold the same values and
 * the audit rows (conflicts, sync status and error) say why.
 */

/** What a scenario works with. */
export interface World {
  readonly vendor: TwoWayVendor;
  readonly v: VendorSession;
  readonly l: LocalConnection;
  /** Field names: two plain ones a user edits, and the match key. */
  readonly a: string;
  readonly b: string;
  /** Records the vendor has, pulled in full: both sides start with them. */
  readonly seed: (n: number) => Promise<ReadonlyArray<string>>;
  /** Local records the scenario leaves unlinked on purpose (never created at the vendor), by local id. */
  readonly unlinked: Set<string>;
}

type Scenario = (w: World) => Promise<void>;

let sampleNumber = 0;
/** A vendor sample never used before in this process (match keys stay unique across scenarios). */
const freshSample = (vendor: TwoWayVendor) => vendor.sample(++sampleNumber);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Long enough that the next change's modification time is clearly later on any clock. */
const later = () => sleep(30);

const same = (value: unknown) => (value === undefined || value === "" ? null : value);

/** The fields both sides are compared on: those of a sample, and the two edited ones. */
const comparedFields = (vendor: TwoWayVendor) => [
  ...new Set([...Object.keys(vendor.sample(0)), vendor.fields.a, vendor.fields.b, vendor.fields.matchKey]),
];

const pick = (fields: Readonly<Record<string, unknown>>, names: ReadonlyArray<string>) =>
  Object.fromEntries(names.map((n) => [n, same(fields[n])]));

/**
 * Both sides hold the same values: every live local record with a vendor id is live at the vendor
 * with the same compared fields, the vendor has no live record the host lacks, and a local record
 * without a vendor id is one the scenario left unlinked on purpose, failed with a reason.
 */
export const bothSidesEqual = async (w: World) => {
  await w.l.quiet();
  const names = comparedFields(w.vendor);
  const local = (await w.l.all()).filter((r) => r.deletedAt === null);
  const linked = local.filter((r) => r.externalId !== null);
  for (const r of linked) {
    const remote = w.v.read(r.externalId!);
    expect(remote, `the vendor's record ${r.externalId} (local ${r.localId ?? "-"})`).toBeDefined();
    expect(pick(r.data, names), `record ${r.externalId}`).toEqual(pick(remote!, names));
  }
  expect(linked.map((r) => r.externalId).sort(), "the live records").toEqual([...w.v.liveIds()].sort());
  for (const r of local.filter((r) => r.externalId === null)) {
    expect(w.unlinked.has(r.localId ?? ""), `local record ${r.localId} was never created at the vendor`).toBe(true);
    expect(r.syncStatus).toBe("failed");
    expect(r.syncError).toBeTruthy();
  }
};

/** The audit rows of one record (or all), newest last. */
const audit = async (w: World, externalId?: string): Promise<ReadonlyArray<ConflictView>> =>
  [...(await w.l.conflicts())]
    .filter((c) => externalId === undefined || c.externalId === externalId)
    .sort((x, y) => x.createdAt.localeCompare(y.createdAt));

/** The one audit row of a record says this (status, policy, who resolved it, the reason...). */
const auditSays = async (w: World, externalId: string, says: Partial<ConflictView>) => {
  const rows = await audit(w, externalId);
  expect(rows, `the audit rows of ${externalId}`).toHaveLength(1);
  expect(rows[0]).toMatchObject(says);
  return rows[0]!;
};

const noAudit = async (w: World) => expect(await audit(w)).toEqual([]);

const byId = (externalId: string): RecordRef => ({ externalId });

/** A record as the host has it, and its compared fields. */
const localFields = async (w: World, ref: RecordRef) => (await w.l.get(ref)).data as VendorFields;

/**
 * Local changes held back (the connection paused) while `body` runs, then pushed by themselves.
 * Webhooks the body delivers are processed while paused (only pushes wait); `held` looks at the
 * state before the push.
 */
const whilePaused = async (w: World, body: () => Promise<void>, held?: () => Promise<void>) => {
  await w.l.pause();
  await body();
  await w.l.quiet({ pendingAllowed: true });
  await held?.();
  await w.l.resume();
  await w.l.quiet();
};

const deliver = async (w: World, id: string, kind: "change" | "delete") => {
  const status = await w.l.deliver(w.v.notification(id, kind, w.l.webhookUrl));
  expect(status, "the webhook's answer").toBeLessThan(300);
};

/**
 * One field changed on both sides while the push was held back; the local change is the older
 * unless `localLast`. With `pulled`, the remote change is pulled (its webhook) before the push:
 * the pull meets the unpushed edit; without, the push finds the vendor's record moved.
 */
const bothChangeA = async (w: World, id: string, options: { localLast?: boolean; pulled?: boolean } = {}) => {
  await whilePaused(w, async () => {
    if (options.localLast) {
      await w.v.edit(id, { [w.a]: "Remote value" });
      await later();
      await w.l.update(byId(id), { [w.a]: "Local value" });
    } else {
      await w.l.update(byId(id), { [w.a]: "Local value" });
      await later();
      await w.v.edit(id, { [w.a]: "Remote value" });
    }
    if (options.pulled) await deliver(w, id, "change");
  });
};

const valueOfA = async (w: World, id: string) => {
  const local = await localFields(w, byId(id));
  expect(local[w.a], "the host's value").toEqual(w.v.read(id)?.[w.a]);
  return local[w.a];
};

/** A conflict left open for a person: the vendor's value stands; a person then resolves it. */
const leftForAPerson = async (w: World, id: string, reason: RegExp) => {
  const row = await auditSays(w, id, { status: "open", fields: [w.a] });
  expect(row.reason).toMatch(reason);
  expect(row.local).toMatchObject({ [w.a]: "Local value" });
  expect(row.remote).toMatchObject({ [w.a]: "Remote value" });
  expect(w.v.read(id)![w.a]).toBe("Remote value");
  expect((await w.l.get(byId(id))).syncStatus).toBe("conflict");
  await w.l.resolve(row.id, { choose: "remote" });
  await w.l.quiet();
  expect(await valueOfA(w, id)).toBe("Remote value");
  expect((await audit(w, id))[0]).toMatchObject({ status: "resolved", resolution: { [w.a]: "Remote value" } });
};

/** The connection's conflicts go to the mocked LLM, answering as `behaviour` says; answers the model's name. */
const llmPolicy = async (w: World, behaviour: LlmBehaviour) => {
  const model = llmModel(behaviour);
  await w.l.settings({
    conflictPolicy: { kind: "llm", baseUrl: llmBaseUrl, model, apiKey: "sk-matrix", timeoutMs: 1_000 },
  });
  return model;
};

const scenarios: Record<string, Scenario> = {
  // Local-only changes.
  "a local create reaches the vendor and takes its id": async (w) => {
    await w.seed(1);
    const fields = freshSample(w.vendor);
    const created = await w.l.create("host-create", fields);
    expect(created).toMatchObject({ externalId: null, syncStatus: "pending" });
    await w.l.quiet();
    const stored = await w.l.get({ localId: "host-create" });
    expect(stored).toMatchObject({ syncStatus: "synced", syncError: null });
    expect(w.v.read(stored.externalId!)).toMatchObject(fields);
    expect(w.v.writes()).toEqual([{ kind: "create", ids: [stored.externalId] }]);
    // The vendor's later edit comes back to the same record, the host's id kept.
    await later();
    await w.v.edit(stored.externalId!, { [w.a]: "Edited there" });
    await w.l.pull("delta");
    expect(await w.l.get({ localId: "host-create" })).toMatchObject({
      externalId: stored.externalId,
      data: { [w.a]: "Edited there" },
    });
    await noAudit(w);
  },
  "a local edit reaches the vendor": async (w) => {
    const [x] = await w.seed(2);
    await w.l.update(byId(x!), { [w.a]: "Edited here" });
    await w.l.quiet();
    expect(w.v.read(x!)![w.a]).toBe("Edited here");
    expect((await w.l.get(byId(x!))).syncStatus).toBe("synced");
    expect(w.v.writes()).toEqual([{ kind: "update", ids: [x] }]);
    await noAudit(w);
  },
  "a local delete reaches the vendor": async (w) => {
    const [x, y] = await w.seed(2);
    const deleted = await w.l.remove(byId(x!));
    expect(deleted.deletedAt).not.toBeNull();
    await w.l.quiet();
    expect(w.v.read(x!)).toBeUndefined();
    expect(w.v.liveIds()).toEqual([y]);
    expect((await w.l.get(byId(x!))).syncStatus).toBe("synced");
    await noAudit(w);
  },

  "a local create edited before its push: one create, with the latest values": async (w) => {
    await w.seed(1);
    const fields = freshSample(w.vendor);
    await whilePaused(w, async () => {
      await w.l.create("host-edited", fields);
      await w.l.update({ localId: "host-edited" }, { [w.a]: "Edited before the push" });
    });
    const stored = await w.l.get({ localId: "host-edited" });
    expect(stored.syncStatus).toBe("synced");
    expect(w.v.read(stored.externalId!)).toMatchObject({ ...fields, [w.a]: "Edited before the push" });
    expect(w.v.writes()).toEqual([{ kind: "create", ids: [stored.externalId] }]);
  },
  "a local create deleted before its push: nothing reaches the vendor": async (w) => {
    await w.seed(1);
    await whilePaused(w, async () => {
      await w.l.create("host-gone", freshSample(w.vendor));
      await w.l.remove({ localId: "host-gone" });
    });
    expect((await w.l.get({ localId: "host-gone" })).deletedAt).not.toBeNull();
    expect(w.v.writes()).toEqual([]);
  },
  "a local edit then delete before the push: one delete": async (w) => {
    const [x] = await w.seed(2);
    await whilePaused(w, async () => {
      await w.l.update(byId(x!), { [w.a]: "Soon gone" });
      await w.l.remove(byId(x!));
    });
    expect(w.v.read(x!)).toBeUndefined();
    expect(w.v.writes()).toEqual([{ kind: "delete", ids: [x] }]);
    await noAudit(w);
  },

  // Remote-only changes.
  "a remote create arrives with the next delta": async (w) => {
    await w.seed(1);
    const fields = freshSample(w.vendor);
    const id = await w.v.create(fields);
    await w.l.pull("delta");
    expect(await localFields(w, byId(id))).toMatchObject(fields);
    expect(w.v.writes()).toEqual([]);
    await noAudit(w);
  },
  "a remote edit arrives with the next delta": async (w) => {
    const [x] = await w.seed(2);
    await later();
    await w.v.edit(x!, { [w.a]: "Edited there" });
    await w.l.pull("delta");
    expect((await localFields(w, byId(x!)))[w.a]).toBe("Edited there");
    expect((await w.l.get(byId(x!))).syncStatus).toBe("synced");
    expect(w.v.writes()).toEqual([]);
    await noAudit(w);
  },
  "a remote delete arrives with its webhook": async (w) => {
    const [x] = await w.seed(2);
    await w.v.remove(x!);
    await deliver(w, x!, "delete");
    await w.l.quiet();
    expect((await w.l.get(byId(x!))).deletedAt).not.toBeNull();
    expect(w.v.writes()).toEqual([]);
    await noAudit(w);
  },

  // Both sides.
  "non-overlapping edits on both sides, the remote one pulled first: both kept": async (w) => {
    const [x] = await w.seed(1);
    await whilePaused(
      w,
      async () => {
        await w.l.update(byId(x!), { [w.a]: "Local a" });
        await later();
        await w.v.edit(x!, { [w.b]: "Remote b" });
        await deliver(w, x!, "change");
      },
      async () => {
        // Pulled into the record beside the unpushed local edit.
        const held = await w.l.get(byId(x!));
        expect(held).toMatchObject({ syncStatus: "pending", data: { [w.a]: "Local a", [w.b]: "Remote b" } });
      },
    );
    expect(w.v.read(x!)).toMatchObject({ [w.a]: "Local a", [w.b]: "Remote b" });
    expect((await w.l.get(byId(x!))).syncStatus).toBe("synced");
    await noAudit(w);
  },
  "a remote edit made between pull and push is merged, not overwritten": async (w) => {
    const [x] = await w.seed(1);
    await whilePaused(w, async () => {
      await w.l.update(byId(x!), { [w.a]: "Local a" });
      await later();
      // Not pulled: the push finds the vendor's record moved.
      await w.v.edit(x!, { [w.b]: "Remote b" });
    });
    expect(w.v.read(x!)).toMatchObject({ [w.a]: "Local a", [w.b]: "Remote b" });
    expect(await localFields(w, byId(x!))).toMatchObject({ [w.a]: "Local a", [w.b]: "Remote b" });
    expect((await w.l.get(byId(x!))).syncStatus).toBe("synced");
    await noAudit(w);
  },

  // The same field changed on both sides, by policy.
  "same field, last write wins: the later remote value": async (w) => {
    const [x] = await w.seed(1);
    await w.l.settings({ conflictPolicy: { kind: "last-write-wins" } });
    await bothChangeA(w, x!);
    expect(await valueOfA(w, x!)).toBe("Remote value");
    await auditSays(w, x!, { status: "resolved", resolvedBy: "policy:last-write-wins:remote", fields: [w.a] });
  },
  "same field, last write wins: the later local value": async (w) => {
    const [x] = await w.seed(1);
    await w.l.settings({ conflictPolicy: { kind: "last-write-wins" } });
    await bothChangeA(w, x!, { localLast: true });
    expect(await valueOfA(w, x!)).toBe("Local value");
    await auditSays(w, x!, { status: "resolved", resolvedBy: "policy:last-write-wins:local", fields: [w.a] });
  },
  "same field, last write wins within the clock-skew tolerance: the remote value": async (w) => {
    const [x] = await w.seed(1);
    await w.l.settings({ conflictPolicy: { kind: "last-write-wins", clockSkewToleranceMs: 60_000 } });
    await bothChangeA(w, x!, { localLast: true });
    expect(await valueOfA(w, x!)).toBe("Remote value");
    await auditSays(w, x!, { status: "resolved", resolvedBy: "policy:last-write-wins:remote" });
  },
  "same field pulled before the push, source priority remote: the remote value": async (w) => {
    const [x] = await w.seed(1);
    await w.l.settings({ conflictPolicy: { kind: "source-priority", default: "remote" } });
    await bothChangeA(w, x!, { pulled: true });
    expect(await valueOfA(w, x!)).toBe("Remote value");
    await auditSays(w, x!, { status: "resolved", resolvedBy: "policy:source-priority", fields: [w.a] });
  },
  "same field pulled before the push, last write wins: the later local value": async (w) => {
    const [x] = await w.seed(1);
    await w.l.settings({ conflictPolicy: { kind: "last-write-wins" } });
    await bothChangeA(w, x!, { localLast: true, pulled: true });
    expect(await valueOfA(w, x!)).toBe("Local value");
    await auditSays(w, x!, { status: "resolved", resolvedBy: "policy:last-write-wins:local" });
  },
  "same field pulled before the push, manual: left open, then resolved by a person": async (w) => {
    const [x] = await w.seed(1);
    await bothChangeA(w, x!, { pulled: true });
    await leftForAPerson(w, x!, /manual/);
  },
  "same field, source priority local: the local value": async (w) => {
    const [x] = await w.seed(1);
    await w.l.settings({ conflictPolicy: { kind: "source-priority", default: "local" } });
    await bothChangeA(w, x!);
    expect(await valueOfA(w, x!)).toBe("Local value");
    await auditSays(w, x!, { status: "resolved", resolvedBy: "policy:source-priority" });
  },
  "same fields, source priority remote with a field owned locally: each field by its owner": async (w) => {
    const [x] = await w.seed(1);
    await w.l.settings({
      conflictPolicy: { kind: "source-priority", default: "remote", fieldOwners: { [w.a]: "local" } },
    });
    await whilePaused(w, async () => {
      await w.l.update(byId(x!), { [w.a]: "Local a", [w.b]: "Local b" });
      await later();
      await w.v.edit(x!, { [w.a]: "Remote a", [w.b]: "Remote b" });
    });
    expect(w.v.read(x!)).toMatchObject({ [w.a]: "Local a", [w.b]: "Remote b" });
    const row = await auditSays(w, x!, { status: "resolved", resolvedBy: "policy:source-priority" });
    expect([...row.fields].sort()).toEqual([w.a, w.b].sort());
  },
  "same field, manual: left open, then resolved by a person and pushed": async (w) => {
    const [x] = await w.seed(1);
    await w.l.settings({ conflictPolicy: { kind: "manual" } });
    await bothChangeA(w, x!);
    const row = await auditSays(w, x!, { status: "open", fields: [w.a], policy: "manual" });
    expect(w.v.read(x!)![w.a]).toBe("Remote value");
    await w.l.resolve(row.id, { choose: "local" });
    await w.l.quiet();
    expect(await valueOfA(w, x!)).toBe("Local value");
    await auditSays(w, x!, { status: "resolved", resolution: { [w.a]: "Local value" } });
  },
  "same field, manual, the vendor moving again while open: one open conflict, resolved against the newest": async (
    w,
  ) => {
    const [x] = await w.seed(1);
    await bothChangeA(w, x!);
    const first = await auditSays(w, x!, { status: "open", fields: [w.a] });
    await later();
    await w.v.edit(x!, { [w.b]: "Remote b meanwhile" });
    await deliver(w, x!, "change");
    await w.l.quiet();
    // The newer detection replaces the open one: a person decides against what the vendor has now.
    const rows = await audit(w, x!);
    expect(rows.map((r) => [r.id, r.status])).toEqual([
      [first.id, "resolved"],
      [expect.any(String), "open"],
    ]);
    expect(rows[0]!.resolvedBy).toBe(`superseded:${rows[1]!.id}`);
    expect(rows[1]!.remote).toMatchObject({ [w.a]: "Remote value", [w.b]: "Remote b meanwhile" });
    await w.l.resolve(rows[1]!.id, { choose: "local" });
    await w.l.quiet();
    expect(w.v.read(x!)).toMatchObject({ [w.a]: "Local value", [w.b]: "Remote b meanwhile" });
    expect((await w.l.get(byId(x!))).syncStatus).toBe("synced");
  },
  "same field, manual: resolved while the vendor moved again (not pulled): the resolution merged with it": async (
    w,
  ) => {
    const [x] = await w.seed(1);
    await bothChangeA(w, x!);
    const row = await auditSays(w, x!, { status: "open", fields: [w.a] });
    await later();
    await w.v.edit(x!, { [w.b]: "Remote b meanwhile" });
    await w.l.resolve(row.id, { choose: "local" });
    await w.l.quiet();
    expect(w.v.read(x!)).toMatchObject({ [w.a]: "Local value", [w.b]: "Remote b meanwhile" });
    expect((await w.l.get(byId(x!))).syncStatus).toBe("synced");
  },
  "same field, manual: the host deletes the record instead of resolving: deleted at the vendor, the conflict closed":
    async (w) => {
      const [x] = await w.seed(2);
      await bothChangeA(w, x!);
      await auditSays(w, x!, { status: "open", fields: [w.a] });
      await w.l.remove(byId(x!));
      await w.l.quiet();
      expect(w.v.read(x!)).toBeUndefined();
      expect(await w.l.get(byId(x!))).toMatchObject({ syncStatus: "synced", deletedAt: expect.any(String) });
      await auditSays(w, x!, { status: "resolved", resolvedBy: "superseded:local-delete" });
    },
  "same field, the LLM resolver's valid answer: its merge on both sides": async (w) => {
    const [x] = await w.seed(1);
    const model = await llmPolicy(w, "valid");
    await bothChangeA(w, x!);
    expect(llmCalls(model)).toBe(1);
    expect(await valueOfA(w, x!)).toBe(llmMerge("Local value", "Remote value"));
    await auditSays(w, x!, { status: "resolved", resolvedBy: `llm:${model}` });
  },
  "same field, the LLM resolver's invalid answer: left open with the reason, nothing overwritten": async (w) => {
    const [x] = await w.seed(1);
    const model = await llmPolicy(w, "invalid");
    await bothChangeA(w, x!);
    expect(llmCalls(model)).toBe(1);
    await leftForAPerson(w, x!, /not JSON/);
  },
  "same field, the LLM resolver timing out: left open with the reason, nothing overwritten": async (w) => {
    const [x] = await w.seed(1);
    const model = await llmPolicy(w, "timeout");
    await bothChangeA(w, x!);
    expect(llmCalls(model)).toBe(1);
    await leftForAPerson(w, x!, /LLM request failed/);
  },

  // A delete on one side against an edit on the other.
  "remote delete against an unpushed local edit, edit wins (default): recreated at the vendor": async (w) => {
    await w.seed(1);
    await w.l.create("host-kept", freshSample(w.vendor));
    await w.l.quiet();
    const x = (await w.l.get({ localId: "host-kept" })).externalId!;
    await whilePaused(w, async () => {
      await w.l.update({ localId: "host-kept" }, { [w.a]: "Kept edit" });
      await w.v.remove(x);
      await deliver(w, x, "delete");
    });
    expect(w.v.read(x)).toBeUndefined();
    // Created again under a new id, which the host's id now names.
    const recreated = await w.l.get({ localId: "host-kept" });
    expect(recreated).toMatchObject({ syncStatus: "synced", deletedAt: null });
    expect(recreated.externalId).not.toBe(x);
    expect(w.v.read(recreated.externalId!)).toMatchObject({ [w.a]: "Kept edit" });
    const row = (await audit(w, x)).at(-1)!;
    expect(row).toMatchObject({ status: "resolved", policy: "delete-against-edit:edit-wins" });
    expect(row.remote).toEqual({ deleted: true });
    expect(row.local).toMatchObject({ [w.a]: "Kept edit" });
    // A late notification for the old id changes nothing, and writes nothing.
    const writes = w.v.writes().length;
    await deliver(w, x, "change");
    await w.l.quiet();
    expect(w.v.writes()).toHaveLength(writes);
    expect((await w.l.get({ localId: "host-kept" })).externalId).toBe(recreated.externalId);
  },
  "remote delete against an unpushed local edit, delete wins: the edit dropped, in the audit": async (w) => {
    const [x] = await w.seed(2);
    await w.l.settings({ deleteAgainstEdit: "delete-wins" });
    await whilePaused(w, async () => {
      await w.l.update(byId(x!), { [w.a]: "Dropped edit" });
      await w.v.remove(x!);
      await deliver(w, x!, "delete");
    });
    expect((await w.l.get(byId(x!))).deletedAt).not.toBeNull();
    const row = await auditSays(w, x!, { status: "resolved", policy: "delete-against-edit:delete-wins" });
    expect(row.local).toMatchObject({ [w.a]: "Dropped edit" });
    expect(w.v.writes().filter((wr) => wr.kind === "create")).toEqual([]);
  },
  "local delete against a remote edit, edit wins (default): restored as the vendor has it": async (w) => {
    const [x] = await w.seed(2);
    await whilePaused(w, async () => {
      await w.l.remove(byId(x!));
      await later();
      await w.v.edit(x!, { [w.a]: "Remote edit" });
      await deliver(w, x!, "change");
    });
    const restored = await w.l.get(byId(x!));
    expect(restored.deletedAt).toBeNull();
    expect(restored.data[w.a]).toBe("Remote edit");
    expect(w.v.read(x!)![w.a]).toBe("Remote edit");
    const row = await auditSays(w, x!, { status: "resolved", policy: "delete-against-edit:edit-wins" });
    expect(row.local).toEqual({ deleted: true });
    expect(w.v.writes().filter((wr) => wr.kind === "delete")).toEqual([]);
    // The restored record syncs as any other.
    await w.l.update(byId(x!), { [w.b]: "After the restore" });
    await w.l.quiet();
    expect(w.v.read(x!)![w.b]).toBe("After the restore");
  },
  "local delete against a remote edit, delete wins: deleted at the vendor, the edit in the audit": async (w) => {
    const [x] = await w.seed(2);
    await w.l.settings({ deleteAgainstEdit: "delete-wins" });
    await whilePaused(w, async () => {
      await w.l.remove(byId(x!));
      await later();
      await w.v.edit(x!, { [w.a]: "Remote edit" });
      await deliver(w, x!, "change");
    });
    expect(w.v.read(x!)).toBeUndefined();
    const row = await auditSays(w, x!, { status: "resolved", policy: "delete-against-edit:delete-wins" });
    expect(row.remote).toMatchObject({ [w.a]: "Remote edit" });
  },

  // Webhooks and echoes.
  "out-of-order webhooks: the later state stands": async (w) => {
    const [x, y] = await w.seed(2);
    await w.v.edit(x!, { [w.a]: "First" });
    const first = w.v.notification(x!, "change", w.l.webhookUrl);
    await later();
    await w.v.edit(x!, { [w.a]: "Second" });
    const second = w.v.notification(x!, "change", w.l.webhookUrl);
    await w.v.edit(y!, { [w.a]: "Before its deletion" });
    const change = w.v.notification(y!, "change", w.l.webhookUrl);
    await later();
    await w.v.remove(y!);
    const deletion = w.v.notification(y!, "delete", w.l.webhookUrl);
    for (const n of [second, deletion, first, change]) expect(await w.l.deliver(n)).toBeLessThan(300);
    await w.l.quiet();
    expect((await localFields(w, byId(x!)))[w.a]).toBe("Second");
    expect((await w.l.get(byId(y!))).deletedAt).not.toBeNull();
    expect(w.v.writes()).toEqual([]);
  },
  "the echo loop: a push, then its webhook and the delta, is exactly one remote write": async (w) => {
    const [x, y] = await w.seed(2);
    await w.l.update(byId(x!), { [w.a]: "Echo" });
    await w.l.create("host-echo", freshSample(w.vendor));
    await w.l.remove(byId(y!));
    await w.l.quiet();
    const created = (await w.l.get({ localId: "host-echo" })).externalId!;
    for (const id of [x!, created]) await deliver(w, id, "change");
    await deliver(w, y!, "delete");
    await w.l.quiet();
    await w.l.pull("delta");
    await w.l.quiet();
    const writes = w.v.writes();
    expect(writes.filter((wr) => wr.ids.includes(x!))).toEqual([{ kind: "update", ids: [x] }]);
    expect(writes.filter((wr) => wr.kind === "create")).toEqual([{ kind: "create", ids: [created] }]);
    expect(writes.filter((wr) => wr.kind === "delete")).toEqual([{ kind: "delete", ids: [y] }]);
    expect(writes).toHaveLength(3);
    expect(await w.l.get({ localId: "host-echo" })).toMatchObject({ externalId: created, syncStatus: "synced" });
    await noAudit(w);
  },

  // Batches.
  "a batch push with a per-item failure: that record failed with the vendor's message, the rest synced": async (w) => {
    await w.seed(1);
    // The first local create runs initial matching; the batch after it meets the vendor's refusal.
    await w.l.create("host-first", freshSample(w.vendor));
    await w.l.quiet();
    const refused = await w.vendor.refusedCreate(w.v);
    // The refusal may need a record at the vendor (a taken unique value): the host pulls it too.
    await w.l.pull("delta");
    const before = w.v.writes().length;
    await whilePaused(w, async () => {
      await w.l.create("host-ok-1", freshSample(w.vendor));
      await w.l.create("host-refused", refused.fields);
      await w.l.create("host-ok-2", freshSample(w.vendor));
    });
    const ok = await Promise.all(["host-ok-1", "host-ok-2"].map((localId) => w.l.get({ localId })));
    for (const r of ok) {
      expect(r, r.localId!).toMatchObject({ syncStatus: "synced", syncError: null });
      expect(w.v.read(r.externalId!)).toBeDefined();
    }
    const failed = await w.l.get({ localId: "host-refused" });
    expect(failed).toMatchObject({ externalId: null, syncStatus: "failed" });
    expect(failed.syncError).toMatch(refused.message);
    // Batched: the two accepted records were created by one request (whatever the vendor's refusal took first).
    const accepted = [ok[0]!.externalId, ok[1]!.externalId];
    const creates = w.v
      .writes()
      .slice(before)
      .filter((wr) => wr.kind === "create");
    expect(
      creates.some((wr) => accepted.every((id) => wr.ids.includes(id!))),
      JSON.stringify(creates),
    ).toBe(true);
    // The host corrects the refused record: its create goes again, and is taken.
    const key = w.vendor.fields.matchKey;
    const corrected = freshSample(w.vendor)[key];
    await w.l.update({ localId: "host-refused" }, { [key]: corrected });
    await w.l.quiet();
    const repaired = await w.l.get({ localId: "host-refused" });
    expect(repaired).toMatchObject({ syncStatus: "synced", syncError: null });
    expect(w.v.read(repaired.externalId!)).toMatchObject({ [key]: corrected });
  },

  // Initial matching.
  "initial matching: sync.plan reports matches, duplicates and ambiguous candidates; the first sync does it": async (
    w,
  ) => {
    const key = w.vendor.fields.matchKey;
    const [sx, sy, sz] = [freshSample(w.vendor), freshSample(w.vendor), freshSample(w.vendor)];
    const [x, y, z] = [await w.v.create(sx), await w.v.create(sy), await w.v.create(sz)];
    await w.l.settings({ conflictPolicy: { kind: "source-priority", default: "local" } });
    await w.l.pause();
    await w.l.create("h-x", { ...sx, [w.a]: "The host's a" });
    // Two host records claim the vendor's y: ambiguous, neither linked nor created.
    await w.l.create("h-y-1", { ...sy });
    await w.l.create("h-y-2", { [key]: sy[key] });
    const fresh = { ...freshSample(w.vendor), [w.b]: sx[w.b] };
    await w.l.create("h-new", fresh);

    const plan = await w.l.plan();
    expect(plan.matched).toEqual([expect.objectContaining({ localId: "h-x", externalId: x })]);
    expect(plan.toCreateRemotely.map((r) => r.localId)).toEqual(["h-new"]);
    expect(plan.ambiguous.map((r) => [r.localId, r.reason]).sort()).toEqual([
      ["h-y-1", "local"],
      ["h-y-2", "local"],
    ]);
    expect(plan.toCreateLocally.map((r) => r.externalId)).toEqual(expect.arrayContaining([z]));
    // By another key, several vendor records are candidates for one host record.
    await w.v.edit(y!, { [w.b]: sx[w.b] });
    const byB = await w.l.plan([w.b]);
    const ambiguous = byB.ambiguous.find((r) => r.localId === "h-new");
    expect(ambiguous?.reason).toBe("vendor");
    expect(ambiguous?.candidates.map((c) => c.externalId).sort()).toEqual([x, y].sort());
    // A dry run.
    expect(w.v.writes()).toEqual([]);

    await w.l.resume();
    await w.l.quiet();
    await w.l.pull("full");
    await w.l.quiet();
    expect(await w.l.get({ localId: "h-x" })).toMatchObject({ externalId: x, syncStatus: "synced" });
    expect(w.v.read(x!)![w.a]).toBe("The host's a");
    const created = (await w.l.get({ localId: "h-new" })).externalId!;
    expect(w.v.read(created)).toMatchObject({ [key]: fresh[key] });
    expect(w.v.writes().filter((wr) => wr.kind === "create")).toEqual([{ kind: "create", ids: [created] }]);
    for (const localId of ["h-y-1", "h-y-2"]) {
      const held = await w.l.get({ localId });
      expect(held, localId).toMatchObject({ externalId: null, syncStatus: "failed" });
      expect(held.syncError).toContain("ambiguous match");
      w.unlinked.add(localId);
    }
    expect((await w.l.deadPushes()).filter((d) => d.operation === "create")).toHaveLength(2);
    // The vendor's y and z arrived with the pull, once each.
    expect((await w.l.get(byId(z!))).data[key]).toBe(sz[key]);
    expect((await w.l.get(byId(y!))).localId).toBeNull();
  },
};

const runScenario = async (vendor: TwoWayVendor, side: LocalSide, msw: SetupServer, scenario: Scenario) => {
  const v = await vendor.start(side.mode === "api" ? "loopback" : "msw");
  try {
    // Added for this scenario's fake alone (its own origin); never reset, others run beside it.
    msw.use(...v.handlers);
    const l = await side.connect(vendor.connector, vendor.entity, v.config);
    const w: World = {
      vendor,
      v,
      l,
      a: vendor.fields.a,
      b: vendor.fields.b,
      unlinked: new Set(),
      seed: async (n) => {
        const ids: Array<string> = [];
        for (let i = 0; i < n; i++) ids.push(await v.create(freshSample(vendor)));
        await l.pull("full");
        await l.quiet();
        // The scenario counts writes from here: a pull writes nothing.
        expect(v.writes()).toEqual([]);
        await later();
        return ids;
      },
    };
    await scenario(w);
    await bothSidesEqual(w);
  } finally {
    await v.close();
  }
};

/**
 * Registers the matrix's suites for one vendor: every scenario through the engine and through the
 * API, scenarios side by side (each with its own fake and connection).
 */
export const describeTwoWayMatrix = (vendor: TwoWayVendor) => {
  for (const mode of ["engine", "api"] as const) {
    describe(`${vendor.label}: the two-way matrix through the ${mode === "api" ? "API" : "engine"}`, () => {
      let side: LocalSide;
      let msw: SetupServer;

      beforeAll(async () => {
        msw = setupServer(...llmHandlers);
        // The API's own traffic and the loopback fakes pass through.
        msw.listen({ onUnhandledFrame: "bypass" });
        side = mode === "api" ? await apiSide() : await engineSide();
      });
      afterAll(async () => {
        await side?.close();
        msw?.close();
      });

      for (const [name, scenario] of Object.entries(scenarios)) {
        it.concurrent(name, () => runScenario(vendor, side, msw, scenario));
      }
    });
  }
};
