// What bench.ts and steps.ts share: a throwaway PostgreSQL, child processes released by scope,
// bounded waits and requests, CPU accounting from /proc, and a main that cleans up on signals.
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import pg from "pg"
import { cpuTicks, withChildren } from "../wrk.js"

/** The repository's root directory. */
export const root = fileURLToPath(new URL("../../", import.meta.url))

/** `--name=value` from the command line. */
export const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback

/** A benchmark step that went wrong; the message is printed as is. */
export class BenchError {
  readonly _tag = "BenchError"
  constructor(readonly message: string) {}
}

/** Fails the benchmark with a message. */
export const fail = (message: string) => Effect.fail(new BenchError(message))

/** Prints a line. */
export const log = (line: string) => Effect.sync(() => console.log(line))

/** A port nothing listens on right now (the one the server tests use). */
export { freePort } from "../../packages/server/test/support/server.js"

/** Runs a program to completion (killed after `timeoutMs`), with an argument array; its stdout. */
export const run = (file: string, args: ReadonlyArray<string>, timeoutMs: number) =>
  Effect.async<string, BenchError>((resume) => {
    // Detached: a Ctrl-C in the terminal reaches the benchmark only, which cleans up in order.
    const options = { timeout: timeoutMs, killSignal: "SIGKILL" as const, detached: true }
    const child = execFile(file, args, options, (error, stdout, stderr) =>
      resume(
        error === null
          ? Effect.succeed(stdout)
          : Effect.fail(new BenchError(`${file} ${args.join(" ")} failed: ${error.message}\n${stderr}`))
      )
    )
    child.stdin?.end()
  })

/** A long-running child process: its output is kept (the last 64 KiB) and counted. */
export interface Child {
  readonly process: ChildProcess
  readonly pid: number
  readonly output: () => string
  /** Bytes written to stdout and stderr since start. */
  readonly outputBytes: () => number
}

const exited = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

/** Starts a child process, stopped (SIGTERM, then SIGKILL after `graceMs`) when the scope closes. */
export const spawnChild = (
  file: string,
  args: ReadonlyArray<string>,
  options: { readonly env: NodeJS.ProcessEnv; readonly cwd?: string; readonly graceMs?: number }
): Effect.Effect<Child, BenchError, Scope.Scope> =>
  Effect.gen(function* () {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(file, args, {
          env: options.env,
          cwd: options.cwd ?? root,
          stdio: ["ignore", "pipe", "pipe"],
          detached: true
        })
      ),
      (child) =>
        Effect.gen(function* () {
          if (child.exitCode !== null || child.signalCode !== null) return
          child.kill("SIGTERM")
          const done = yield* exited(child).pipe(Effect.timeout(options.graceMs ?? 20_000), Effect.option)
          if (done._tag === "None") {
            child.kill("SIGKILL")
            yield* exited(child).pipe(Effect.timeout(5_000), Effect.ignore)
          }
        })
    )
    if (child.pid === undefined) return yield* fail(`cannot start ${file}`)
    let output = ""
    let bytes = 0
    const keep = (chunk: Buffer) => {
      bytes += chunk.length
      output = (output + chunk.toString()).slice(-65_536)
    }
    child.stdout?.on("data", keep)
    child.stderr?.on("data", keep)
    return { process: child, pid: child.pid, output: () => output, outputBytes: () => bytes }
  })

/** Waits (bounded) until the child's output matches; fails if it exits first. */
export const waitForOutput = (child: Child, pattern: RegExp, timeoutMs: number, what: string) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const match = pattern.exec(child.output())
      if (match !== null) return match
      if (child.process.exitCode !== null || child.process.signalCode !== null)
        return yield* fail(
          `${what} exited (${child.process.exitCode ?? child.process.signalCode}):\n${child.output()}`
        )
      if (Date.now() > deadline)
        return yield* fail(`${what} did not start within ${timeoutMs / 1000} s:\n${child.output()}`)
      yield* Effect.sleep("50 millis")
    }
  })

/** A JSON reply. */
export interface Reply {
  readonly status: number
  readonly text: string
  /** The API's envelope (anything else parses to `{}`). */
  readonly body: { readonly status?: string; readonly message?: string; readonly content?: unknown }
}

/** A string field of the envelope's `content`, or a failure naming `what`. */
export const contentString = (reply: Reply, field: string, what: string) => {
  const content = reply.body.content
  const value =
    typeof content === "object" && content !== null ? (content as Record<string, unknown>)[field] : undefined
  return typeof value === "string" ? Effect.succeed(value) : fail(`${what}: no ${field} in ${reply.text}`)
}

/** One JSON request, bounded by 15 s. */
export const request = (
  url: string,
  method: string,
  options: { readonly body?: unknown; readonly token?: string } = {}
) =>
  Effect.tryPromise({
    try: async (): Promise<Reply> => {
      const headers: Record<string, string> = {}
      if (options.body !== undefined) headers["content-type"] = "application/json"
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
      const response = await fetch(url, {
        method,
        headers,
        signal: AbortSignal.timeout(15_000),
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
      })
      const text = await response.text()
      let parsed: unknown = null
      try {
        parsed = JSON.parse(text)
      } catch {}
      const body = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? parsed : {}
      return { status: response.status, text, body }
    },
    catch: (cause) => new BenchError(`${method} ${url}: ${String(cause)}`)
  })

/** The reply when it has this status; a failure naming `what` otherwise. */
export const expectStatus = (status: number, what: string) => (reply: Reply) =>
  reply.status === status ? Effect.succeed(reply) : fail(`${what}: HTTP ${reply.status} ${reply.text}`)

// ---- CPU accounting from /proc -------------------------------------------------------------------

/**
 * CPU ticks of each thread of a process: "main" (the event loop), and the others by thread id (V8's
 * GC and compiler helpers, the libuv pool; node 20 leaves them all named "node").
 */
export const threadTicks = (pid: number) => {
  const byName = new Map<string, number>()
  let tids: Array<string> = []
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {}
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "latin1")
      const name = tid === `${pid}` ? "main" : `tid ${tid}`
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      byName.set(name, (byName.get(name) ?? 0) + Number(fields[11]) + Number(fields[12]))
    } catch {}
  }
  return byName
}

/** CPU ticks of each of some processes, by pid. */
export const ticksByPid = (pids: ReadonlyArray<number>) => new Map(pids.map((pid) => [pid, cpuTicks([pid])]))

/** The postmaster of a cluster started by postgres.sh, and its children (backends, workers). */
export const postgresPids = (postgresDir: string) => {
  let master: number
  try {
    master = Number(readFileSync(join(postgresDir, "data", "postmaster.pid"), "latin1").split("\n")[0])
  } catch {
    return []
  }
  return withChildren(master)
}

/** The statements PostgreSQL logged since `offset` (with log_statement = 'all'), counted by text. */
export const loggedStatements = (postgresDir: string, offset: number) => {
  const text = readFileSync(join(postgresDir, "postgres.log"), "utf8")
  const counts = new Map<string, number>()
  for (const match of text.slice(offset).matchAll(/LOG:\s+(?:statement|execute [^:]*):\s+(.*)/g)) {
    const statement = match[1]!.replace(/\s+/g, " ").slice(0, 90)
    counts.set(statement, (counts.get(statement) ?? 0) + 1)
  }
  return { counts, offset: text.length }
}

// ---- PostgreSQL ----------------------------------------------------------------------------------

const POSTGRES_SH = join(root, ".ci", "postgres.sh")

/** A throwaway PostgreSQL cluster from .ci/postgres.sh, stopped and deleted with the scope. */
export const postgres = Effect.acquireRelease(
  Effect.gen(function* () {
    const out = yield* run("bash", [POSTGRES_SH, "start"], 90_000)
    const url = /^PAAS_TEST_DATABASE_URL=(.+)$/m.exec(out)?.[1]
    const dir = /^PAAS_POSTGRES_DIR=(.+)$/m.exec(out)?.[1]
    if (url === undefined || dir === undefined) return yield* fail(`postgres.sh printed:\n${out}`)
    return { url, dir }
  }),
  ({ dir }) => run("bash", [POSTGRES_SH, "stop", dir], 60_000).pipe(Effect.orDie)
)

/** Creates a database on the cluster; its URL. `logStatements` makes PostgreSQL log every statement. */
export const createDatabase = (adminUrl: string, name: string, options: { logStatements?: boolean } = {}) =>
  Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 })
      await client.connect()
      try {
        await client.query(`CREATE DATABASE ${name}`)
        if (options.logStatements) await client.query(`ALTER DATABASE ${name} SET log_statement = 'all'`)
      } finally {
        await client.end()
      }
      const url = new URL(adminUrl)
      url.pathname = `/${name}`
      return url.toString()
    },
    catch: (cause) => new BenchError(`cannot create the database: ${String(cause)}`)
  })

// ---- numbers -------------------------------------------------------------------------------------

/** The median (mean of the middle two for an even count). */
export const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

// ---- main ----------------------------------------------------------------------------------------

/**
 * Runs a scoped benchmark. SIGINT/SIGTERM interrupt it so that its scope releases everything;
 * repeats are ignored (run.ts forwards the terminal's Ctrl-C, which we also receive directly).
 */
export const runMain = async (main: Effect.Effect<void, BenchError, Scope.Scope>) => {
  // Output piped into `head` that exits early must not crash us before we clean up.
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {})
  const fiber = Effect.runFork(Effect.scoped(main))
  let interrupting = false
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.on(signal, () => {
      if (interrupting) return
      interrupting = true
      console.error(`\n${signal}: stopping and cleaning up`)
      Effect.runFork(Fiber.interrupt(fiber))
    })
  const exit = await Effect.runPromise(Fiber.await(fiber))
  if (Exit.isFailure(exit)) {
    if (Cause.isInterruptedOnly(exit.cause)) process.exitCode = 130
    else {
      const failure = Cause.failureOption(exit.cause)
      console.error(
        failure._tag === "Some" ? `bench/api: ${failure.value.message}` : Cause.pretty(exit.cause)
      )
      process.exitCode = 1
    }
  }
  process.exit()
}
