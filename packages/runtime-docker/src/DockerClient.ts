/**
 * DockerClient: one connection to a Docker engine through `dockerode`, shared by the runtime and
 * (later) the image builder. Every engine call becomes an Effect that fails with a DockerError
 * carrying the engine's own message, is bounded by a timeout and aborts its request when
 * interrupted.
 */

import Docker from "dockerode"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"

/** The engine refused a call, or could not be reached. */
export class DockerError extends Schema.TaggedError<DockerError>()("DockerError", {
  message: Schema.String,
  /** The engine's HTTP status, when it answered (404: no such object, 409: conflict...). */
  statusCode: Schema.optional(Schema.Number),
  cause: Schema.optional(Schema.Defect)
}) {}

/** How to reach the engine; with nothing set, `DOCKER_HOST` or the local socket. */
export interface DockerClientOptions {
  /** The engine's unix socket, e.g. `/var/run/docker.sock`. */
  readonly socketPath?: string | undefined
  /** A TCP engine (`host` and `port`), instead of the socket. */
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly protocol?: "http" | "https" | undefined
  /** The bound of one call that does not stream (default 2 minutes). */
  readonly callTimeout?: Duration.DurationInput | undefined
}

/** A Docker engine connection. */
export class DockerClient extends Context.Tag("@paas/runtime-docker/DockerClient")<
  DockerClient,
  {
    /** The dockerode instance, for calls this module does not wrap. */
    readonly docker: Docker
    /**
     * Runs one engine call. `what` names it in the error message ("starting container x"); the
     * signal aborts the request when the effect is interrupted or times out.
     */
    readonly call: <A>(
      what: string,
      f: (docker: Docker, signal: AbortSignal) => Promise<A>
    ) => Effect.Effect<A, DockerError>
  }
>() {}

interface EngineFailure {
  readonly message?: unknown
  readonly statusCode?: unknown
  readonly json?: unknown
}

/** The engine's own words for a failed call: dockerode wraps them in its own prefix. */
const engineMessage = (cause: unknown): { readonly message: string; readonly statusCode?: number } => {
  if (typeof cause !== "object" || cause === null) return { message: String(cause) }
  const failure = cause as EngineFailure
  const json = failure.json as { readonly message?: unknown } | null | undefined
  const fromEngine = typeof json?.message === "string" ? json.message : undefined
  const message = (
    fromEngine ?? (typeof failure.message === "string" ? failure.message : String(cause))
  ).trim()
  return typeof failure.statusCode === "number" ? { message, statusCode: failure.statusCode } : { message }
}

/** A DockerError for a failed `what`, keeping the engine's message, status and the cause. */
export const toDockerError = (what: string, cause: unknown): DockerError => {
  const { message, statusCode } = engineMessage(cause)
  return new DockerError(
    statusCode === undefined
      ? { message: `${what}: ${message}`, cause }
      : { message: `${what}: ${message}`, statusCode, cause }
  )
}

/** Connects to the engine and checks that it answers. */
export const make = (options: DockerClientOptions = {}): Effect.Effect<DockerClient["Type"], DockerError> =>
  Effect.gen(function* () {
    const connection: Docker.DockerOptions = {}
    if (options.socketPath !== undefined) connection.socketPath = options.socketPath
    if (options.host !== undefined) connection.host = options.host
    if (options.port !== undefined) connection.port = options.port
    if (options.protocol !== undefined) connection.protocol = options.protocol
    // No timeout in dockerode itself: it would also cut log streams that stay quiet for a while.
    const docker = new Docker(connection)
    const timeout = Duration.decode(options.callTimeout ?? Duration.minutes(2))

    const call = <A>(what: string, f: (docker: Docker, signal: AbortSignal) => Promise<A>) =>
      Effect.tryPromise({
        try: (signal) => f(docker, signal),
        catch: (cause) => toDockerError(what, cause)
      }).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new DockerError({
              message: `${what}: the engine did not answer within ${Duration.format(timeout)}`
            })
        })
      )

    const where =
      options.socketPath ?? (options.host ? `${options.host}:${options.port ?? ""}` : "the default socket")
    yield* call(`cannot reach the Docker engine at ${where}`, (d) => d.ping()).pipe(
      Effect.timeoutFail({
        duration: Duration.min(timeout, Duration.seconds(10)),
        onTimeout: () => new DockerError({ message: `cannot reach the Docker engine at ${where}: no answer` })
      })
    )
    return DockerClient.of({ docker, call })
  })

/** A connection to the engine, checked once when the layer is built. */
export const layer = (options: DockerClientOptions = {}): Layer.Layer<DockerClient, DockerError> =>
  Layer.effect(DockerClient, make(options))
