/**
 * ImageBuilder: turns a pushed commit into something a RuntimeDriver can run.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { BuildId, CommitSha } from "./Build.js"
import type { BuildFailed, RepositoryError } from "./Errors.js"
import type { Env, ProjectId } from "./Project.js"
import type { RunSettings } from "./Release.js"

/** What to build. `source` is the commit's tree as a tar stream. */
export interface BuildRequest {
  readonly projectId: ProjectId
  readonly buildId: BuildId
  readonly commit: CommitSha
  readonly source: Stream.Stream<Uint8Array, RepositoryError>
  /** The project's env, for build steps that need it (never the server's own environment). */
  readonly env: Env
}

/** The result of a build: an image reference and how it wants to be run. */
export interface BuiltImage {
  readonly image: string
  readonly run: RunSettings
}

/** Builds images, streaming each output line to `log` as it comes. */
export class ImageBuilder extends Context.Tag("@paas/core/ImageBuilder")<
  ImageBuilder,
  {
    readonly build: (
      request: BuildRequest,
      log: (line: string) => Effect.Effect<void>
    ) => Effect.Effect<BuiltImage, BuildFailed>
    /** Removes a project's images except those listed (kept for rollback). */
    readonly prune: (project: ProjectId, keep: ReadonlyArray<string>) => Effect.Effect<void>
  }
>() {}
