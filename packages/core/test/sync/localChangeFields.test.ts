import { defineEntity } from "@tandem/connector-sdk";
import { Schema } from "effect";
import { describe, expect, it } from "vitest";
import { decodeFields, localChangeIssues } from "../../src/sync/push/localChangeFields.ts";

/* Local changes checked against an entity's record schema: pure, no database. */

const Task = Schema.Struct({
  id: Schema.String,
  title: Schema.String,
  done: Schema.Boolean,
  estimate: Schema.NullOr(Schema.Number.pipe(Schema.int(), Schema.positive())),
  dueAt: Schema.NullOr(Schema.Date),
  archived: Schema.Boolean,
  updatedAt: Schema.Date,
});

const base = {
  record: Task,
  primaryKey: (t: typeof Task.Type) => t.id,
  updatedAt: (t: typeof Task.Type) => t.updatedAt,
  read: async function* () {},
};
const tasks = defineEntity({
  ...base,
  write: { create: async () => ({}) as never, update: async () => ({}) as never },
  writableFields: ["title", "done", "estimate", "dueAt"],
});

const issues = (operation: "create" | "update" | "delete", fields?: Record<string, unknown>, entity = tasks) =>
  localChangeIssues({ connector: "acme", entityName: "tasks", entity, operation, fields });

describe("localChangeIssues", () => {
  it("accepts fields of the right type, in their JSON form (a date as a string, null where allowed)", () => {
    expect(issues("update", { title: "Ship", done: true, estimate: null, dueAt: "2026-12-24T00:00:00.000Z" })).toEqual(
      [],
    );
    expect(issues("create", {})).toEqual([]);
  });

  it("names a field of the wrong type, without quoting its value", () => {
    const found = issues("update", { title: 12345, estimate: -3 });
    expect(found.map((i) => i.path)).toEqual(["fields.title", "fields.estimate"]);
    expect(JSON.stringify(found)).not.toContain("12345");
  });

  it("names a field the record does not have, and one the connector does not write", () => {
    expect(issues("update", { colour: "teal" })).toEqual([
      { path: "fields.colour", message: "tasks has no such field" },
    ]);
    const archived = issues("update", { archived: true });
    expect(archived).toEqual([{ path: "fields.archived", message: expect.stringContaining("read-only") }]);
    expect(archived[0]!.message).toContain("records.delete");
    expect(issues("update", { updatedAt: "2026-12-24T00:00:00.000Z" })[0]!.path).toBe("fields.updatedAt");
  });

  it("refuses an update that changes nothing, and an operation the entity cannot write", () => {
    expect(issues("update", {})).toEqual([{ path: "fields", message: "names no field to change" }]);
    expect(issues("delete")).toEqual([
      { path: "", message: "connector acme cannot delete tasks records (no write.delete)" },
    ]);
  });

  it("without writableFields every field of the record may change, still type-checked", () => {
    const open = defineEntity({ ...base, write: { update: async () => ({}) as never } });
    expect(issues("update", { archived: true }, open)).toEqual([]);
    expect(issues("update", { archived: "yes" }, open).map((i) => i.path)).toEqual(["fields.archived"]);
  });

  it("prefixes the paths it is given (a change in a batch)", () => {
    const found = localChangeIssues(
      { connector: "acme", entityName: "tasks", entity: tasks, operation: "update", fields: { title: 1 } },
      ["changes", "3", "fields"],
    );
    expect(found.map((i) => i.path)).toEqual(["changes.3.fields.title"]);
  });
});

describe("decodeFields", () => {
  it("turns stored JSON into the record's type for the connector's write", () => {
    expect(decodeFields(tasks, { title: "Ship", dueAt: "2026-12-24T00:00:00.000Z" })).toEqual({
      title: "Ship",
      dueAt: new Date("2026-12-24T00:00:00.000Z"),
    });
  });
});
