/**
 * Builds: one run of the ImageBuilder for one pushed commit.
 */
import * as Schema from "effect/Schema"
import { ProjectId } from "./Project.js"

/** The id of a build (a UUID). */
export const BuildId = Schema.UUID.pipe(Schema.brand("BuildId"))
/** The id of a build (a UUID). */
export type BuildId = typeof BuildId.Type

/** A full git commit id (40 lowercase hex digits). */
export const CommitSha = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{40}$/), Schema.brand("CommitSha"))
/** A full git commit id (40 lowercase hex digits). */
export type CommitSha = typeof CommitSha.Type

/** Where a build is in its life. `queued → running → succeeded | failed | cancelled`. */
export const BuildStatus = Schema.Literal("queued", "running", "succeeded", "failed", "cancelled")
/** Where a build is in its life. */
export type BuildStatus = typeof BuildStatus.Type

/** A build record. `log` is the whole output so far; `image` is set when it succeeded. */
export class Build extends Schema.Class<Build>("@paas/core/Build")({
  id: BuildId,
  projectId: ProjectId,
  commit: CommitSha,
  ref: Schema.String,
  status: BuildStatus,
  log: Schema.String,
  image: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  createdAt: Schema.DateFromSelf,
  startedAt: Schema.NullOr(Schema.DateFromSelf),
  finishedAt: Schema.NullOr(Schema.DateFromSelf)
}) {}

/** True once a build can no longer change. */
export const isFinished = (status: BuildStatus): boolean =>
  status === "succeeded" || status === "failed" || status === "cancelled"
