import type { WebhookEvent } from "@tandem/connector-sdk";
import { isStorableDate, MAX_IDENTIFIER_LENGTH, textIssue } from "../../db/Storable.ts";

const kinds = new Set(["created", "updated", "deleted", "merged", "restored"]);

/** Characters of an entity name, at most (connectors' entity names are short words). */
const MAX_ENTITY_LENGTH = 100;

/** Why a text field of an event cannot be stored, if it cannot. */
const textFieldIssue = (name: string, value: unknown, maxLength: number): string | undefined => {
  if (typeof value !== "string" || value.length === 0) return `${name} must be a non-empty string`;
  const issue = textIssue(value, maxLength);
  return issue === undefined ? undefined : `${name} ${issue}`;
};

/**
 * Why a parsed event cannot be stored, if it cannot. Checked here, for every connector, before
 * the event joins the intake's shared statement: a value PostgreSQL refuses there (a NUL or a
 * lone surrogate in an id, a date before year 1, an id too large for its index) failed every
 * delivery of the statement, other tenants' included.
 */
export const eventIssue = (e: WebhookEvent): string | undefined => {
  if (typeof e !== "object" || e === null) return "is not an event";
  return (
    textFieldIssue("eventId", e.eventId, MAX_IDENTIFIER_LENGTH) ??
    textFieldIssue("entity", e.entity, MAX_ENTITY_LENGTH) ??
    textFieldIssue("externalId", e.externalId, MAX_IDENTIFIER_LENGTH) ??
    (kinds.has(e.kind) ? undefined : "kind must be created, updated, deleted, merged or restored") ??
    (isStorableDate(e.occurredAt) ? undefined : "occurredAt must be a valid date between years 1 and 9999")
  );
};
