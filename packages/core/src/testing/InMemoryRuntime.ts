/**
 * RuntimeDriver in memory: instances are records with the life cycle of real ones (starting,
 * health-checked, running, removed), per-app log buffers that can be followed, and controls to
 * kill an instance behind the platform's back or make a start fail.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"
import { RuntimeError } from "../Errors.js"
import type { ProjectId } from "../Project.js"
import { type AppSpec, type Instance, type LogLine, RuntimeDriver } from "../RuntimeDriver.js"

/** Test controls of the in-memory runtime. */
export class RuntimeControls extends Context.Tag("@paas/core/testing/RuntimeControls")<
  RuntimeControls,
  {
    /** Every instance, whatever its status. */
    readonly instances: Effect.Effect<ReadonlyArray<Instance>>
    /** The spec an instance was started from. */
    readonly specOf: (instanceId: string) => Effect.Effect<AppSpec | undefined>
    /** Marks an instance as crashed, as if its process died. */
    readonly kill: (instanceId: string) => Effect.Effect<void>
    /** Removes an instance without the platform knowing. */
    readonly forget: (instanceId: string) => Effect.Effect<void>
    /** Makes the next start fail its health check with `message`. */
    readonly failNextStart: (message: string) => Effect.Effect<void>
    /** Writes a line to an app's output, as the app would. */
    readonly emit: (appId: ProjectId, line: string) => Effect.Effect<void>
    /** How many starts and removes were asked for. */
    readonly operations: Effect.Effect<{ readonly starts: number; readonly removes: number }>
  }
>() {}

const MAX_LOG_LINES = 1_000

/** An empty in-memory runtime with its test controls. */
export const layer: Layer.Layer<RuntimeDriver | RuntimeControls> = Layer.scopedContext(
  Effect.gen(function* () {
    const instances = new Map<string, { instance: Instance; spec: AppSpec }>()
    // Instance ids per app, so that listing one app does not scan them all.
    const byApp = new Map<ProjectId, Set<string>>()
    const track = (appId: ProjectId, id: string) => {
      const ids = byApp.get(appId)
      if (ids) ids.add(id)
      else byApp.set(appId, new Set([id]))
    }
    const untrack = (id: string) => {
      const entry = instances.get(id)
      if (!entry) return undefined
      instances.delete(id)
      const ids = byApp.get(entry.instance.appId)
      ids?.delete(id)
      if (ids?.size === 0) byApp.delete(entry.instance.appId)
      return entry
    }
    const logs = new Map<ProjectId, Array<LogLine>>()
    const feed = yield* PubSub.unbounded<{ readonly appId: ProjectId; readonly line: LogLine }>()
    yield* Effect.addFinalizer(() => PubSub.shutdown(feed))
    let failure: string | undefined
    let next = 0
    let starts = 0
    let removes = 0

    const write = (appId: ProjectId, line: string, stream: LogLine["stream"] = "stdout") =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const entry: LogLine = { at: new Date(now), stream, line }
        const buffer = logs.get(appId) ?? []
        buffer.push(entry)
        if (buffer.length > MAX_LOG_LINES) buffer.splice(0, buffer.length - MAX_LOG_LINES)
        logs.set(appId, buffer)
        return PubSub.publish(feed, { appId, line: entry })
      })

    const update = (id: string, status: Instance["status"]) => {
      const entry = instances.get(id)
      if (entry) instances.set(id, { ...entry, instance: { ...entry.instance, status } })
    }

    const driver = RuntimeDriver.of({
      start: (spec) =>
        Effect.gen(function* () {
          starts++
          const n = ++next
          const id = `mem-${n}`
          const startedAt = new Date(yield* Clock.currentTimeMillis)
          const instance: Instance = {
            id,
            appId: spec.appId,
            releaseId: spec.releaseId,
            specHash: spec.specHash,
            status: "starting",
            address: { host: "127.0.0.1", port: 20_000 + (n % 40_000) },
            startedAt
          }
          instances.set(id, { instance, spec })
          track(spec.appId, id)
          yield* write(spec.appId, `starting release v${spec.releaseNumber} (${spec.image})`)
          if (failure !== undefined) {
            const message = failure
            failure = undefined
            untrack(id)
            yield* write(spec.appId, message, "stderr")
            return yield* new RuntimeError({
              message: `release v${spec.releaseNumber} failed to start: ${message}`
            })
          }
          update(id, "running")
          return instances.get(id)!.instance
        }),
      remove: (instanceId) =>
        Effect.suspend(() => {
          removes++
          const entry = untrack(instanceId)
          return entry ? write(entry.instance.appId, `stopped instance ${instanceId}`) : Effect.void
        }),
      list: (appId) =>
        Effect.sync(() => {
          const out: Array<Instance> = []
          for (const { instance } of instances.values())
            if (appId === undefined || instance.appId === appId) out.push(instance)
          return out
        }),
      logs: (appId, options = {}) => {
        const past = Stream.suspend(() => {
          const buffer = logs.get(appId) ?? []
          return Stream.fromIterable(options.tail === undefined ? [...buffer] : buffer.slice(-options.tail))
        })
        if (!options.follow) return past
        // Subscribe before reading the buffer so no line falls between the two.
        return Stream.unwrapScoped(
          Effect.map(PubSub.subscribe(feed), (subscription) =>
            Stream.concat(
              past,
              Stream.fromQueue(subscription).pipe(
                Stream.filter((e) => e.appId === appId),
                Stream.map((e) => e.line)
              )
            )
          )
        )
      },
      stats: (appId) =>
        Effect.suspend(() => {
          const running = [...instances.values()].filter(
            (e) => e.instance.appId === appId && e.instance.status === "running"
          )
          if (running.length === 0)
            return Effect.fail(new RuntimeError({ message: "the app is not running" }))
          const limit = running[0]!.spec.run.memoryBytes ?? 512 * 1024 * 1024
          return Effect.succeed({
            cpuPercent: 0.5 * running.length,
            memoryBytes: 32 * 1024 * 1024 * running.length,
            memoryLimitBytes: limit
          })
        })
    })

    const controls = RuntimeControls.of({
      instances: Effect.sync(() => [...instances.values()].map((e) => e.instance)),
      specOf: (id) => Effect.sync(() => instances.get(id)?.spec),
      kill: (id) => Effect.sync(() => update(id, "failed")),
      forget: (id) => Effect.sync(() => void untrack(id)),
      failNextStart: (message) =>
        Effect.sync(() => {
          failure = message
        }),
      emit: (appId, line) => write(appId, line),
      operations: Effect.sync(() => ({ starts, removes }))
    })
    return Context.make(RuntimeDriver, driver).pipe(Context.add(RuntimeControls, controls))
  })
)
