/**
 * DockerBuilder: the ImageBuilder of the Docker runtime. One builder for every build method, since
 * the method is in `paas.yaml` and only known once the commit is unpacked: the repository's
 * Dockerfile through the Docker Engine API (`auto` when there is one, `dockerfile`), a Dockerfile
 * generated from detection when there is none (`auto`, `command`, `static`), and Cloud Native
 * Buildpacks through the `pack` CLI (`buildpacks`). Images are tagged `<prefix>/<project>:<build>`
 * and labelled with the project, commit and build.
 */
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { ImageBuilder } from "@paas/core/ImageBuilder"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as internal from "./internal/dockerBuilder.js"
import { type BaseImages, isImageReference } from "./internal/dockerfile.js"

export type { BaseImages } from "./internal/dockerfile.js"

/** The base images of generated Dockerfiles, unless an installation names its own (its registry, say). */
export const defaultBaseImages: BaseImages = {
  node: "node:20-slim",
  static: "busybox:1.36",
  procfile: "node:20-slim",
  command: "node:20-slim"
}

/** What one build may use of the machine, so that a build cannot starve the apps. null: no limit. */
export interface BuildLimits {
  /** Memory of each build step, swap included (default 2 GiB). */
  readonly memoryBytes?: number | null | undefined
  /** CPUs of each build step, as a CFS quota (default 1). */
  readonly cpus?: number | null | undefined
}

/** The limits used when an installation sets none. */
export const defaultLimits = { memoryBytes: 2 * 1024 * 1024 * 1024, cpus: 1 } as const

/** How buildpacks builds run `pack`. */
export interface PackOptions {
  /** The `pack` command: a name looked up on the server's PATH (default `pack`) or a path. */
  readonly command?: string | undefined
  /** The builder image when paas.yaml's `build.buildpacks.builder` is not set (default: pack's own default). */
  readonly builder?: string | undefined
  /** `--pull-policy` (default `if-not-present`). */
  readonly pullPolicy?: "always" | "never" | "if-not-present" | undefined
  /** `--network` of the build containers. */
  readonly network?: string | undefined
}

/** How to reach the engine, how to name images, what to build them from. */
export interface DockerBuilderOptions {
  /** The engine's unix socket; default `DOCKER_HOST` or `/var/run/docker.sock`. */
  readonly socketPath?: string | undefined
  /** Images are `<imagePrefix>/<project-id>:<build-id>` (default `paas`); may name a registry (`registry.local:5000/paas`). */
  readonly imagePrefix?: string | undefined
  /** Labels are `<labelPrefix>.project`, `.commit`, `.build` (default `paas`, as the Docker runtime reads them). */
  readonly labelPrefix?: string | undefined
  /** Base images of generated Dockerfiles, over `defaultBaseImages`. */
  readonly baseImages?: Partial<BaseImages> | undefined
  /** Resource limits of build steps, over `defaultLimits`. */
  readonly limits?: BuildLimits | undefined
  /** Build arguments sent with every Dockerfile build (an HTTP proxy, say). */
  readonly buildArgs?: Readonly<Record<string, string>> | undefined
  /** The network of RUN steps (the engine's default bridge unless set). */
  readonly networkMode?: string | undefined
  /** Where commits are unpacked while they build (default `<tmp>/paas-docker-builder`). */
  readonly workDir?: string | undefined
  /** Largest commit tree unpacked, in bytes (2 GiB by default). */
  readonly maxSourceBytes?: number | undefined
  /** Most entries in a commit tree (200,000 by default). */
  readonly maxSourceEntries?: number | undefined
  /** How long `pack` gets between SIGTERM and SIGKILL when a build is interrupted (3 s). */
  readonly killGraceMs?: number | undefined
  readonly pack?: PackOptions | undefined
}

/** The options with every default applied. */
export interface DockerBuilderSettings {
  readonly socketPath: string | undefined
  readonly imagePrefix: string
  readonly labelPrefix: string
  readonly baseImages: BaseImages
  readonly limits: { readonly memoryBytes: number | null; readonly cpus: number | null }
  readonly buildArgs: Readonly<Record<string, string>>
  readonly networkMode: string | undefined
  readonly workDir: string
  readonly maxSourceBytes: number
  readonly maxSourceEntries: number
  readonly killGraceMs: number
  readonly pack: {
    readonly command: string
    readonly builder: string | undefined
    readonly pullPolicy: "always" | "never" | "if-not-present"
    readonly network: string | undefined
  }
}

/** The builder could not start: bad options, or no engine answers. */
export class DockerBuilderError extends Schema.TaggedError<DockerBuilderError>()("DockerBuilderError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** The Docker builder: the core ImageBuilder, plus how it names things. */
export class DockerBuilder extends Context.Tag("@paas/builder/DockerBuilder")<
  DockerBuilder,
  ImageBuilder["Type"] & {
    readonly settings: DockerBuilderSettings
    /** The image a build is tagged as: `<prefix>/<project>:<build>`. */
    readonly imageName: (project: string, build: string) => string
  }
>() {}

// Repository paths as Docker accepts them, with an optional registry host (and port) first.
const IMAGE_PREFIX =
  /^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/
const LABEL_PREFIX = /^[a-z0-9]+(?:[.-][a-z0-9]+)*$/
const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Applies the defaults and checks every option; the message names the option. */
export const settingsOf = (
  options: DockerBuilderOptions = {}
): Effect.Effect<DockerBuilderSettings, DockerBuilderError> =>
  Effect.suspend(() => {
    const bad = (message: string) => Effect.fail(new DockerBuilderError({ message }))
    const imagePrefix = options.imagePrefix ?? "paas"
    if (!IMAGE_PREFIX.test(imagePrefix) || imagePrefix.length > 200)
      return bad(`imagePrefix ${JSON.stringify(imagePrefix)} is not a Docker repository path such as paas`)
    const labelPrefix = options.labelPrefix ?? "paas"
    if (!LABEL_PREFIX.test(labelPrefix))
      return bad(`labelPrefix ${JSON.stringify(labelPrefix)} must be lowercase words joined by . or -`)
    const baseImages = { ...defaultBaseImages, ...options.baseImages }
    for (const [kind, ref] of Object.entries(baseImages))
      if (!isImageReference(ref))
        return bad(`baseImages.${kind} ${JSON.stringify(ref)} is not an image reference`)
    const memoryBytes =
      options.limits?.memoryBytes === undefined ? defaultLimits.memoryBytes : options.limits.memoryBytes
    const cpus = options.limits?.cpus === undefined ? defaultLimits.cpus : options.limits.cpus
    if (memoryBytes !== null && !(Number.isInteger(memoryBytes) && memoryBytes >= 6 * 1024 * 1024))
      return bad("limits.memoryBytes must be a whole number of bytes, at least 6 MiB, or null")
    if (cpus !== null && !(Number.isFinite(cpus) && cpus >= 0.01 && cpus <= 1024))
      return bad("limits.cpus must be a number of CPUs from 0.01, or null")
    const buildArgs = options.buildArgs ?? {}
    for (const [name, value] of Object.entries(buildArgs))
      if (!ARG_NAME.test(name) || value.includes("\0"))
        return bad(`buildArgs.${name}: names are letters, digits and _, values have no NUL`)
    const killGraceMs = options.killGraceMs ?? 3_000
    return Effect.succeed({
      socketPath: options.socketPath,
      imagePrefix,
      labelPrefix,
      baseImages,
      limits: { memoryBytes, cpus },
      buildArgs,
      networkMode: options.networkMode,
      workDir: resolve(options.workDir ?? join(tmpdir(), "paas-docker-builder")),
      maxSourceBytes: options.maxSourceBytes ?? 2 * 1024 * 1024 * 1024,
      maxSourceEntries: options.maxSourceEntries ?? 200_000,
      killGraceMs,
      pack: {
        command: options.pack?.command ?? "pack",
        builder: options.pack?.builder,
        pullPolicy: options.pack?.pullPolicy ?? "if-not-present",
        network: options.pack?.network
      }
    })
  })

/** Builds the builder: checks the options, prepares the work directory and checks that the engine answers. */
export const make = (
  options: DockerBuilderOptions = {}
): Effect.Effect<DockerBuilder["Type"], DockerBuilderError> =>
  Effect.flatMap(settingsOf(options), (settings) =>
    Effect.mapError(
      internal.make(settings),
      (e) => new DockerBuilderError({ message: e.message, cause: e.cause })
    )
  )

/** Provides `DockerBuilder` and the core `ImageBuilder`. */
export const layer = (
  options: DockerBuilderOptions = {}
): Layer.Layer<DockerBuilder | ImageBuilder, DockerBuilderError> =>
  Layer.effectContext(
    Effect.map(make(options), (builder) =>
      Context.make(DockerBuilder, builder).pipe(Context.add(ImageBuilder, builder))
    )
  )
