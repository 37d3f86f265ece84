import { Schema } from "effect";

/**
 * Errors that cross the engine's boundary (API responses, job status). The
 * server maps each tag to one transport code in one place (server/src/errors.ts).
 */

/** A tenant-scoped resource does not exist, or belongs to another tenant (indistinguishable on purpose). */
export class ResourceNotFound extends Schema.TaggedError<ResourceNotFound>()("ResourceNotFound", {
  resource: Schema.String,
  id: Schema.String,
}) {
  override get message() {
    return `${this.resource} ${this.id} not found`;
  }
}

export const FieldIssue = Schema.Struct({ path: Schema.String, message: Schema.String });
export type FieldIssue = typeof FieldIssue.Type;

/** Input failed validation; each issue names the field by its dotted path. */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  issues: Schema.Array(FieldIssue),
}) {
  override get message() {
    return this.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
  }
}

/** A unique name or key is already taken. */
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()("AlreadyExists", {
  resource: Schema.String,
  detail: Schema.String,
}) {
  override get message() {
    return `${this.resource} already exists: ${this.detail}`;
  }
}

/** The request is valid but the resource's state forbids it (e.g. resolving a resolved conflict). */
export class PreconditionFailed extends Schema.TaggedError<PreconditionFailed>()("PreconditionFailed", {
  message: Schema.String,
}) {}
/**
 * The work asked for is already queued or running (one sync per connection x entity,
 * one live job per dedupe key); `jobId` is that job, to watch instead.
 */
export class AlreadyRunning extends Schema.TaggedError<AlreadyRunning>()("AlreadyRunning", {
  jobId: Schema.String,
  key: Schema.String,
}) {
  override get message() {
    return `already_running: job ${this.jobId} holds ${this.key}`;
  }
}
