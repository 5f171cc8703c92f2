// One app process: spawned detached (so it leads a process group of its own, and everything it
// starts can be signalled at once), its output split into lines, its exit observable as an effect.
import { type ChildProcess, spawn } from "node:child_process"
import { request } from "node:http"
import { createServer } from "node:net"
import { StringDecoder } from "node:string_decoder"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { LineSplitter } from "./logs.js"
import { groupMembers, readStat } from "./procfs.js"

/** How a process ended. `error` is set when it could not be started at all. */
export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly error: Error | undefined
}

/** A running (or finished) app process. */
export interface Child {
  readonly pid: number | undefined
  /** The process's start time in /proc, to recognise it after a restart of the server. */
  readonly startTime: string | undefined
  readonly startedAt: number
  readonly exited: Deferred.Deferred<Exited>
  /** Done once stdout and stderr are closed: every line has been read. */
  readonly drained: Deferred.Deferred<void>
}

/** What to start, where, with which environment, and where its output lines go. */
export interface SpawnOptions {
  readonly argv: ReadonlyArray<string>
  readonly cwd: string
  readonly env: Record<string, string>
  readonly onLine: (stream: "stdout" | "stderr", line: string) => void
}

/** Starts a process without a shell; never throws (a failed spawn is an immediate exit). */
export const spawnChild = (options: SpawnOptions): Effect.Effect<Child> =>
  Effect.flatMap(Effect.zip(Deferred.make<Exited>(), Deferred.make<void>()), ([exited, drained]) =>
    Effect.sync(() => {
      const [file, ...args] = options.argv
      const done = (info: Exited) => Deferred.unsafeDone(exited, Exit.succeed(info))
      let child: ChildProcess
      try {
        child = spawn(file!, args, {
          cwd: options.cwd,
          env: options.env,
          detached: true,
          stdio: ["ignore", "pipe", "pipe"],
          windowsHide: true
        })
      } catch (error) {
        // spawn throws synchronously for malformed arguments (e.g. a NUL byte in argv).
        done({ code: null, signal: null, error: error as Error })
        Deferred.unsafeDone(drained, Exit.void)
        return { pid: undefined, startTime: undefined, startedAt: Date.now(), exited, drained }
      }
      let open = 2
      const closed = () => {
        if (--open === 0) Deferred.unsafeDone(drained, Exit.void)
      }
      for (const name of ["stdout", "stderr"] as const) {
        const pipe = child[name]
        if (pipe === null) {
          closed()
          continue
        }
        pipe.on("close", closed)
        const decoder = new StringDecoder("utf8")
        const lines = new LineSplitter((line) => options.onLine(name, line))
        pipe.on("data", (chunk: Buffer) => lines.push(decoder.write(chunk)))
        pipe.on("end", () => {
          lines.push(decoder.end())
          lines.end()
        })
        pipe.on("error", () => {})
      }
      // 'error' without a pid means the program could not be started (ENOENT, EACCES); there is
      // no 'exit' then. With a pid, 'error' is about signalling it, and 'exit' still follows.
      child.on("error", (error) => {
        if (child.pid === undefined) done({ code: null, signal: null, error })
      })
      child.on("exit", (code, signal) => done({ code, signal, error: undefined }))
      const pid = child.pid
      return {
        pid,
        startTime: pid === undefined ? undefined : readStat(pid)?.startTime,
        startedAt: Date.now(),
        exited,
        drained
      }
    })
  )

/** Sends a signal to a whole process group; false when there is no such group any more. */
export const signalGroup = (pgid: number, signal: NodeJS.Signals): boolean => {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

/** Whether a process group still has a live (non-zombie) member. */
export const groupAlive = (pgid: number): boolean => groupMembers(pgid).length > 0

const GROUP_POLL = Duration.millis(50)

/** Waits, polling /proc, until the group has no live member; false if `timeout` passes first. */
export const awaitGroupGone = (pgid: number, timeout: Duration.DurationInput): Effect.Effect<boolean> =>
  Effect.gen(function* () {
    const deadline = Date.now() + Duration.toMillis(timeout)
    // Bounded by the deadline: each round sleeps GROUP_POLL.
    while (groupAlive(pgid)) {
      if (Date.now() >= deadline) return false
      yield* Effect.sleep(GROUP_POLL)
    }
    return true
  })

/**
 * Stops a process and everything in its group: SIGTERM, up to `grace` for the leader to exit and
 * the group to empty, then SIGKILL, then a bounded wait for the kernel to finish the job.
 */
export const terminate = (child: Child | undefined, grace: Duration.DurationInput): Effect.Effect<void> =>
  Effect.gen(function* () {
    const pid = child?.pid
    if (child === undefined || pid === undefined) return
    const leaderDone = yield* Deferred.isDone(child.exited)
    if (leaderDone && !groupAlive(pid)) return
    signalGroup(pid, "SIGTERM")
    const deadline = Date.now() + Duration.toMillis(grace)
    yield* Deferred.await(child.exited).pipe(Effect.timeoutOption(grace))
    const gone = yield* awaitGroupGone(pid, Math.max(0, deadline - Date.now()))
    if (gone && (yield* Deferred.isDone(child.exited))) return
    signalGroup(pid, "SIGKILL")
    yield* Deferred.await(child.exited).pipe(Effect.timeoutOption("5 seconds"))
    yield* awaitGroupGone(pid, "5 seconds")
  })

/** Kills a process group at once (the app failed to start, or broke its memory limit). */
export const kill = (child: Child | undefined): Effect.Effect<void> =>
  Effect.gen(function* () {
    const pid = child?.pid
    if (child === undefined || pid === undefined) return
    signalGroup(pid, "SIGKILL")
    yield* Deferred.await(child.exited).pipe(Effect.timeoutOption("5 seconds"))
    yield* awaitGroupGone(pid, "5 seconds")
  })

/** A free TCP port on 127.0.0.1, as the kernel hands them out. */
export const freePort = (host = "127.0.0.1"): Effect.Effect<number, Error> =>
  Effect.async<number, Error>((resume) => {
    const server = createServer()
    server.unref()
    server.once("error", (error) => resume(Effect.fail(error)))
    server.listen(0, host, () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resume(Effect.succeed(port)))
    })
  })

/** Whether nothing listens on a port (checked by binding it briefly). */
export const portFree = (port: number, host = "127.0.0.1"): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const server = createServer()
    server.unref()
    server.once("error", () => resume(Effect.succeed(false)))
    server.listen(port, host, () => server.close(() => resume(Effect.succeed(true))))
  })

/** The outcome of one health probe: the status, or why there was none. */
export type Probe = { readonly status: number } | { readonly reason: string }

/** One GET to the app; a status of any kind means something answered. */
export const probe = (port: number, path: string, timeoutMs: number): Effect.Effect<Probe> =>
  Effect.async<Probe>((resume) => {
    let settled = false
    const settle = (p: Probe) => {
      if (settled) return
      settled = true
      resume(Effect.succeed(p))
    }
    const req = request(
      { host: "127.0.0.1", port, path, method: "GET", agent: false, timeout: timeoutMs },
      (res) => {
        res.resume()
        settle({ status: res.statusCode ?? 0 })
        req.destroy()
      }
    )
    req.on("timeout", () => {
      settle({ reason: `no answer within ${timeoutMs} ms` })
      req.destroy()
    })
    req.on("error", (error: NodeJS.ErrnoException) => settle({ reason: error.code ?? error.message }))
    req.end()
    return Effect.sync(() => req.destroy())
  })
