/**
 * The failures callers must handle. They are schemas so that they cross process boundaries (HTTP,
 * persistence, logs) intact; the HTTP layer maps each onto a status code and the API envelope.
 */
import * as Schema from "effect/Schema"

/** What kind of thing was looked up. */
export const ResourceKind = Schema.Literal("user", "sshKey", "project", "build", "release", "token", "route")
/** What kind of thing was looked up. */
export type ResourceKind = typeof ResourceKind.Type

/** The thing does not exist, or is not the caller's: the two are indistinguishable on purpose. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  resource: ResourceKind,
  id: Schema.String
}) {
  override get message() {
    return `${this.resource} ${this.id} not found`
  }
}

/** The caller is known but may not do this (e.g. a non-admin on an admin route). */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String
}) {}

/** The request clashes with what exists (a duplicate name, a key already registered). */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", {
  resource: ResourceKind,
  message: Schema.String
}) {}

/** Bad input: which field, and the rule it broke. */
export class ValidationError extends Schema.TaggedError<ValidationError>()("ValidationError", {
  field: Schema.String,
  message: Schema.String
}) {}

/** Why an authentication was refused. Deliberately coarse, so it reveals nothing about accounts. */
export const AuthenticationReason = Schema.Literal(
  "invalid-credentials",
  "email-not-confirmed",
  "invalid-token",
  "expired-token",
  "unknown-key"
)

/** The caller could not be authenticated. */
export class AuthenticationError extends Schema.TaggedError<AuthenticationError>()("AuthenticationError", {
  reason: AuthenticationReason,
  message: Schema.String
}) {}

/** Too many attempts: try again after `retryAfterSeconds`. */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  retryAfterSeconds: Schema.Int,
  message: Schema.String
}) {}

/** A build failed; `logTail` carries its last lines for the person who pushed. */
export class BuildFailed extends Schema.TaggedError<BuildFailed>()("BuildFailed", {
  message: Schema.String,
  logTail: Schema.Array(Schema.String)
}) {}

/** The runtime could not do what was asked (start, stop, health check, logs, statistics). */
export class RuntimeError extends Schema.TaggedError<RuntimeError>()("RuntimeError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** A repository operation failed (git exited non-zero, the disk is full, the ref is unknown). */
export class RepositoryError extends Schema.TaggedError<RepositoryError>()("RepositoryError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** The router could not set or remove a route. */
export class RouterError extends Schema.TaggedError<RouterError>()("RouterError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** A message could not be sent. */
export class MailError extends Schema.TaggedError<MailError>()("MailError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}
