#!/usr/bin/env node
/**
 * The `paas-server` command: reads the configuration from the environment, starts the server and
 * prints where it listens. Bad configuration prints one line naming the variable and exits with
 * code 2; a part that cannot start prints one line and exits with 1; SIGTERM or SIGINT stops
 * accepting, lets in-flight requests finish, closes the database and exits with 0.
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import type * as Server from "./Server.js"
import * as ServerConfig from "./ServerConfig.js"

const EXIT_CONFIG = 2
const EXIT_START = 1
// A shutdown that hangs (a client that never lets go) must not keep the process forever.
const SHUTDOWN_LIMIT_MS = 30_000

class BadConfig {
  readonly _tag = "BadConfig"
  constructor(readonly line: string) {}
}

const main = Effect.gen(function* () {
  const config = yield* ServerConfig.load.pipe(
    Effect.mapError((e) => new BadConfig(ServerConfig.describeError(e)))
  )
  // Loaded only once the configuration is good: a mistake is reported without the wait.
  const Server = yield* Effect.promise(() => import("./Server.js"))
  const serve = Effect.gen(function* () {
    const context = yield* Layer.build(Server.layer(config))
    const info = Context.get(context, Server.ServerInfo)
    const lines = [
      `paas-server is running (data in ${config.dataDir}, database: ${Option.isSome(config.databaseUrl) ? "PostgreSQL" : "embedded PGlite"}, runtime: ${config.runtime}, router: ${config.router})`,
      `  API         ${info.api}   (docs at ${info.api}/docs)`,
      `  git         ${info.git}`,
      `  apps        ${info.apps}${info.router === null ? "" : `   (router on ${info.router})`}`
    ]
    yield* Effect.sync(() => console.log(lines.join("\n")))
    return yield* Effect.never
  })
  return yield* Effect.scoped(serve).pipe(
    Logger.withMinimumLogLevel(config.devMode ? LogLevel.Debug : LogLevel.Info),
    // Nothing exports traces, and a span per SQL query and request costs about a third of a
    // simple request's time: off. An embedding product with a tracer turns it back on.
    // The HTTP server's own tracing middleware still parses the URL and redacts the headers of
    // every request for a span nobody records: off with it.
    Effect.withTracerEnabled(false),
    HttpMiddleware.withTracerDisabledWhenEffect(() => true)
  )
})

for (const signal of ["SIGTERM", "SIGINT"] as const)
  process.once(signal, () => {
    setTimeout(() => {
      console.error(`paas-server: shutdown took longer than ${SHUTDOWN_LIMIT_MS / 1000} s; exiting`)
      process.exit(EXIT_START)
    }, SHUTDOWN_LIMIT_MS).unref()
  })

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return onExit(0)
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) {
      const error = failure.value
      if (error instanceof BadConfig) {
        console.error(`paas-server: bad configuration: ${error.line}`)
        return onExit(EXIT_CONFIG)
      }
      console.error(`paas-server: cannot start: ${(error as Server.ServerStartError).message}`)
      return onExit(EXIT_START)
    }
    console.error(`paas-server: crashed:\n${Cause.pretty(exit.cause)}`)
    return onExit(EXIT_START)
  }
})
