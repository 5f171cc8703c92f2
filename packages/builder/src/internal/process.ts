// Running one build command: an argument vector, no shell, a given environment, every output line
// handed to the build log in order, and nothing left running afterwards.
//
// "Nothing left running" is the hard part. npm runs scripts through `sh -c`, scripts start their
// own children, and some of those daemonize. So each command starts as the leader of a new session
// (`detached`), with a marker variable in its environment. When the command ends, and when the
// build is interrupted, every process in that session or carrying the marker (found in /proc) is
// signalled: TERM first when interrupting, KILL after a grace period, KILL straight away for
// stragglers of a command that has finished.

import { type ChildProcess, spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { StringDecoder } from "node:string_decoder"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Runtime from "effect/Runtime"

/** How a command ended. */
export type Outcome =
  | { readonly _tag: "Exited"; readonly code: number }
  | { readonly _tag: "Signalled"; readonly signal: string }
  | { readonly _tag: "NotStarted"; readonly reason: string }

/** What `run` needs besides the command. */
export interface RunOptions {
  readonly cwd: string
  /** The whole environment of the command (nothing is inherited). */
  readonly env: Readonly<Record<string, string>>
  /** Receives each output line (stdout and stderr, in arrival order), without its line ending. */
  readonly log: (line: string) => Effect.Effect<void>
  /** `NAME=value`, also present in `env`: how the command's processes are found again. */
  readonly marker: string
  /** How long processes get between SIGTERM and SIGKILL when the build is interrupted. */
  readonly graceMs?: number
}

/** Longest line kept whole; longer output without a newline is passed on in pieces of this size. */
const MAX_LINE = 64 * 1024
/** How long output may keep flowing after the command exits (from processes that escaped the kill). */
const DRAIN_MS = 5_000
const POLL_MS = 25

/** Splits a byte stream into lines on \n and \r\n; `end` returns the unterminated last line. */
export class LineSplitter {
  private readonly decoder = new StringDecoder("utf8")
  private partial = ""

  push(chunk: Buffer): Array<string> {
    const text = this.partial + this.decoder.write(chunk)
    const parts = text.split("\n")
    this.partial = parts.pop() ?? ""
    const lines = parts.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l))
    while (this.partial.length > MAX_LINE) {
      lines.push(this.partial.slice(0, MAX_LINE))
      this.partial = this.partial.slice(MAX_LINE)
    }
    return lines
  }

  end(): Array<string> {
    const rest = this.partial + this.decoder.end()
    this.partial = ""
    if (rest === "") return []
    return [rest.endsWith("\r") ? rest.slice(0, -1) : rest]
  }
}

interface ProcInfo {
  readonly pid: number
  readonly pgrp: number
  readonly session: number
}

const readProc = (pid: number): ProcInfo | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    // The command name may contain spaces and parentheses: fields start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    if (fields[0] === "Z" || fields[0] === "X") return undefined
    return { pid, pgrp: Number(fields[2]), session: Number(fields[3]) }
  } catch {
    return undefined
  }
}

const hasMarker = (pid: number, marker: string): boolean => {
  try {
    return `\0${readFileSync(`/proc/${pid}/environ`, "latin1")}`.includes(`\0${marker}\0`)
  } catch {
    return false
  }
}

/** Live (non-zombie) processes in `leader`'s session or process group, or carrying `marker`. */
export const findProcesses = (leader: number | undefined, marker: string): Array<number> => {
  let entries: Array<string>
  try {
    entries = readdirSync("/proc")
  } catch {
    return []
  }
  const found: Array<number> = []
  for (const entry of entries) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue
    const info = readProc(pid)
    if (info === undefined) continue
    if ((leader !== undefined && (info.session === leader || info.pgrp === leader)) || hasMarker(pid, marker))
      found.push(pid)
  }
  return found
}

const signal = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(pid, sig)
  } catch {
    // Already gone, or never ours.
  }
}

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/**
 * Stops every process of a command: SIGTERM, then SIGKILL after `graceMs` (straight to SIGKILL
 * when `graceMs` is 0), and waits, bounded, until none is left.
 */
export const killAll = (
  child: ChildProcess | undefined,
  marker: string,
  graceMs: number
): Effect.Effect<void> =>
  Effect.promise(async () => {
    const leader = child?.pid
    const remaining = () => {
      const found = findProcesses(leader, marker)
      if (child !== undefined && leader !== undefined && !hasExited(child) && !found.includes(leader))
        found.push(leader)
      return found
    }
    const send = (sig: NodeJS.Signals) => {
      if (leader !== undefined) signal(-leader, sig)
      for (const pid of remaining()) signal(pid, sig)
    }
    const waitUntilGone = async (ms: number) => {
      const deadline = Date.now() + ms
      for (;;) {
        if (remaining().length === 0) return true
        if (Date.now() >= deadline) return false
        await new Promise((resolve) => setTimeout(resolve, POLL_MS))
      }
    }
    if (remaining().length === 0) return
    if (graceMs > 0) {
      send("SIGTERM")
      if (await waitUntilGone(graceMs)) return
    }
    // Twice: a process forking while the first round went out would otherwise survive.
    for (let round = 0; round < 2; round++) {
      send("SIGKILL")
      if (await waitUntilGone(1_000)) return
    }
  })

interface Handle {
  readonly child: ChildProcess | undefined
  readonly exited: Promise<Outcome>
  readonly drained: Promise<void>
}

const END = Symbol("end")

const start = (
  argv: readonly [string, ...Array<string>],
  options: RunOptions,
  queue: Queue.Queue<string | typeof END>,
  runtime: Runtime.Runtime<never>
): Handle => {
  let child: ChildProcess
  try {
    child = spawn(argv[0], argv.slice(1), {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      shell: false,
      stdio: ["ignore", "pipe", "pipe"],
      windowsHide: true
    })
  } catch (e) {
    // spawn throws synchronously for arguments it cannot pass (a NUL byte, say).
    const reason = e instanceof Error ? e.message : String(e)
    return {
      child: undefined,
      exited: Promise.resolve({ _tag: "NotStarted", reason }),
      drained: Promise.resolve()
    }
  }
  // Lines go to the queue in one promise chain, so they keep their order; a stream is paused
  // while its lines wait, which is the back-pressure of a slow log.
  let chain: Promise<unknown> = Promise.resolve()
  const offer = (items: ReadonlyArray<string | typeof END>) => {
    chain = chain.then(() => Runtime.runPromise(runtime)(Queue.offerAll(queue, items))).catch(() => undefined)
    return chain
  }
  let open = 0
  let resolveDrained: () => void = () => undefined
  const drained = new Promise<void>((resolve) => {
    resolveDrained = resolve
  })
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue
    open++
    const splitter = new LineSplitter()
    let closed = false
    stream.on("data", (chunk: Buffer) => {
      const lines = splitter.push(chunk)
      if (lines.length === 0) return
      stream.pause()
      void offer(lines).then(() => stream.resume())
    })
    const close = () => {
      if (closed) return
      closed = true
      const rest = splitter.end()
      if (rest.length > 0) void offer(rest)
      if (--open === 0) void offer([END]).then(resolveDrained)
    }
    stream.once("end", close)
    stream.once("close", close)
    stream.once("error", close)
  }
  if (open === 0) void offer([END]).then(resolveDrained)
  const exited = new Promise<Outcome>((resolve) => {
    child.once("exit", (code, sig) =>
      resolve(code !== null ? { _tag: "Exited", code } : { _tag: "Signalled", signal: sig ?? "unknown" })
    )
    child.once("error", (e) => resolve({ _tag: "NotStarted", reason: e.message }))
  })
  return { child, exited, drained }
}

/** Runs a command to its end, streaming its output to `options.log`; interrupting it kills every process it started. */
export const run = (argv: readonly [string, ...Array<string>], options: RunOptions): Effect.Effect<Outcome> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const queue = yield* Queue.bounded<string | typeof END>(1024)
    const drain = Effect.gen(function* () {
      for (;;) {
        const item = yield* Queue.take(queue)
        if (item === END) return
        yield* options.log(item)
      }
    })
    return yield* Effect.acquireUseRelease(
      Effect.sync(() => start(argv, options, queue, runtime)),
      (handle) =>
        Effect.gen(function* () {
          const logging = yield* Effect.fork(drain)
          const outcome = yield* Effect.promise(() => handle.exited)
          if (outcome._tag === "NotStarted") {
            // Nothing ran, so there is no output to wait for.
            handle.child?.stdout?.destroy()
            handle.child?.stderr?.destroy()
            yield* Fiber.interrupt(logging)
            return outcome
          }
          // Whatever the command left running in the background is not part of a finished step.
          yield* killAll(handle.child, options.marker, 0)
          const drained = yield* Effect.promise(() => handle.drained).pipe(
            Effect.timeout(DRAIN_MS),
            Effect.option
          )
          if (drained._tag === "None") {
            handle.child?.stdout?.destroy()
            handle.child?.stderr?.destroy()
          }
          yield* Fiber.join(logging).pipe(Effect.timeout(DRAIN_MS), Effect.ignore)
          return outcome
        }),
      (handle) =>
        Effect.gen(function* () {
          yield* killAll(handle.child, options.marker, options.graceMs ?? 1_500)
          handle.child?.stdout?.destroy()
          handle.child?.stderr?.destroy()
          yield* Queue.shutdown(queue)
        })
    )
  })
