import type {
  AnyConnector,
  ConnectorContext,
  ConnectorError,
  EntityDefinition,
  ReadOptions,
  ReadPage,
} from "@tandem/connector-sdk";
import {
  callBatchWrite,
  callConnector,
  type DecodedRecord,
  type DecodedWriteResult,
  decodeRecord,
  makeConnectorContext,
  sourceStream,
  type TokenBucket,
  versionOf,
} from "@tandem/connector-sdk/runtime";
import { Chunk, Effect, Either, Schema, Stream } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ConformanceEntityFake, ConformanceFake } from "./ConformanceFake.ts";

/*
 * Connector code is called exactly as the engine calls it (core's connector runtime:
 * both authoring styles, thrown values mapped to error reasons, records decoded with
 * the entity's schema), so a connector that passes here behaves the same under the engine.
 */

/** No rate budget: the suite checks behaviour, and a 429 it provokes must not slow the next check. */
const unbudgeted: TokenBucket = {
  acquire: Effect.void,
  observe: () => Effect.void,
  available: Effect.succeed(Number.POSITIVE_INFINITY),
};

const attempt = <A>(effect: Effect.Effect<A, ConnectorError>): Promise<Either.Either<A, ConnectorError>> =>
  Effect.runPromise(Effect.either(effect));

/** The value, or a test failure naming the connector error. */
const succeed = async <A>(what: string, effect: Effect.Effect<A, ConnectorError>): Promise<A> => {
  const result = await attempt(effect);
  if (Either.isLeft(result)) {
    throw new Error(`${what} failed with ${result.left._tag}: ${result.left.message}`, { cause: result.left });
  }
  return result.right;
};

const readPages = (ctx: ConnectorContext<any>, entity: EntityDefinition<any, any>, options: ReadOptions) =>
  sourceStream(() => entity.read(ctx, options)).pipe(
    Stream.runCollect,
    Effect.map((pages) => Chunk.toReadonlyArray(pages) as ReadonlyArray<ReadPage>),
  );

/** Every entry `readIds` lists: a bare id, or an id with its modification time. */
const readListed = (ctx: ConnectorContext<any>, entity: EntityDefinition<any, any>) =>
  sourceStream(() => entity.readIds!(ctx)).pipe(
    Stream.runCollect,
    Effect.map((pages) =>
      Chunk.toReadonlyArray(pages).flatMap((page) =>
        [...page].map((entry) =>
          typeof entry === "object" && entry !== null
            ? { id: String(entry.id), updatedAt: entry.updatedAt as unknown }
            : { id: String(entry), updatedAt: undefined },
        ),
      ),
    ),
  );

const readIds = (ctx: ConnectorContext<any>, entity: EntityDefinition<any, any>) =>
  readListed(ctx, entity).pipe(Effect.map((entries) => entries.map((e) => e.id)));

/** Every record of the pages, decoded as the engine decodes them; a page or record that does not is a failure. */
const decodePages = (entity: EntityDefinition<any, any>, pages: ReadonlyArray<ReadPage>) => {
  const records: Array<DecodedRecord> = [];
  for (const [index, page] of pages.entries()) {
    expect(Array.isArray(page?.records), `page ${index} must be { records: [...], cursor? }`).toBe(true);
    for (const raw of page.records) {
      const decoded = decodeRecord(entity, raw);
      if (Either.isLeft(decoded)) {
        throw new Error(`a record of page ${index} does not decode: ${decoded.left.message}`, { cause: raw });
      }
      records.push(decoded.right);
    }
  }
  return records;
};

const deletedIds = (pages: ReadonlyArray<ReadPage>) =>
  new Set(pages.flatMap((page) => (page.deleted ?? []).map(String)));

const sortedIds = (ids: Iterable<string>) => [...ids].sort();

/** A delta read's lower bound just after everything read so far: only later changes are "since". */
const justAfter = (records: ReadonlyArray<DecodedRecord>) =>
  new Date(Math.max(0, ...records.map((r) => r.updatedAt?.getTime() ?? 0)) + 1);

/** `get` of a record that does not exist: null, or a NotFound failure. */
const expectGone = async (ctx: ConnectorContext<any>, entity: EntityDefinition<any, any>, id: string) => {
  const result = await attempt(callConnector(() => entity.get!(ctx, id)));
  if (Either.isLeft(result)) expect(result.left._tag).toBe("NotFound");
  else expect(result.right ?? null).toBeNull();
};

/**
 * Registers vitest suites checking `connector` against a stateful fake of its API:
 * for every entity, records decode and have primary keys; full and delta reads agree
 * with the fake; a read resumes from a saved cursor; a 401 is `AuthExpired` and a 429
 * `RateLimited` with the vendor's delay; deletions are detected the way the entity
 * declares (`deletes`); writes round-trip. Call it at the top level of a test file.
 *
 * @example
 * import { describeConnector } from "@tandem/testkit/conformance";
 * describeConnector(myConnector, myConformanceFake);
 */
export const describeConnector = (connector: AnyConnector, fake: ConformanceFake): void => {
  describe(`connector conformance: ${connector.name}`, () => {
    let ctx: ConnectorContext<any>;
    if (fake.handlers !== undefined) {
      const server = setupServer(...fake.handlers);
      beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
      afterAll(() => server.close());
    }
    beforeEach(async () => {
      fake.reset();
      const config = Schema.decodeUnknownSync(connector.config)(fake.config);
      // A fresh context per check, as the engine makes one per run.
      ctx = await Effect.runPromise(makeConnectorContext(connector, config, unbudgeted, new AbortController().signal));
    });

    it("declares a valid name, a version and at least one entity", () => {
      expect(connector.name).toMatch(/^[a-z0-9][a-z0-9-]*$/);
      expect(connector.version).not.toBe("");
      expect(Object.keys(connector.entities).length).toBeGreaterThan(0);
    });

    if (connector.check !== undefined) {
      const check = connector.check;
      it("check accepts the fake's credentials", async () => {
        await succeed(
          "check",
          callConnector(() => check(ctx)),
        );
      });
    }

    for (const [name, entity] of Object.entries(connector.entities) as Array<[string, EntityDefinition<any, any>]>) {
      describeEntity(
        name,
        entity,
        () => ctx,
        fake,
        fake.entities[name],
        connector.webhooks === undefined ? undefined : connector,
      );
    }
  });
};

const describeEntity = (
  name: string,
  entity: EntityDefinition<any, any>,
  context: () => ConnectorContext<any>,
  fake: ConformanceFake,
  entityFake: ConformanceEntityFake | undefined,
  withWebhooks: AnyConnector | undefined,
) =>
  describe(`entity ${name}`, () => {
    if (entityFake === undefined) {
      it("has an adapter in the fake", () => {
        expect.fail(`the ConformanceFake has no entry for entity "${name}"`);
      });
      return;
    }
    const api = entityFake;
    const seeded = () => {
      api.seed(fake.seedCount);
      return api.snapshot();
    };
    const fullRead = async () => {
      const pages = await succeed("full read", readPages(context(), entity, {}));
      return { pages, records: decodePages(entity, pages) };
    };

    it("every record read decodes with the entity's schema and has a unique primary key", async () => {
      seeded();
      const { records } = await fullRead();
      expect(records.length).toBe(fake.seedCount);
      for (const record of records) expect(record.externalId).not.toBe("");
      expect(new Set(records.map((r) => r.externalId)).size).toBe(records.length);
    });

    it("a full read returns exactly the fake's records, with their modification times", async () => {
      const expected = seeded();
      const { records } = await fullRead();
      expect(sortedIds(records.map((r) => r.externalId))).toEqual(sortedIds(expected.keys()));
      for (const record of records) {
        expect(record.updatedAt?.toISOString(), `updatedAt of ${record.externalId}`).toBe(
          expected.get(record.externalId)?.toISOString(),
        );
      }
    });

    it("a delta read returns the changes since its bound, and applied to the full read agrees with the fake", async () => {
      seeded();
      const { records } = await fullRead();
      const since = justAfter(records);
      const [first] = records;
      api.update(first!.externalId);
      const created = api.create();
      const pages = await succeed("delta read", readPages(context(), entity, { since }));
      const changed = decodePages(entity, pages);
      const changedIds = new Set(changed.map((r) => r.externalId));
      expect(changedIds.has(first!.externalId), "the updated record is in the delta").toBe(true);
      expect(changedIds.has(created), "the created record is in the delta").toBe(true);
      for (const record of changed) {
        if (record.updatedAt !== null) expect(record.updatedAt.getTime()).toBeGreaterThanOrEqual(since.getTime());
      }
      // What the engine does with the two reads: upsert, newest wins, then apply deletions.
      const local = new Map(records.map((r) => [r.externalId, r.updatedAt?.toISOString()]));
      for (const record of changed) local.set(record.externalId, record.updatedAt?.toISOString());
      for (const id of deletedIds(pages)) local.delete(id);
      const remote = api.snapshot();
      expect(sortedIds(local.keys())).toEqual(sortedIds(remote.keys()));
      for (const [id, at] of remote) expect(local.get(id), `updatedAt of ${id}`).toBe(at.toISOString());
    });

    it("a read resumes from a saved cursor, and its last page has none", async () => {
      seeded();
      const { pages } = await fullRead();
      expect(pages.length, `seedCount must fill more than one page`).toBeGreaterThan(1);
      expect(pages.at(-1)!.cursor ?? undefined).toBeUndefined();
      const cursor = pages[0]!.cursor;
      expect(typeof cursor).toBe("string");
      const resumed = decodePages(entity, await succeed("resumed read", readPages(context(), entity, { cursor })));
      const rest = decodePages(entity, pages.slice(1));
      expect(sortedIds(resumed.map((r) => r.externalId))).toEqual(sortedIds(rest.map((r) => r.externalId)));
    });

    it("a delta read resumes from a saved cursor too", async () => {
      seeded();
      // A bound before every record: the delta spans as many pages as the fake's data allows.
      const since = new Date(0);
      const pages = await succeed("delta read", readPages(context(), entity, { since }));
      expect(pages.at(-1)!.cursor ?? undefined).toBeUndefined();
      if (pages.length === 1) return; // one page: nothing to resume, and the check above holds
      const resumed = await succeed("resumed delta", readPages(context(), entity, { since, cursor: pages[0]!.cursor }));
      const ids = (ps: ReadonlyArray<ReadPage>) => sortedIds(decodePages(entity, ps).map((r) => r.externalId));
      expect(ids(resumed)).toEqual(ids(pages.slice(1)));
      expect(sortedIds(deletedIds(resumed))).toEqual(sortedIds(deletedIds(pages.slice(1))));
    });

    it("a 401 is AuthExpired", async () => {
      seeded();
      fake.failNext({ status: 401 });
      const result = await attempt(readPages(context(), entity, {}));
      expect(Either.isLeft(result) && result.left._tag).toBe("AuthExpired");
    });

    it("a 429 is RateLimited with the vendor's delay", async () => {
      seeded();
      fake.failNext({ status: 429, retryAfterSeconds: 7 });
      const result = await attempt(readPages(context(), entity, {}));
      expect(Either.isLeft(result) && result.left._tag).toBe("RateLimited");
      expect(Either.isLeft(result) && result.left._tag === "RateLimited" && result.left.retryAfterMs).toBe(7_000);
    });

    if (entity.get !== undefined) {
      const get = entity.get;
      it("get(id) returns the record", async () => {
        const expected = seeded();
        const [id, at] = [...expected][0]!;
        const raw = await succeed(
          "get",
          callConnector(() => get(context(), id)),
        );
        const decoded = decodeRecord(entity, raw);
        if (Either.isLeft(decoded)) throw new Error(`get's record does not decode: ${decoded.left.message}`);
        expect(decoded.right.externalId).toBe(id);
        expect(decoded.right.updatedAt?.toISOString()).toBe(at.toISOString());
      });
    }

    if (entity.readIds !== undefined) {
      it("readIds lists every live record once; a listed modification time is the record's updatedAt", async () => {
        const expected = seeded();
        const listed = await succeed("readIds", readListed(context(), entity));
        expect(sortedIds(listed.map((e) => e.id))).toEqual(sortedIds(expected.keys()));
        // A time that is not the record's own would have reconciliation re-fetch it every run.
        for (const { id, updatedAt } of listed) {
          if (updatedAt === undefined) continue;
          expect(updatedAt, `updatedAt listed for ${id}`).toBeInstanceOf(Date);
          expect((updatedAt as Date).toISOString(), `updatedAt listed for ${id}`).toBe(expected.get(id)?.toISOString());
        }
      });
    }

    if (entity.getMany !== undefined) {
      const getMany = entity.getMany;
      it("getMany(ids) returns those records and leaves out an id that no longer exists", async () => {
        const expected = seeded();
        const [gone, ...rest] = [...expected.keys()];
        const wanted = rest.slice(0, 3);
        api.remove(gone!);
        const raws = await succeed(
          "getMany",
          callConnector(() => getMany(context(), [...wanted, gone!])),
        );
        const records = raws.map((raw) => {
          const decoded = decodeRecord(entity, raw);
          if (Either.isLeft(decoded)) throw new Error(`a record of getMany does not decode: ${decoded.left.message}`);
          return decoded.right;
        });
        expect(sortedIds(records.map((r) => r.externalId))).toEqual(sortedIds(wanted));
        for (const record of records) {
          expect(record.updatedAt?.toISOString()).toBe(expected.get(record.externalId)?.toISOString());
        }
      });
    }

    describeDeletions(name, entity, context, api, seeded, fullRead, withWebhooks);
    describeWrites(entity, context, api, seeded);
  });

const describeDeletions = (
  name: string,
  entity: EntityDefinition<any, any>,
  context: () => ConnectorContext<any>,
  api: ConformanceEntityFake,
  seeded: () => ReadonlyMap<string, Date>,
  fullRead: () => Promise<{ readonly records: ReadonlyArray<DecodedRecord> }>,
  connector: AnyConnector | undefined,
) => {
  const declared = entity.deletes ?? "reconcile";
  const removeOne = () => {
    const [id] = seeded().keys();
    api.remove(id!);
    return id!;
  };

  if (declared === "api") {
    it('deletes: "api": a delta read lists a deleted record in a page\'s `deleted`', async () => {
      seeded();
      const since = justAfter((await fullRead()).records);
      const [victim] = api.snapshot().keys();
      api.remove(victim!);
      const pages = await succeed("delta read", readPages(context(), entity, { since }));
      expect(deletedIds(pages).has(victim!)).toBe(true);
      expect(decodePages(entity, pages).some((r) => r.externalId === victim)).toBe(false);
      if (entity.get !== undefined) await expectGone(context(), entity, victim!);
    });
  }

  if (declared === "reconcile") {
    it('deletes: "reconcile": readIds lists exactly the live records, without a deleted one', async () => {
      expect(entity.readIds, "an entity reconciled by id needs readIds").toBeTypeOf("function");
      const victim = removeOne();
      const ids = await succeed("readIds", readIds(context(), entity));
      expect(ids).not.toContain(victim);
      expect(sortedIds(ids)).toEqual(sortedIds(api.snapshot().keys()));
      if (entity.get !== undefined) await expectGone(context(), entity, victim);
    });
  }

  if (declared === "webhook" || api.deletionWebhook !== undefined) {
    it(`${declared === "webhook" ? 'deletes: "webhook": ' : ""}a deletion webhook verifies and parses to a "deleted" event`, () => {
      expect(connector?.webhooks, "an entity deleted by webhook needs the connector's webhooks").toBeDefined();
      expect(api.deletionWebhook, "the fake must provide deletionWebhook").toBeTypeOf("function");
      const victim = removeOne();
      const { request, now } = api.deletionWebhook!(victim);
      const config = context().config;
      expect(connector!.webhooks!.verify({ config, now }, request)).toBe(true);
      expect(connector!.webhooks!.verify({ config, now }, { ...request, rawBody: `${request.rawBody} ` })).toBe(false);
      const events = connector!.webhooks!.parse(request);
      expect(events).toContainEqual(expect.objectContaining({ entity: name, externalId: victim, kind: "deleted" }));
    });
  }
};

const describeWrites = (
  entity: EntityDefinition<any, any>,
  context: () => ConnectorContext<any>,
  api: ConformanceEntityFake,
  seeded: () => ReadonlyMap<string, Date>,
) => {
  const write = entity.write;
  if (write === undefined) return;
  /** A write's answer and `get` afterwards both show the fields written. */
  const expectWritten = async (raw: unknown, fields: Record<string, unknown>, id?: string): Promise<DecodedRecord> => {
    const decoded = decodeRecord(entity, raw);
    if (Either.isLeft(decoded)) throw new Error(`the written record does not decode: ${decoded.left.message}`);
    if (id !== undefined) expect(decoded.right.externalId).toBe(id);
    expect(decoded.right.record).toMatchObject(fields);
    expect(api.snapshot().has(decoded.right.externalId), "the fake holds the written record").toBe(true);
    if (entity.get !== undefined) {
      const again = decodeRecord(
        entity,
        await succeed(
          "get",
          callConnector(() => entity.get!(context(), decoded.right.externalId)),
        ),
      );
      expect(Either.isRight(again) && again.right.record).toMatchObject(fields);
    }
    return decoded.right;
  };

  if (write.create !== undefined) {
    const create = write.create;
    it("write.create round-trips", async () => {
      const sample = api.writeSamples?.create?.();
      expect(sample, "the fake must provide writeSamples.create").toBeDefined();
      const before = new Set(seeded().keys());
      const created = await expectWritten(
        await succeed(
          "create",
          callConnector(() => create(context(), sample!)),
        ),
        sample!,
      );
      expect(before.has(created.externalId)).toBe(false);
    });
  }
  if (write.update !== undefined) {
    const update = write.update;
    it("write.update round-trips", async () => {
      const changes = api.writeSamples?.update?.();
      expect(changes, "the fake must provide writeSamples.update").toBeDefined();
      const [id] = seeded().keys();
      await expectWritten(
        await succeed(
          "update",
          callConnector(() => update(context(), id!, changes!)),
        ),
        changes!,
        id,
      );
    });
  }
  if (write.delete !== undefined) {
    const remove = write.delete;
    it("write.delete removes the record", async () => {
      const [id] = seeded().keys();
      await succeed(
        "delete",
        callConnector(() => remove(context(), id!)),
      );
      expect(api.snapshot().has(id!)).toBe(false);
      if (entity.get !== undefined) await expectGone(context(), entity, id!);
    });
  }
  describeBatchWrites(entity, context, api, seeded, expectWritten);
  describeConditionalWrites(entity, context, api, seeded);
};

/** A record that existed and is deleted now, as a user would delete it in the vendor's UI. */
const deletedId = (api: ConformanceEntityFake) => {
  const id = api.create();
  api.remove(id);
  return id;
};

const outcomes = (results: ReadonlyArray<DecodedWriteResult>) => results.map((r) => (r.ok ? "ok" : r.error._tag));

const describeBatchWrites = (
  entity: EntityDefinition<any, any>,
  context: () => ConnectorContext<any>,
  api: ConformanceEntityFake,
  seeded: () => ReadonlyMap<string, Date>,
  expectWritten: (raw: unknown, fields: Record<string, unknown>, id?: string) => Promise<DecodedRecord>,
) => {
  const batch = entity.write?.batch;
  if (batch === undefined) return;
  it("write.batch declares the vendor's per-request maximum", () => {
    expect(Number.isInteger(batch.maxPerRequest) && batch.maxPerRequest > 0).toBe(true);
  });
  if (batch.create !== undefined) {
    it("write.batch.create creates every input, one result each, in the inputs' order", async () => {
      expect(api.writeSamples?.create, "the fake must provide writeSamples.create").toBeDefined();
      const before = new Set(seeded().keys());
      const samples = [api.writeSamples!.create!(), api.writeSamples!.create!(), api.writeSamples!.create!()];
      const results = await succeed(
        "batch create",
        callBatchWrite(
          entity,
          context(),
          "create",
          samples.map((record) => ({ record })),
        ),
      );
      expect(outcomes(results)).toEqual(["ok", "ok", "ok"]);
      const ids = results.map((r) => (r.ok ? r.externalId : ""));
      expect(new Set(ids).size).toBe(3);
      for (const [i, result] of results.entries()) {
        if (!result.ok) continue;
        expect(before.has(result.externalId)).toBe(false);
        if (result.record !== undefined) expect(result.record.record).toMatchObject(samples[i]!);
        await expectWritten(
          result.record?.record ?? (await getRecord(entity, context, result.externalId)),
          samples[i]!,
          result.externalId,
        );
      }
    });
  }
  if (batch.update !== undefined) {
    it("write.batch.update writes each input; one whose record is gone fails alone as NotFound", async () => {
      expect(api.writeSamples?.update, "the fake must provide writeSamples.update").toBeDefined();
      const [first, second] = seeded().keys();
      const gone = deletedId(api);
      const changes = api.writeSamples!.update!();
      const results = await succeed(
        "batch update",
        callBatchWrite(entity, context(), "update", [
          { id: first!, changes },
          { id: gone, changes },
          { id: second!, changes },
        ]),
      );
      expect(outcomes(results)).toEqual(["ok", "NotFound", "ok"]);
      for (const [index, id] of [
        [0, first!],
        [2, second!],
      ] as const) {
        const result = results[index]!;
        expect(result.ok && result.externalId).toBe(id);
        if (result.ok && result.record !== undefined) expect(result.record.record).toMatchObject(changes);
        await expectWritten(
          result.ok ? (result.record?.record ?? (await getRecord(entity, context, id))) : undefined,
          changes,
          id,
        );
      }
    });
  }
  if (batch.delete !== undefined) {
    it("write.batch.delete removes each input; one already gone succeeds", async () => {
      const [first, second] = seeded().keys();
      const gone = deletedId(api);
      const results = await succeed(
        "batch delete",
        callBatchWrite(entity, context(), "delete", [{ id: first! }, { id: gone }, { id: second! }]),
      );
      expect(outcomes(results)).toEqual(["ok", "ok", "ok"]);
      const live = api.snapshot();
      expect(live.has(first!) || live.has(second!)).toBe(false);
      if (entity.get !== undefined) await expectGone(context(), entity, first!);
    });
  }
};

/** `get` of a record that must exist, decoded. */
const getRecord = async (entity: EntityDefinition<any, any>, context: () => ConnectorContext<any>, id: string) => {
  expect(entity.get, "checking a write needs get, or the written record in the write's result").toBeDefined();
  return succeed(
    "get",
    callConnector(() => entity.get!(context(), id)),
  );
};

/** The vendor's current version of a record, read with `get` as the engine would have stored it. */
const currentVersion = async (entity: EntityDefinition<any, any>, context: () => ConnectorContext<any>, id: string) => {
  const decoded = decodeRecord(entity, await getRecord(entity, context, id));
  if (Either.isLeft(decoded)) throw new Error(`get's record does not decode: ${decoded.left.message}`);
  const version = versionOf(entity, decoded.right.record);
  expect(typeof version, "the entity's version of a record").toBe("string");
  return version!;
};

const describeConditionalWrites = (
  entity: EntityDefinition<any, any>,
  context: () => ConnectorContext<any>,
  api: ConformanceEntityFake,
  seeded: () => ReadonlyMap<string, Date>,
) => {
  const write = entity.write;
  if (write?.conditional !== true || write.update === undefined) return;
  const update = write.update;
  it("write.conditional: an update whose ifVersion is stale fails as a version Conflict; with the current version it writes", async () => {
    expect(api.writeSamples?.update, "the fake must provide writeSamples.update").toBeDefined();
    const [id] = seeded().keys();
    const stale = await currentVersion(entity, context, id!);
    api.update(id!);
    const changes = api.writeSamples!.update!();
    const refused = await attempt(callConnector(() => update(context(), id!, changes, { ifVersion: stale })));
    expect(Either.isLeft(refused) && refused.left._tag).toBe("Conflict");
    expect(Either.isLeft(refused) && refused.left._tag === "Conflict" && refused.left.reason).toBe("version");
    const current = await currentVersion(entity, context, id!);
    expect(current).not.toBe(stale);
    await succeed(
      "update with the current version",
      callConnector(() => update(context(), id!, changes, { ifVersion: current })),
    );
  });
  if (write.batch?.update !== undefined) {
    it("write.conditional: in a batch update, a stale ifVersion fails its input alone as a version Conflict", async () => {
      const [first, second] = seeded().keys();
      const stale = await currentVersion(entity, context, first!);
      const current = await currentVersion(entity, context, second!);
      api.update(first!);
      const changes = api.writeSamples!.update!();
      const results = await succeed(
        "batch update",
        callBatchWrite(entity, context(), "update", [
          { id: first!, changes, ifVersion: stale },
          { id: second!, changes, ifVersion: current },
        ]),
      );
      expect(outcomes(results)).toEqual(["Conflict", "ok"]);
      expect(!results[0]!.ok && results[0]!.error._tag === "Conflict" && results[0]!.error.reason).toBe("version");
      // The refused record keeps what the remote edit left: nothing of the changes was written.
      const after = decodeRecord(entity, await getRecord(entity, context, first!));
      expect(Either.isRight(after) && versionOf(entity, after.right.record)).not.toBe(stale);
    });
  }
};
