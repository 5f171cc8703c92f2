/**
 * RuntimeDriver: runs app instances (processes, containers, pods). The reconciler decides what
 * should run; a driver only does what it is told and reports what it sees.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { RuntimeError } from "./Errors.js"
import type { Env, ProjectId } from "./Project.js"
import type { ReleaseId, RunSettings } from "./Release.js"

/** Everything a driver needs to start one instance of an app. */
export interface AppSpec {
  readonly appId: ProjectId
  readonly releaseId: ReleaseId
  readonly releaseNumber: number
  readonly image: string
  readonly env: Env
  readonly run: RunSettings
  /** The host names the app answers to (for drivers that route by labels). */
  readonly hosts: ReadonlyArray<string>
  /** A digest of everything above: two instances with the same digest are interchangeable. */
  readonly specHash: string
}

/** Where an instance can be reached from the router. */
export interface Address {
  readonly host: string
  readonly port: number
}

/** What a driver sees of an instance. `running` means started and healthy. */
export type InstanceStatus = "starting" | "running" | "stopping" | "stopped" | "failed"

/** An instance of an app, as the driver reports it. */
export interface Instance {
  readonly id: string
  readonly appId: ProjectId
  readonly releaseId: ReleaseId
  readonly specHash: string
  readonly status: InstanceStatus
  readonly address: Address | null
  readonly startedAt: Date
}

/** One line of an app's output. */
export interface LogLine {
  readonly at: Date
  readonly stream: "stdout" | "stderr"
  readonly line: string
}

/** `tail`: how many past lines (default all the driver keeps); `follow`: keep streaming new ones. */
export interface LogOptions {
  readonly tail?: number
  readonly follow?: boolean
}

/** Resource use of an app: cpu in percent of one core, memory in bytes. */
export interface AppStats {
  readonly cpuPercent: number
  readonly memoryBytes: number
  readonly memoryLimitBytes: number
}

/** Starts, lists and removes app instances; reads their logs and statistics. */
export class RuntimeDriver extends Context.Tag("@paas/core/RuntimeDriver")<
  RuntimeDriver,
  {
    /**
     * Starts a new instance beside any existing ones and succeeds once it passes its health
     * check. On failure the new instance is removed again and nothing else is touched.
     */
    readonly start: (spec: AppSpec) => Effect.Effect<Instance, RuntimeError>
    /** Drains (lets in-flight requests finish), stops and forgets an instance. Idempotent. */
    readonly remove: (instanceId: string) => Effect.Effect<void, RuntimeError>
    /** The instances this driver owns (never anything else on the host), optionally for one app. */
    readonly list: (appId?: ProjectId) => Effect.Effect<ReadonlyArray<Instance>, RuntimeError>
    readonly logs: (appId: ProjectId, options?: LogOptions) => Stream.Stream<LogLine, RuntimeError>
    readonly stats: (appId: ProjectId) => Effect.Effect<AppStats, RuntimeError>
  }
>() {}
