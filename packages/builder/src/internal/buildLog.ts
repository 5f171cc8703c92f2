// What the builders say about a build, shared by the local and the Docker builder.
import { BuildFailed } from "@paas/core/Errors"
import * as Effect from "effect/Effect"
import type { Outcome } from "./process.js"
import { show } from "./words.js"

/** How many of the last lines a failed build reports (`BuildFailed.logTail`). */
export const TAIL_LINES = 50

/** Keeps the last lines logged, for `BuildFailed.logTail`. */
export class Tail {
  private readonly lines: Array<string> = []
  push(line: string) {
    this.lines.push(line)
    if (this.lines.length > TAIL_LINES) this.lines.shift()
  }
  get(): ReadonlyArray<string> {
    return [...this.lines]
  }
}

/** A size for a person: `812 B`, `3.4 KiB`, `1.9 MiB`. */
export const describeBytes = (bytes: number) =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 * 1024
      ? `${(bytes / 1024).toFixed(1)} KiB`
      : `${(bytes / 1024 / 1024).toFixed(1)} MiB`

/** Why a command failed, or undefined when it succeeded. */
export const describeOutcome = (argv: ReadonlyArray<string>, outcome: Outcome): string | undefined => {
  switch (outcome._tag) {
    case "Exited":
      return outcome.code === 0 ? undefined : `${show(argv)} exited with code ${outcome.code}`
    case "Signalled":
      return `${show(argv)} was killed by ${outcome.signal}`
    case "NotStarted":
      return outcome.reason.includes("ENOENT")
        ? `${argv[0]}: command not found`
        : `could not start ${argv[0]}: ${outcome.reason}`
  }
}

/** An error's message, for a log line. */
export const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e))

/**
 * What one build says and how it fails: `say` logs a line (and keeps it for the tail), `failed`
 * and `fail` make the BuildFailed carrying the last lines, `io` runs a promise whose rejection
 * fails the build with `what` in front.
 */
export const buildRecorder = (log: (line: string) => Effect.Effect<void>) => {
  const tail = new Tail()
  const say = (line: string) =>
    Effect.suspend(() => {
      tail.push(line)
      return log(line)
    })
  const failed = (message: string) => new BuildFailed({ message, logTail: tail.get() })
  const fail = (message: string) => Effect.suspend(() => Effect.fail(failed(message)))
  const io = <A>(what: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: (e) => failed(`${what}: ${errorText(e)}`) })
  return { say, failed, fail, io }
}
