// The process runtime: each instance is a child process supervised by a fiber that starts it,
// health-checks it, restarts it with backoff when it crashes, and gives up after too many fast
// crashes. `remove` interrupts that fiber, drains, and stops the process group.
import { randomBytes } from "node:crypto"
import { mkdirSync, statSync } from "node:fs"
import { totalmem } from "node:os"
import { dirname, isAbsolute, join } from "node:path"
import type { AppStatus } from "@paas/core/Deployment"
import { RuntimeError } from "@paas/core/Errors"
import type { ProjectId } from "@paas/core/Project"
import type {
  Address,
  AppSpec,
  AppStats,
  Instance,
  InstanceStatus,
  LogLine,
  LogOptions
} from "@paas/core/RuntimeDriver"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type Child, type Exited, freePort, kill, portFree, probe, spawnChild, terminate } from "./child.js"
import { AppLog } from "./logs.js"
import { CLOCK_TICKS_PER_SECOND, processTree, readAllStats, rssBytes } from "./procfs.js"
import { type Recorded, reapLeftovers, writeState } from "./state.js"

/** Options of the process runtime, with every default filled in. */
export interface Settings {
  readonly root: string
  readonly drain: (address: Address, timeout: Duration.Duration) => Effect.Effect<void>
  readonly drainTimeout: Duration.Duration
  readonly stopGrace: Duration.Duration
  readonly restartDelay: Duration.Duration
  readonly maxRestartDelay: Duration.Duration
  readonly maxFastCrashes: number
  readonly stableAfter: Duration.Duration
  readonly healthcheckInterval: Duration.Duration
  readonly logLines: number
  readonly logFileBytes: number
  readonly memoryCheckInterval: Duration.Duration | null
}

/** The runtime's own operations, beyond the core contract. */
export interface Runtime {
  readonly start: (spec: AppSpec) => Effect.Effect<Instance, RuntimeError>
  readonly remove: (instanceId: string) => Effect.Effect<void, RuntimeError>
  readonly list: (appId?: ProjectId) => Effect.Effect<ReadonlyArray<Instance>, RuntimeError>
  readonly logs: (appId: ProjectId, options?: LogOptions) => Stream.Stream<LogLine, RuntimeError>
  readonly stats: (appId: ProjectId) => Effect.Effect<AppStats, RuntimeError>
  readonly status: (appId: ProjectId) => Effect.Effect<AppStatus>
  readonly logFile: (appId: ProjectId) => string
  readonly root: string
}

// How many of an instance's own last lines a failure message quotes.
const FAILURE_TAIL = 20
// Consecutive memory checks above the limit before the instance is restarted: one spike is fine.
const MEMORY_STRIKES = 3
// A cpu sample older than this is too stale to measure against; younger than the minimum, too noisy.
const SAMPLE_MAX_AGE = 60_000
const SAMPLE_MIN_AGE = 100
const SAMPLE_WINDOW = Duration.millis(250)
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/

interface Slot {
  readonly id: string
  readonly spec: AppSpec
  readonly port: number
  readonly startedAt: Date
  readonly ready: Deferred.Deferred<Instance, RuntimeError>
  readonly removed: Deferred.Deferred<void>
  readonly log: AppLog
  /** This instance's own last lines, for failure messages (the app log mixes instances). */
  readonly tail: Array<string>
  status: InstanceStatus
  child: Child | undefined
  fiber: Fiber.RuntimeFiber<void> | undefined
  removing: boolean
  sample: { readonly pid: number; readonly ticks: number; readonly at: number } | undefined
}

const seconds = (d: Duration.Duration) => {
  const s = Duration.toMillis(d) / 1000
  return s >= 10 ? `${Math.round(s)} s` : `${Number(s.toFixed(1))} s`
}

const describeExit = (exited: Exited) =>
  exited.error !== undefined
    ? `could not be started: ${(exited.error as NodeJS.ErrnoException).code ?? exited.error.message}`
    : exited.signal !== null
      ? `was killed by ${exited.signal}`
      : `exited with code ${exited.code}`

// Real processes run in real time: a test clock (as in `it.effect`) would stall every health check
// and grace period, so the runtime's own waits always use the live clock.
const liveClock = Clock.make()
const live = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.withClock(effect, liveClock)

const mib = (bytes: number) => `${Math.round(bytes / (1024 * 1024))} MiB`

/** Builds the runtime in the caller's scope: leftovers reaped first, every app stopped at the end. */
export const make = (settings: Settings): Effect.Effect<Runtime, RuntimeError, Scope.Scope> =>
  Effect.gen(function* () {
    const root = settings.root
    const logsDir = join(root, "logs")
    yield* Effect.try({
      try: () => mkdirSync(logsDir, { recursive: true, mode: 0o700 }),
      catch: (cause) => new RuntimeError({ message: `cannot create the runtime directory ${root}`, cause })
    })

    // A previous run that crashed may have left its apps running, holding their ports.
    const reaped = yield* live(reapLeftovers(root, Duration.toMillis(settings.stopGrace)))
    if (reaped.killed.length > 0)
      yield* Effect.logInfo(
        `stopped ${reaped.killed.length} app process(es) left by an earlier run`,
        reaped.killed.map((r) => r.pid)
      )

    const slots = new Map<string, Slot>()
    const logs = new Map<ProjectId, AppLog>()
    const fibers = yield* FiberSet.make<void, never>()

    const persist = () => {
      const records: Array<Recorded> = []
      for (const slot of slots.values()) {
        const child = slot.child
        if (child?.pid === undefined || child.startTime === undefined) continue
        records.push({
          instanceId: slot.id,
          appId: slot.spec.appId,
          pid: child.pid,
          startTime: child.startTime,
          argv: slot.spec.run.command ?? []
        })
      }
      try {
        writeState(root, records)
      } catch {
        // Losing the record only matters if the server then crashes; not a reason to fail a start.
      }
    }

    const logOf = (appId: ProjectId) =>
      Effect.suspend(() => {
        const existing = logs.get(appId)
        if (existing !== undefined) return Effect.succeed(existing)
        return Effect.map(
          AppLog.make({
            path: join(logsDir, `${appId}.log`),
            maxLines: settings.logLines,
            maxFileBytes: settings.logFileBytes
          }),
          (log) => {
            // Two fibers may race here; the first one's log wins.
            const winner = logs.get(appId) ?? log
            logs.set(appId, winner)
            return winner
          }
        )
      })

    const note = (slot: Slot, line: string, stream: "stdout" | "stderr" = "stdout") =>
      slot.log.write(stream, `[paas] ${line}`)

    const toInstance = (slot: Slot): Instance => ({
      id: slot.id,
      appId: slot.spec.appId,
      releaseId: slot.spec.releaseId,
      specHash: slot.spec.specHash,
      status: slot.status,
      address: { host: "127.0.0.1", port: slot.port },
      startedAt: slot.startedAt
    })

    const failure = (slot: Slot, reason: string) => {
      const lines = slot.tail.slice(-FAILURE_TAIL)
      const output =
        lines.length > 0 ? `\nlast output:\n${lines.map((l) => `  ${l}`).join("\n")}` : "\n(no output)"
      return `release v${slot.spec.releaseNumber} ${reason}${output}`
    }

    const environment = (slot: Slot): Record<string, string> => ({
      // The server's own environment (secrets, database URLs) never reaches an app: only these.
      PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
      HOME: slot.spec.image,
      ...slot.spec.env,
      PORT: String(slot.port)
    })

    // Spawns the process and waits until it answers its health check, fails it, or exits.
    const launch = (slot: Slot): Effect.Effect<string | undefined> =>
      Effect.gen(function* () {
        const spec = slot.spec
        slot.tail.length = 0
        const child = yield* spawnChild({
          argv: spec.run.command!,
          cwd: spec.image,
          env: environment(slot),
          onLine: (stream, line) => {
            slot.log.write(stream, line)
            slot.tail.push(line)
            if (slot.tail.length > FAILURE_TAIL * 2) slot.tail.splice(0, slot.tail.length - FAILURE_TAIL)
          }
        })
        slot.child = child
        persist()
        if (child.pid !== undefined) note(slot, `started process ${child.pid} on port ${slot.port}`)
        const path = spec.run.healthcheckPath.startsWith("/")
          ? spec.run.healthcheckPath
          : `/${spec.run.healthcheckPath}`
        const timeoutMs = spec.run.healthcheckTimeoutMs
        const deadline = Date.now() + timeoutMs
        const interval = Duration.toMillis(settings.healthcheckInterval)

        const poll = Effect.gen(function* () {
          let last = "no attempt"
          // Bounded by the deadline; each round waits for a probe (itself bounded) and the interval.
          while (true) {
            const remaining = deadline - Date.now()
            if (remaining <= 0) break
            const result = yield* probe(slot.port, path, Math.max(50, Math.min(2_000, remaining)))
            if ("status" in result && result.status < 500) return undefined
            last = "status" in result ? `status ${result.status}` : result.reason
            const wait = Math.min(interval, deadline - Date.now())
            if (wait > 0) yield* Effect.sleep(wait)
          }
          return `did not pass its health check (GET ${path} on port ${slot.port}) within ${timeoutMs} ms; last attempt: ${last}`
        })
        const exit = Effect.map(
          // Its last words may still be in the pipes when it exits: read them (briefly) first. A
          // child it left behind could hold the pipes open, hence the bound.
          Effect.zipLeft(
            Deferred.await(child.exited),
            Effect.timeoutOption(Deferred.await(child.drained), "500 millis")
          ),
          (exited) =>
            `${describeExit(exited)} before passing its health check (GET ${path} on port ${slot.port})`
        )
        return yield* Effect.raceFirst(poll, exit)
      })

    // Watches a running process until it exits; kills it first if it stays above its memory limit.
    const watch = (slot: Slot, child: Child): Effect.Effect<Exited> => {
      const limit = slot.spec.run.memoryBytes
      const exited = Deferred.await(child.exited)
      if (limit === null || settings.memoryCheckInterval === null || child.pid === undefined) return exited
      const pid = child.pid
      const interval = settings.memoryCheckInterval
      const overLimit = Effect.gen(function* () {
        let strikes = 0
        // Ends only by finding the process over its limit; the race with `exited` stops it otherwise.
        while (strikes < MEMORY_STRIKES) {
          yield* Effect.sleep(interval)
          const used = processTree(pid).reduce((sum, p) => sum + rssBytes(p.pid), 0)
          strikes = used > limit ? strikes + 1 : 0
          if (strikes === MEMORY_STRIKES)
            note(slot, `uses ${mib(used)}, above its limit of ${mib(limit)}: restarting it`, "stderr")
        }
        yield* kill(child)
        return yield* exited
      })
      return Effect.raceFirst(exited, overLimit)
    }

    const backoff = (crashes: number) =>
      Duration.min(
        Duration.times(settings.restartDelay, 2 ** Math.min(crashes - 1, 20)),
        settings.maxRestartDelay
      )

    // The life of one instance, from its first start to its removal or its last crash.
    const supervise = (slot: Slot): Effect.Effect<void> =>
      Effect.gen(function* () {
        const failed = yield* launch(slot)
        if (failed !== undefined) {
          // Cleaning up must finish even if `remove` interrupts us now: nothing may be left running.
          yield* Effect.uninterruptible(
            Effect.gen(function* () {
              const message = failure(slot, failed)
              note(slot, message.split("\n")[0]!, "stderr")
              yield* kill(slot.child)
              slots.delete(slot.id)
              persist()
              yield* Deferred.fail(slot.ready, new RuntimeError({ message }))
            })
          )
          return
        }
        slot.status = "running"
        note(slot, `instance ${slot.id} is healthy`)
        yield* Deferred.succeed(slot.ready, toInstance(slot))

        let crashes = 0
        // Runs for the life of the instance: each round is one crash; giving up ends it.
        while (true) {
          const child = slot.child!
          const exited = yield* watch(slot, child)
          if (slot.removing) return
          const uptime = Date.now() - child.startedAt
          crashes = uptime >= Duration.toMillis(settings.stableAfter) ? 1 : crashes + 1
          slot.status = "failed"
          note(slot, `process ${describeExit(exited)} after ${seconds(Duration.millis(uptime))}`, "stderr")
          // The leader is gone but what it started may still hold the port: clear the group.
          yield* terminate(child, settings.stopGrace)
          // Bounded: every failed relaunch counts as one more crash, and crashes are capped.
          while (true) {
            if (crashes > settings.maxFastCrashes) {
              note(
                slot,
                `crashed ${crashes} times in a row; not restarting it again until it is redeployed`,
                "stderr"
              )
              slot.child = undefined
              persist()
              return
            }
            const delay = backoff(crashes)
            note(slot, `restarting in ${seconds(delay)}`)
            yield* Effect.sleep(delay)
            slot.status = "starting"
            const relaunch = yield* launch(slot)
            if (relaunch === undefined) break
            note(slot, relaunch, "stderr")
            yield* kill(slot.child)
            slot.status = "failed"
            crashes++
          }
          slot.status = "running"
          note(slot, `instance ${slot.id} is healthy again`)
        }
      })

    const validate = (spec: AppSpec): Effect.Effect<ReadonlyArray<string>, RuntimeError> =>
      Effect.suspend(() => {
        const fail = (message: string) =>
          Effect.fail(new RuntimeError({ message: `release v${spec.releaseNumber}: ${message}` }))
        if (!ID_PATTERN.test(spec.appId)) return fail(`invalid app id ${JSON.stringify(spec.appId)}`)
        const command = spec.run.command
        if (command === null || command.length === 0 || command[0] === "")
          return fail(
            "no start command: the process runtime needs `run.command` (e.g. from paas.yaml or the builder)"
          )
        if (!isAbsolute(spec.image))
          return fail(`the image must be the absolute path of a built app directory, not ${spec.image}`)
        try {
          if (!statSync(spec.image).isDirectory()) return fail(`${spec.image} is not a directory`)
        } catch {
          return fail(`the app directory ${spec.image} does not exist`)
        }
        return Effect.succeed(command)
      })

    const choosePort = (spec: AppSpec): Effect.Effect<number, RuntimeError> =>
      spec.run.port === null
        ? Effect.mapError(
            freePort(),
            (cause) => new RuntimeError({ message: "cannot find a free port on 127.0.0.1", cause })
          )
        : Effect.flatMap(portFree(spec.run.port), (free) =>
            free
              ? Effect.succeed(spec.run.port!)
              : Effect.fail(
                  new RuntimeError({
                    message: `release v${spec.releaseNumber}: port ${spec.run.port} is already in use (by an earlier instance of the app?); leave run.port unset so the process runtime picks a free port for each instance`
                  })
                )
          )

    const remove = (instanceId: string): Effect.Effect<void, RuntimeError> =>
      Effect.uninterruptible(
        Effect.gen(function* () {
          const slot = slots.get(instanceId)
          if (slot === undefined) return
          if (slot.removing) return yield* Deferred.await(slot.removed)
          slot.removing = true
          const wasServing = slot.status === "running"
          slot.status = "stopping"
          yield* Deferred.fail(
            slot.ready,
            new RuntimeError({
              message: `release v${slot.spec.releaseNumber}: instance ${slot.id} was removed while starting`
            })
          )
          if (slot.fiber !== undefined) yield* Fiber.interrupt(slot.fiber)
          // Only an instance that served can have requests in flight through the router.
          if (wasServing) yield* settings.drain({ host: "127.0.0.1", port: slot.port }, settings.drainTimeout)
          yield* terminate(slot.child, settings.stopGrace)
          note(slot, `stopped instance ${slot.id}`)
          slots.delete(slot.id)
          persist()
          yield* Deferred.succeed(slot.removed, undefined)
        })
      )

    const start = (spec: AppSpec): Effect.Effect<Instance, RuntimeError> =>
      Effect.gen(function* () {
        yield* validate(spec)
        const log = yield* logOf(spec.appId)
        const port = yield* choosePort(spec)
        const slot: Slot = {
          id: `${spec.appId.slice(0, 8)}-v${spec.releaseNumber}-${randomBytes(4).toString("hex")}`,
          spec,
          port,
          startedAt: new Date(),
          ready: yield* Deferred.make<Instance, RuntimeError>(),
          removed: yield* Deferred.make<void>(),
          log,
          tail: [],
          status: "starting",
          child: undefined,
          fiber: undefined,
          removing: false,
          sample: undefined
        }
        slots.set(slot.id, slot)
        note(slot, `starting release v${spec.releaseNumber} as instance ${slot.id} (${spec.image})`)
        if (spec.run.replicas > 1)
          note(slot, `${spec.run.replicas} replicas requested: the process runtime runs one instance per app`)
        slot.fiber = yield* FiberSet.run(fibers, supervise(slot))
        // A caller that gives up (a timeout) must not leave a half-started instance behind.
        return yield* Deferred.await(slot.ready).pipe(
          Effect.onInterrupt(() => Effect.ignore(remove(slot.id)))
        )
      })

    const list = (appId?: ProjectId) =>
      Effect.sync(() => {
        const out: Array<Instance> = []
        for (const slot of slots.values())
          if (appId === undefined || slot.spec.appId === appId) out.push(toInstance(slot))
        return out
      })

    const liveSlots = (appId: ProjectId) =>
      [...slots.values()].filter((s) => s.spec.appId === appId && s.child?.pid !== undefined && !s.removing)

    const stats = (appId: ProjectId): Effect.Effect<AppStats, RuntimeError> =>
      Effect.gen(function* () {
        const live = liveSlots(appId).filter((s) => s.status === "running" || s.status === "starting")
        if (live.length === 0)
          return yield* new RuntimeError({ message: `app ${appId} has no running process` })
        const measure = () => {
          const all = readAllStats()
          const at = Date.now()
          return live.map((slot) => {
            const tree = processTree(slot.child!.pid!, all)
            return {
              slot,
              pid: slot.child!.pid!,
              at,
              ticks: tree.reduce((sum, p) => sum + p.ticks, 0),
              rss: tree.reduce((sum, p) => sum + rssBytes(p.pid), 0)
            }
          })
        }
        let now = measure()
        const usable = (m: (typeof now)[number]) =>
          m.slot.sample !== undefined &&
          m.slot.sample.pid === m.pid &&
          m.at - m.slot.sample.at >= SAMPLE_MIN_AGE &&
          m.at - m.slot.sample.at <= SAMPLE_MAX_AGE
        if (!now.every(usable)) {
          // No recent sample to compare with: take a baseline now and measure over a short window.
          for (const m of now) m.slot.sample = { pid: m.pid, ticks: m.ticks, at: m.at }
          yield* Effect.sleep(SAMPLE_WINDOW)
          now = measure()
        }
        let cpu = 0
        for (const m of now) {
          const before = m.slot.sample!
          const elapsed = (m.at - before.at) / 1000
          if (elapsed > 0)
            cpu += (Math.max(0, m.ticks - before.ticks) / CLOCK_TICKS_PER_SECOND / elapsed) * 100
          m.slot.sample = { pid: m.pid, ticks: m.ticks, at: m.at }
        }
        const newest = live.reduce((a, b) => (b.startedAt > a.startedAt ? b : a))
        return {
          cpuPercent: Math.round(cpu * 10) / 10,
          memoryBytes: now.reduce((sum, m) => sum + m.rss, 0),
          memoryLimitBytes: newest.spec.run.memoryBytes ?? totalmem()
        }
      })

    const status = (appId: ProjectId) =>
      Effect.sync((): AppStatus => {
        const statuses = new Set(
          [...slots.values()].filter((s) => s.spec.appId === appId).map((s) => s.status)
        )
        if (statuses.has("running")) return "running"
        if (statuses.has("starting")) return "starting"
        if (statuses.has("stopping")) return "stopping"
        if (statuses.has("failed")) return "failed"
        return logs.has(appId) ? "stopped" : "unknown"
      })

    const logStream = (appId: ProjectId, options: LogOptions = {}) =>
      ID_PATTERN.test(appId)
        ? Stream.unwrap(Effect.map(logOf(appId), (log) => log.stream(options.tail, options.follow ?? false)))
        : Stream.fail(new RuntimeError({ message: `invalid app id ${JSON.stringify(appId)}` }))

    // Closing the scope stops every app (no drain: the router goes down with us) and the logs.
    yield* Effect.addFinalizer(() =>
      live(
        Effect.gen(function* () {
          const all = [...slots.values()]
          for (const slot of all) {
            slot.removing = true
            slot.status = "stopping"
            yield* Deferred.fail(
              slot.ready,
              new RuntimeError({ message: "the process runtime is shutting down" })
            )
          }
          yield* Effect.forEach(
            all,
            (slot) =>
              Effect.gen(function* () {
                if (slot.fiber !== undefined) yield* Fiber.interrupt(slot.fiber)
                yield* terminate(slot.child, settings.stopGrace)
                note(slot, `stopped instance ${slot.id}: the runtime is shutting down`)
                slots.delete(slot.id)
                yield* Deferred.succeed(slot.removed, undefined)
              }),
            { concurrency: "unbounded", discard: true }
          )
          persist()
          yield* Effect.forEach(logs.values(), (log) => log.close(), { discard: true })
        })
      )
    )

    return {
      start: (spec: AppSpec) => live(start(spec)),
      remove: (instanceId: string) => live(remove(instanceId)),
      list,
      logs: logStream,
      stats: (appId: ProjectId) => live(stats(appId)),
      status,
      logFile: (appId: ProjectId) => join(logsDir, `${appId}.log`),
      root
    }
  })
