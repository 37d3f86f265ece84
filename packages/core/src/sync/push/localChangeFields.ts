import type { EntityDefinition } from "@tandem/connector-sdk";
import { Either, Schema, SchemaAST } from "effect";
import type { PushOperation } from "../../db/schema.ts";
import type { FieldIssue } from "../../errors/Errors.ts";
import { fieldIssuesOfParseIssue } from "../../errors/schemaIssues.ts";

/*
 * Local changes against the entity's record schema. A change arrives as JSON (the record's encoded
 * form, as `records.data` holds it) and is checked field by field when it is submitted: a field
 * the record does not have, a field the connector does not write (`writableFields`), or a value
 * its field's schema refuses is an issue naming the field. Nothing reaches the outbox that the
 * push would drop or the vendor could not be sent.
 */

type AnyEntity = EntityDefinition<any, any>;

/** Each field of the entity's record with its schema (encoded -> type); undefined when the record has no fixed fields. */
const fieldSchemasOf = (entity: AnyEntity): ReadonlyMap<string, Schema.Schema<unknown, unknown>> | undefined => {
  let ast = entity.record.ast;
  while (SchemaAST.isRefinement(ast)) ast = ast.from;
  // A struct's fields decode from their JSON form one by one. Any other record schema (a class,
  // a struct with renamed keys or defaults) is a transformation of the whole object: its encoded
  // side still names the fields, and types them in their JSON form.
  const source = SchemaAST.isTypeLiteral(ast) ? ast : SchemaAST.encodedAST(entity.record.ast);
  let properties: ReadonlyArray<SchemaAST.PropertySignature>;
  try {
    properties = SchemaAST.getPropertySignatures(source);
  } catch {
    return undefined;
  }
  if (properties.length === 0) return undefined;
  return new Map(
    properties
      .filter((p) => typeof p.name === "string")
      .map((p) => [p.name as string, Schema.make<unknown, unknown, never>(p.type)]),
  );
};

const cache = new WeakMap<AnyEntity, ReadonlyMap<string, Schema.Schema<unknown, unknown>> | undefined>();

const fieldSchemas = (entity: AnyEntity) => {
  if (!cache.has(entity)) cache.set(entity, fieldSchemasOf(entity));
  return cache.get(entity);
};

/** The write a local operation needs from the entity. */
const writeOf = { create: "create", update: "update", delete: "delete" } as const;

/**
 * What is wrong with a local change before it is stored: the entity cannot write the operation,
 * an update changes nothing, or a field is unknown, read-only or of the wrong type. Each issue's
 * path starts with `path` (e.g. `fields`, or `changes.3.fields` in a batch of changes).
 */
export const localChangeIssues = (
  input: {
    readonly connector: string;
    readonly entityName: string;
    readonly entity: AnyEntity;
    readonly operation: PushOperation;
    readonly fields?: Record<string, unknown> | undefined;
  },
  path: ReadonlyArray<string> = ["fields"],
): ReadonlyArray<FieldIssue> => {
  const { connector, entityName, entity, operation, fields } = input;
  if (entity.write?.[writeOf[operation]] === undefined) {
    return [
      {
        path: path.slice(0, -1).join("."),
        message: `connector ${connector} cannot ${operation} ${entityName} records (no write.${operation})`,
      },
    ];
  }
  if (fields === undefined) return [];
  const names = Object.keys(fields);
  if (operation === "update" && names.length === 0) {
    return [{ path: path.join("."), message: "names no field to change" }];
  }
  const schemas = fieldSchemas(entity);
  const writable = entity.writableFields;
  const issues: Array<FieldIssue> = [];
  for (const name of names) {
    const at = [...path, name];
    const schema = schemas?.get(name);
    if (schemas !== undefined && schema === undefined) {
      issues.push({ path: at.join("."), message: `${entityName} has no such field` });
    } else if (writable !== undefined && !writable.includes(name)) {
      const hint = /archiv|delet/i.test(name) ? " (to delete the record, use records.delete)" : "";
      issues.push({ path: at.join("."), message: `is read-only: ${connector} sets it, a local change cannot${hint}` });
    } else if (schema !== undefined) {
      const decoded = Schema.decodeUnknownEither(schema)(fields[name]);
      if (Either.isLeft(decoded)) issues.push(...fieldIssuesOfParseIssue(decoded.left.issue, at));
    }
  }
  return issues;
};

/**
 * Fields as stored (JSON) in the record's type, for the connector's `write` (which takes
 * `Partial<Rec>`): each decoded with its field's schema. They were validated when submitted; a
 * field that no longer decodes (the connector changed since) goes as stored.
 */
export const decodeFields = (entity: AnyEntity, fields: Record<string, unknown>): Record<string, unknown> => {
  const schemas = fieldSchemas(entity);
  if (schemas === undefined) return fields;
  const decoded: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    const schema = schemas.get(name);
    const result = schema === undefined ? undefined : Schema.decodeUnknownEither(schema)(value);
    decoded[name] = result !== undefined && Either.isRight(result) ? result.right : value;
  }
  return decoded;
};

/** Whether a local change to `field` is pushed (the resolution of a conflict brings read-only fields too). */
export const isWritable = (entity: AnyEntity, field: string): boolean =>
  entity.writableFields === undefined || entity.writableFields.includes(field);

/**
 * Of a record's fields, those a create sends: a record created again at the vendor (its remote
 * delete met a local edit) holds what the vendor set too (its id, its timestamps, computed values).
 */
export const writableOnly = (entity: AnyEntity, fields: Record<string, unknown>): Record<string, unknown> =>
  entity.writableFields === undefined
    ? fields
    : Object.fromEntries(Object.entries(fields).filter(([field]) => isWritable(entity, field)));

/** Whether any of the changed fields is one of the entity's critical fields. */
export const touchesCriticalField = (entity: AnyEntity, fields: Record<string, unknown>): boolean => {
  const critical = entity.criticalFields ?? [];
  return Object.keys(fields).some((f) => critical.includes(f));
};

/** The names of the entity's record fields, or undefined when its record has no fixed fields. */
export const recordFieldNames = (entity: AnyEntity): ReadonlyArray<string> | undefined => {
  const schemas = fieldSchemas(entity);
  return schemas === undefined ? undefined : [...schemas.keys()];
};
