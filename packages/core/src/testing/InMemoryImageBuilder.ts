/**
 * ImageBuilder in memory: reads the source archive as a real builder would, logs a few lines and
 * names an image after the project and commit. A test can make builds fail.
 */
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { BuildFailed } from "../Errors.js"
import { type BuildRequest, ImageBuilder } from "../ImageBuilder.js"
import * as Tar from "../internal/tar.js"
import { RunSettings } from "../Release.js"

/** Test controls of the in-memory builder. */
export class Builds extends Context.Tag("@paas/core/testing/Builds")<
  Builds,
  {
    /** Makes the next build fail, logging `message` as its last line. */
    readonly failNext: (message: string) => Effect.Effect<void>
    /** Every request built so far (successful or not), oldest first. */
    readonly requests: Effect.Effect<ReadonlyArray<BuildRequest>>
    /** Images removed by `prune`. */
    readonly pruned: Effect.Effect<ReadonlyArray<string>>
    /** Makes builds wait (after reading their source) until `release`, as a slow build would. */
    readonly hold: Effect.Effect<void>
    /** Lets held builds go on. */
    readonly release: Effect.Effect<void>
    /** How many builds are waiting on `hold`. */
    readonly held: Effect.Effect<number>
  }
>() {}

/** The in-memory builder with its test controls. */
export const layer: Layer.Layer<ImageBuilder | Builds> = Layer.effectContext(
  Effect.sync(() => {
    const requests: Array<BuildRequest> = []
    const images = new Set<string>()
    const pruned: Array<string> = []
    let failure: string | undefined
    let gate: Deferred.Deferred<void> | undefined
    let waiting = 0

    const builder = ImageBuilder.of({
      build: (request, log) =>
        Effect.gen(function* () {
          requests.push(request)
          const chunks = yield* Stream.runCollect(request.source).pipe(
            Effect.mapError((e) => new BuildFailed({ message: e.message, logTail: [e.message] }))
          )
          const bytes = Buffer.concat(Chunk.toArray(chunks))
          const files = Tar.unpack(bytes)
          const lines = [`Received ${files.size} files (${bytes.length} bytes)`, `Building ${request.commit}`]
          for (const line of lines) yield* log(line)
          if (gate !== undefined) {
            const held = gate
            waiting++
            yield* Effect.ensuring(
              Deferred.await(held),
              Effect.sync(() => {
                waiting--
              })
            )
          }
          if (failure !== undefined) {
            const message = failure
            failure = undefined
            yield* log(message)
            return yield* new BuildFailed({ message, logTail: [...lines, message] })
          }
          const image = `memory/${request.projectId}:${request.commit.slice(0, 12)}`
          images.add(image)
          yield* log(`Built ${image}`)
          return { image, run: RunSettings.defaults }
        }),
      prune: (project, keep) =>
        Effect.sync(() => {
          for (const image of images)
            if (image.startsWith(`memory/${project}:`) && !keep.includes(image)) {
              images.delete(image)
              pruned.push(image)
            }
        })
    })

    const controls = Builds.of({
      failNext: (message) =>
        Effect.sync(() => {
          failure = message
        }),
      requests: Effect.sync(() => [...requests]),
      pruned: Effect.sync(() => [...pruned]),
      hold: Effect.sync(() => {
        gate ??= Deferred.unsafeMake<void>(FiberId.none)
      }),
      release: Effect.suspend(() => {
        const held = gate
        gate = undefined
        return held === undefined ? Effect.void : Deferred.succeed(held, undefined)
      }),
      held: Effect.sync(() => waiting)
    })
    return Context.make(ImageBuilder, builder).pipe(Context.add(Builds, controls))
  })
)
