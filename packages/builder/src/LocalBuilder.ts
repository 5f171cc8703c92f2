/**
 * LocalBuilder: the ImageBuilder of the process runtime. It unpacks the pushed commit into a fresh
 * directory, reads `paas.yaml` or detects the app (package.json, index.html, Procfile), runs the
 * install and build commands in a clean environment, and returns the directory as the image with
 * the argv that starts the app in it.
 */
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { ImageBuilder } from "@paas/core/ImageBuilder"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as internal from "./internal/localBuilder.js"

/** Where builds live, and their limits. */
export interface LocalBuilderOptions {
  /** App directories, npm's cache and per-build scratch space live here (created, mode 0700). */
  readonly root: string
  /** Largest commit tree unpacked, in bytes (2 GiB by default). */
  readonly maxSourceBytes?: number | undefined
  /** Most entries in a commit tree (200,000 by default). */
  readonly maxSourceEntries?: number | undefined
  /** How long build processes get between SIGTERM and SIGKILL when a build is interrupted (1.5 s). */
  readonly killGraceMs?: number | undefined
}

/** The builder's directory could not be prepared. */
export class LocalBuilderError extends Schema.TaggedError<LocalBuilderError>()("LocalBuilderError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** The local builder: the core ImageBuilder, plus where it puts things. */
export class LocalBuilder extends Context.Tag("@paas/builder/LocalBuilder")<
  LocalBuilder,
  ImageBuilder["Type"] & {
    /** The absolute root directory. */
    readonly root: string
    /** The app directory (the image) of a build: `<root>/<project>/<build>`. */
    readonly appDirectory: (project: string, build: string) => string
  }
>() {}

/**
 * The static file server shipped with this package (`static-server.mjs` at the package root),
 * started as `[process.execPath, staticServerPath, <folder>]` and listening on `PORT`.
 */
// Resolved from this module: src/LocalBuilder.ts and dist/*.js are both one level below the
// package root, so the same relative URL works from sources and from an installed package.
export const staticServerPath: string = fileURLToPath(new URL("../static-server.mjs", import.meta.url))

/** Builds the builder, creating its root directory. */
export const make = (options: LocalBuilderOptions): Effect.Effect<LocalBuilder["Type"], LocalBuilderError> =>
  Effect.suspend(() =>
    existsSync(staticServerPath)
      ? Effect.mapError(
          internal.make(options, staticServerPath),
          (e) => new LocalBuilderError({ message: e.message, cause: e.cause })
        )
      : Effect.fail(
          new LocalBuilderError({ message: `the static file server is missing at ${staticServerPath}` })
        )
  )

/** Provides `LocalBuilder` and the core `ImageBuilder`. */
export const layer = (
  options: LocalBuilderOptions
): Layer.Layer<LocalBuilder | ImageBuilder, LocalBuilderError> =>
  Layer.effectContext(
    Effect.map(make(options), (builder) =>
      Context.make(LocalBuilder, builder).pipe(Context.add(ImageBuilder, builder))
    )
  )
