/**
 * ProcessRuntime: the embedded RuntimeDriver. Each release runs as a supervised child process of
 * the server, started from its built app directory with `PORT` and the app's env, health-checked,
 * restarted with backoff when it crashes, with its logs kept per app and its statistics read from
 * /proc. It is a convenience for one trusted machine, not an isolation boundary: an app runs with
 * the server's user and can read what that user can. Run untrusted code with the Docker runtime.
 */
import type { AppStatus } from "@paas/core/Deployment"
import type { RuntimeError } from "@paas/core/Errors"
import type { ProjectId } from "@paas/core/Project"
import { type Address, RuntimeDriver } from "@paas/core/RuntimeDriver"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/runtime.js"
import { ProxyRouter } from "./ProxyRouter.js"

/** Waits until nothing is in flight to an address any more (at most `timeout`). */
export type Drain = (address: Address, timeout: Duration.Duration) => Effect.Effect<void>

/** Where the runtime keeps its files, and how it supervises apps. */
export interface ProcessRuntimeOptions {
  /** Holds `logs/<appId>.log` and `state.json` (the reference server passes `<PAAS_DATA_DIR>/apps`). */
  readonly root: string
  /**
   * Called before an instance that served is stopped, so in-flight requests finish first. The
   * default does nothing; `layerWithRouter` waits on the ProxyRouter.
   */
  readonly drain?: Drain | undefined
  /** The longest a drain may take (default 30 s). */
  readonly drainTimeout?: Duration.DurationInput | undefined
  /** Between SIGTERM and SIGKILL when stopping an instance (default 10 s). */
  readonly stopGrace?: Duration.DurationInput | undefined
  /** The first restart delay after a crash, doubled on each crash in a row (default 1 s). */
  readonly restartDelay?: Duration.DurationInput | undefined
  /** The longest restart delay (default 30 s). */
  readonly maxRestartDelay?: Duration.DurationInput | undefined
  /** After this many fast crashes in a row the instance stays failed (default 5). */
  readonly maxFastCrashes?: number | undefined
  /** A crash after running this long starts the count again (default 30 s). */
  readonly stableAfter?: Duration.DurationInput | undefined
  /** Between two health probes while an instance starts (default 100 ms). */
  readonly healthcheckInterval?: Duration.DurationInput | undefined
  /** Lines of each app's log kept in memory (default 1000). */
  readonly logLines?: number | undefined
  /** Size at which an app's log file is rotated to `<appId>.log.1` (default 10 MiB). */
  readonly logFileBytes?: number | undefined
  /**
   * How often the memory of apps with `run.memoryBytes` is checked; an instance found above its
   * limit three times in a row is restarted. `null` turns the check off (default 5 s).
   */
  readonly memoryCheckInterval?: Duration.DurationInput | null | undefined
}

/** The process runtime, with what it offers beyond the core RuntimeDriver. */
export class ProcessRuntime extends Context.Tag("@paas/runtime-process/ProcessRuntime")<
  ProcessRuntime,
  RuntimeDriver["Type"] & {
    /** The directory holding logs and the state file. */
    readonly root: string
    /** What the app's instances add up to: running if one runs, else starting, stopping, failed. */
    readonly status: (appId: ProjectId) => Effect.Effect<AppStatus>
    /** The path of an app's log file (rotated to `<path>.1`). */
    readonly logFile: (appId: ProjectId) => string
  }
>() {}

const settingsOf = (options: ProcessRuntimeOptions): internal.Settings => ({
  root: options.root,
  drain: options.drain ?? (() => Effect.void),
  drainTimeout: Duration.decode(options.drainTimeout ?? "30 seconds"),
  stopGrace: Duration.decode(options.stopGrace ?? "10 seconds"),
  restartDelay: Duration.decode(options.restartDelay ?? "1 second"),
  maxRestartDelay: Duration.decode(options.maxRestartDelay ?? "30 seconds"),
  maxFastCrashes: options.maxFastCrashes ?? 5,
  stableAfter: Duration.decode(options.stableAfter ?? "30 seconds"),
  healthcheckInterval: Duration.decode(options.healthcheckInterval ?? "100 millis"),
  logLines: options.logLines ?? 1_000,
  logFileBytes: options.logFileBytes ?? 10 * 1024 * 1024,
  memoryCheckInterval:
    options.memoryCheckInterval === null ? null : Duration.decode(options.memoryCheckInterval ?? "5 seconds")
})

/** Builds the runtime: kills leftovers of an earlier run, and stops every app when the scope closes. */
export const make = (
  options: ProcessRuntimeOptions
): Effect.Effect<ProcessRuntime["Type"], RuntimeError, Scope.Scope> => internal.make(settingsOf(options))

const provide = <R>(make: Effect.Effect<ProcessRuntime["Type"], RuntimeError, R>) =>
  Layer.scopedContext(
    Effect.map(make, (runtime) =>
      Context.make(ProcessRuntime, runtime).pipe(Context.add(RuntimeDriver, runtime))
    )
  )

/** Provides `ProcessRuntime` and the core `RuntimeDriver`. */
export const layer = (
  options: ProcessRuntimeOptions
): Layer.Layer<ProcessRuntime | RuntimeDriver, RuntimeError> => provide(make(options))

/** Like `layer`, draining instances through the ProxyRouter before they stop. */
export const layerWithRouter = (
  options: Omit<ProcessRuntimeOptions, "drain">
): Layer.Layer<ProcessRuntime | RuntimeDriver, RuntimeError, ProxyRouter> =>
  provide(
    Effect.flatMap(ProxyRouter, (router) =>
      make({ ...options, drain: (address, timeout) => Effect.asVoid(router.awaitIdle(address, timeout)) })
    )
  )
