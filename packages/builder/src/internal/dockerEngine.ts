// A small wrapper over dockerode for the builder: every engine call as an Effect that aborts its
// request when interrupted and is bounded in time, and image builds whose JSON progress stream
// becomes build log lines. (The runtime package has its own client; the builder does not depend
// on it, so that either can be used alone.)

import type { Readable } from "node:stream"
import Docker from "dockerode"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { LineSplitter } from "./process.js"

/** The engine refused a call or could not be reached. */
export class EngineError extends Data.TaggedError("EngineError")<{
  readonly message: string
  /** The engine's HTTP status, when it answered (404: no such image, 409: in use). */
  readonly statusCode?: number | undefined
  readonly cause?: unknown
}> {}

/** A build the engine ran and reported as failed (a RUN step exited non-zero, a base image is missing). */
export class BuildStepFailed extends Data.TaggedError("BuildStepFailed")<{
  readonly message: string
}> {}

/** A connection to an engine. */
export interface Engine {
  readonly docker: Docker
  /** Where the engine is, for messages. */
  readonly where: string
  /** One bounded call; the signal aborts its request when the effect is interrupted. */
  readonly call: <A>(
    what: string,
    f: (docker: Docker, signal: AbortSignal) => Promise<A>
  ) => Effect.Effect<A, EngineError>
}

const CALL_TIMEOUT_MS = 120_000
const PING_TIMEOUT_MS = 10_000

/** The engine's own words for a failed call: dockerode puts its own prefix before them. */
export const toEngineError = (what: string, cause: unknown): EngineError => {
  if (typeof cause !== "object" || cause === null)
    return new EngineError({ message: `${what}: ${String(cause)}`, cause })
  const failure = cause as {
    readonly message?: unknown
    readonly statusCode?: unknown
    readonly json?: unknown
  }
  const json = failure.json as { readonly message?: unknown } | null | undefined
  const text =
    typeof json?.message === "string"
      ? json.message
      : typeof failure.message === "string"
        ? failure.message
        : String(cause)
  return new EngineError({
    message: `${what}: ${text.trim()}`,
    statusCode: typeof failure.statusCode === "number" ? failure.statusCode : undefined,
    cause
  })
}

/** Whether the engine answered `error` with one of these statuses. */
export const isStatus = (error: EngineError, ...codes: ReadonlyArray<number>): boolean =>
  error.statusCode !== undefined && codes.includes(error.statusCode)

/** Connects to the engine (the socket given, else `DOCKER_HOST` or the default socket) and pings it. */
export const connect = (socketPath: string | undefined): Effect.Effect<Engine, EngineError> =>
  Effect.gen(function* () {
    // No timeout inside dockerode: it would also cut a build that stays quiet for a while.
    const docker = new Docker(socketPath === undefined ? {} : { socketPath })
    const where = socketPath ?? process.env.DOCKER_HOST ?? "the default socket"
    const call = <A>(what: string, f: (docker: Docker, signal: AbortSignal) => Promise<A>) =>
      Effect.tryPromise({ try: (signal) => f(docker, signal), catch: (e) => toEngineError(what, e) }).pipe(
        Effect.timeoutFail({
          duration: CALL_TIMEOUT_MS,
          onTimeout: () =>
            new EngineError({
              message: `${what}: the engine did not answer within ${CALL_TIMEOUT_MS / 1000} s`
            })
        })
      )
    yield* call(`cannot reach the Docker engine at ${where}`, (d) => d.ping()).pipe(
      Effect.timeoutFail({
        duration: PING_TIMEOUT_MS,
        onTimeout: () => new EngineError({ message: `cannot reach the Docker engine at ${where}: no answer` })
      })
    )
    return { docker, where, call }
  })

/** One message of the engine's JSON progress stream (the fields the builder reads). */
interface Progress {
  readonly stream?: unknown
  readonly status?: unknown
  readonly id?: unknown
  readonly progressDetail?: { readonly current?: unknown } | null
  readonly error?: unknown
  readonly errorDetail?: { readonly message?: unknown } | null
  readonly aux?: { readonly ID?: unknown } | null
}

/** What a build reports besides its lines. */
export interface BuildObserver {
  /** Each line of output, in order, without its line ending. */
  readonly line: (text: string) => Effect.Effect<void>
  /** Each image the build made or reused, as its short id (the `---> 1a2b3c4d5e6f` lines). */
  readonly image: (shortId: string) => void
}

const STEP_IMAGE = /^ ---> ([0-9a-f]{12})$/
// Engines that send no `aux` message still end with this line.
const BUILT = /^Successfully built ([0-9a-f]{12,64})$/

/**
 * Splits the engine's progress stream (JSON messages, one per line) into messages and the text of
 * their `stream` fields into lines. A `Step 1/5 : …` header arrives without its newline, which
 * comes in the next message, so text is split across messages, not within each.
 */
class ProgressDecoder {
  private readonly json = new LineSplitter()
  private readonly text = new LineSplitter()
  imageId: string | undefined
  error: string | undefined

  push(chunk: Buffer): Array<string> {
    return this.json.push(chunk).flatMap((raw) => this.message(raw))
  }

  end(): Array<string> {
    return [...this.json.end().flatMap((raw) => this.message(raw)), ...this.text.end()]
  }

  private message(raw: string): Array<string> {
    const trimmed = raw.trim()
    if (trimmed === "") return []
    let message: Progress
    try {
      message = JSON.parse(trimmed) as Progress
    } catch {
      // Not JSON: an engine or proxy speaking plain text. Show it rather than lose it.
      return [trimmed]
    }
    const out: Array<string> = []
    if (typeof message.stream === "string") out.push(...this.text.push(Buffer.from(message.stream, "utf8")))
    if (typeof message.status === "string") {
      // Pull progress ticks (Downloading 3 MB/20 MB…) would drown the log; their phases do not.
      const ticking = message.progressDetail != null && message.progressDetail.current !== undefined
      if (!ticking)
        out.push(
          ...this.text.end(),
          typeof message.id === "string" ? `${message.id}: ${message.status}` : message.status
        )
    }
    if (message.aux != null && typeof message.aux.ID === "string") this.imageId = message.aux.ID
    const error =
      typeof message.errorDetail?.message === "string"
        ? message.errorDetail.message
        : typeof message.error === "string"
          ? message.error
          : undefined
    if (error !== undefined) {
      this.error = error.trim()
      out.push(...this.text.end(), this.error)
    }
    return out
  }
}

/**
 * The chunks of `stream`, ending the request at once when iteration stops early. A Node stream's
 * own iterator answers `return()` only after the pending `next()`, which for a build sitting in
 * `RUN sleep 30` would mean waiting out the step.
 */
const abortable = (stream: Readable, controller: AbortController): AsyncIterable<Buffer> => ({
  [Symbol.asyncIterator]: () => {
    const iterator = stream[Symbol.asyncIterator]()
    return {
      next: () => iterator.next() as Promise<IteratorResult<Buffer>>,
      return: async () => {
        controller.abort()
        stream.destroy()
        return { done: true, value: undefined }
      }
    }
  }
})

/**
 * Runs one build: sends `context` (a tar stream), hands every output line to the observer and
 * returns the image id. Interrupting it aborts the request, which makes the engine stop the build
 * and remove the step's container.
 */
export const build = (
  engine: Engine,
  context: Readable,
  options: Docker.ImageBuildOptions,
  observer: BuildObserver
): Effect.Effect<string, EngineError | BuildStepFailed> =>
  Effect.scoped(
    Effect.gen(function* () {
      const controller = new AbortController()
      let response: NodeJS.ReadableStream | undefined
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          controller.abort()
          context.destroy()
          ;(response as Readable | undefined)?.destroy()
        })
      )
      response = yield* Effect.tryPromise({
        try: (signal) => {
          signal.addEventListener("abort", () => controller.abort())
          return engine.docker.buildImage(context, { ...options, abortSignal: controller.signal })
        },
        catch: (e) => toEngineError("the Docker engine refused the build", e)
      })
      const decoder = new ProgressDecoder()
      let builtId: string | undefined
      const emit = (lines: ReadonlyArray<string>) =>
        Effect.forEach(
          lines,
          (line) => {
            const step = STEP_IMAGE.exec(line)
            if (step?.[1] !== undefined) observer.image(step[1])
            const built = BUILT.exec(line)
            if (built?.[1] !== undefined) builtId ??= built[1]
            return observer.line(line)
          },
          { discard: true }
        )
      yield* Stream.fromAsyncIterable(abortable(response as Readable, controller), (e) =>
        toEngineError("the build's output stream broke", e)
      ).pipe(Stream.runForEach((chunk) => emit(decoder.push(chunk))))
      yield* emit(decoder.end())
      if (decoder.error !== undefined) return yield* new BuildStepFailed({ message: decoder.error })
      const imageId = decoder.imageId ?? builtId
      if (imageId === undefined)
        return yield* new EngineError({ message: "the engine ended the build without naming an image" })
      return imageId
    })
  )
