// What the HTTP benchmarks share: running Debian's `wrk` against a URL and reading what it
// printed, and the CPU time processes used (from /proc), to price a request.
import { spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import * as Effect from "effect/Effect"

const WRK = "/usr/bin/wrk"

/** What one wrk run measured. */
export interface WrkResult {
  readonly rps: number
  readonly requests: number
  readonly p50ms: number
  readonly p99ms: number
  /** Socket errors and non-2xx/3xx answers, as wrk words them; null when there were none. */
  readonly errors: string | null
}

/** How to load a URL. */
export interface WrkOptions {
  readonly url: string
  readonly threads: number
  readonly connections: number
  readonly seconds: number
  readonly headers?: Readonly<Record<string, string>>
}

const toMs = (value: string, unit: string) =>
  unit === "us" ? Number(value) / 1000 : unit === "s" ? Number(value) * 1000 : Number(value)

/** Loads `url` with wrk for `seconds` and reads requests/s and latencies back. */
export const wrk = (options: WrkOptions) =>
  Effect.async<WrkResult, Error>((resume) => {
    const args = [
      `-t${options.threads}`,
      `-c${options.connections}`,
      `-d${options.seconds}s`,
      "--timeout",
      "10s",
      "--latency",
      ...Object.entries(options.headers ?? {}).flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
      options.url
    ]
    const p = spawn(WRK, args, { stdio: ["ignore", "pipe", "pipe"], detached: true })
    let out = ""
    p.stdout.on("data", (c: Buffer) => (out += c.toString()))
    p.stderr.on("data", (c: Buffer) => (out += c.toString()))
    // wrk stops by itself after `seconds`; this bound is for a wrk that hangs.
    const timer = setTimeout(() => p.kill("SIGKILL"), (options.seconds + 30) * 1000)
    p.once("exit", () => {
      clearTimeout(timer)
      // wrk pads its latency lines with trailing spaces.
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)
      const requests = /(\d+) requests in/.exec(out)
      const p50 = /^\s+50%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out)
      const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out)
      const errors = [/Socket errors:.*/.exec(out)?.[0], /Non-2xx or 3xx responses: \d+/.exec(out)?.[0]]
        .filter((e) => e !== undefined)
        .join("; ")
      if (rps === null || p99 === null || p50 === null)
        resume(Effect.fail(new Error(`cannot read wrk's output:\n${out}`)))
      else
        resume(
          Effect.succeed({
            rps: Number(rps[1]),
            requests: Number(requests?.[1] ?? 0),
            p50ms: toMs(p50[1]!, p50[2]!),
            p99ms: toMs(p99[1]!, p99[2]!),
            errors: errors === "" ? null : errors
          })
        )
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      p.kill("SIGKILL")
    })
  })

/** CPU time (user + system, in clock ticks of 10 ms) used so far by some processes. */
export const cpuTicks = (pids: ReadonlyArray<number>) =>
  pids.reduce((sum, pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      return sum + Number(fields[11]) + Number(fields[12])
    } catch {
      return sum
    }
  }, 0)

/** A process and its direct children (a server's workers or backends), from /proc. */
export const withChildren = (parent: number): Array<number> => {
  const pids = [parent]
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "latin1")
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === parent) pids.push(Number(name))
    } catch {}
  }
  return pids
}
