/**
 * Releases: an image plus a configuration snapshot, numbered per project. Deploying means making one
 * release the desired one; a rollback is a new release copying an earlier one.
 */
import * as Schema from "effect/Schema"
import { BuildId, CommitSha } from "./Build.js"
import { Env, ProjectConfig, ProjectId } from "./Project.js"

/** The id of a release (a UUID). */
export const ReleaseId = Schema.UUID.pipe(Schema.brand("ReleaseId"))
/** The id of a release (a UUID). */
export type ReleaseId = typeof ReleaseId.Type

/** How the app runs: from `paas.yaml`'s `run` section, or the builder's defaults. */
export class RunSettings extends Schema.Class<RunSettings>("@paas/core/RunSettings")({
  /** The port the app listens on; null lets the runtime choose and pass it as `PORT`. */
  port: Schema.NullOr(Schema.Int.pipe(Schema.between(1, 65535))),
  /** The start command (argv), when the runtime needs one; null uses the image's own. */
  command: Schema.NullOr(Schema.Array(Schema.String)),
  healthcheckPath: Schema.String,
  healthcheckTimeoutMs: Schema.Int.pipe(Schema.positive()),
  memoryBytes: Schema.NullOr(Schema.Int.pipe(Schema.positive())),
  cpus: Schema.NullOr(Schema.Number.pipe(Schema.positive())),
  replicas: Schema.Int.pipe(Schema.between(1, 32)),
  /** Run with a read-only root filesystem (runtimes that can: Docker); `paas.yaml`'s `run.readonly`. */
  readOnlyRootFilesystem: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Non-secret env defaults the app declared (`paas.yaml`); the project's env wins over them. */
  env: Env
}) {
  /** Settings for an app that says nothing about how it runs. */
  static readonly defaults = new RunSettings({
    port: null,
    command: null,
    healthcheckPath: "/",
    healthcheckTimeoutMs: 30_000,
    memoryBytes: null,
    cpus: null,
    replicas: 1,
    env: {}
  })
}

/** A release record; `number` counts from 1 within its project. */
export class Release extends Schema.Class<Release>("@paas/core/Release")({
  id: ReleaseId,
  projectId: ProjectId,
  number: Schema.Int.pipe(Schema.positive()),
  image: Schema.String,
  commit: CommitSha,
  buildId: Schema.NullOr(BuildId),
  config: ProjectConfig,
  run: RunSettings,
  description: Schema.String,
  createdAt: Schema.DateFromSelf
}) {}
