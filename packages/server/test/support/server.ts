/**
 * End-to-end support: the `paas-server` command started as a child process on free ports of
 * 127.0.0.1 with its own data directory, a real SMTP server capturing what it sends, and a small
 * JSON client.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { createRequire } from "node:module"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { SMTPServer } from "smtp-server"
import type { Envelope } from "./api.js"
import { gitUser } from "./git.js"

const bin = fileURLToPath(new URL("../../src/bin.ts", import.meta.url))
const tsx = createRequire(import.meta.url).resolve("tsx")

/** A port nothing listens on right now. */
export const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A fresh directory removed with the scope. */
export const scratchDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "paas-e2e-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

/** A message as the SMTP server received it. */
export interface Captured {
  readonly to: ReadonlyArray<string>
  readonly raw: string
}

/** A real SMTP server on 127.0.0.1 that keeps every message. */
export const smtpServer: Effect.Effect<
  {
    readonly url: string
    readonly messages: Array<Captured>
    readonly waitFor: (to: string, count?: number) => Effect.Effect<Captured>
  },
  never,
  Scope.Scope
> = Effect.gen(function* () {
  const messages: Array<Captured> = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Array<Buffer> = []
      stream.on("data", (chunk: Buffer) => chunks.push(chunk))
      stream.on("end", () => {
        messages.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString("utf8")
        })
        callback()
      })
    }
  })
  const port = yield* Effect.acquireRelease(
    Effect.async<number>((resume) => {
      server.listen(0, "127.0.0.1", () => {
        const address = server.server.address()
        resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
      })
    }),
    () => Effect.async<void>((resume) => server.close(() => resume(Effect.void)))
  )
  const waitFor = (to: string, count = 1) =>
    Effect.gen(function* () {
      for (let i = 0; i < 200; i++) {
        const found = messages.filter((m) => m.to.includes(to))
        if (found.length >= count) return found[count - 1]!
        yield* Effect.sleep("50 millis")
      }
      return yield* Effect.dieMessage(`no mail to ${to} after 10 s`)
    })
  return { url: `smtp://127.0.0.1:${port}`, messages, waitFor }
})

/** The token in a mail (the API prints it on its own line). */
export const tokenIn = (raw: string): string => {
  const match = /Token: ([0-9a-f-]{36})/.exec(raw.replace(/=\r?\n/g, ""))
  if (match === null) throw new Error(`no token in:\n${raw}`)
  return match[1]!
}

/** A running server process. */
export interface RunningServer {
  readonly api: string
  readonly httpPort: number
  readonly sshPort: number
  readonly routerPort: number
  readonly dataDir: string
  readonly output: () => string
  /** Sends a signal and waits for the exit code. */
  readonly stop: (signal?: NodeJS.Signals) => Effect.Effect<number | null>
}

const waitForExit = (child: ChildProcess) =>
  Effect.async<number | null>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

/**
 * Starts `paas-server` with `env` over a minimal environment (free ports, the data dir) and
 * waits until it says it is running; the scope stops it.
 */
export const startServer = (options: {
  readonly dataDir: string
  readonly env?: Record<string, string>
  readonly ports?: { readonly http: number; readonly ssh: number; readonly router: number }
}): Effect.Effect<RunningServer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const ports = options.ports ?? { http: yield* freePort, ssh: yield* freePort, router: yield* freePort }
    let output = ""
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--conditions=source", "--import", tsx, bin], {
          cwd: options.dataDir,
          env: {
            PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
            HOME: options.dataDir,
            PAAS_DATA_DIR: options.dataDir,
            PAAS_HTTP_PORT: `${ports.http}`,
            PAAS_SSH_PORT: `${ports.ssh}`,
            PAAS_ROUTER_PORT: `${ports.router}`,
            PAAS_DEV_MODE: "true",
            ...options.env
          },
          stdio: ["ignore", "pipe", "pipe"]
        })
      ),
      (child) =>
        Effect.gen(function* () {
          if (child.exitCode !== null || child.signalCode !== null) return
          child.kill("SIGTERM")
          const exited = yield* waitForExit(child).pipe(Effect.timeout("20 seconds"), Effect.option)
          if (exited._tag === "None") child.kill("SIGKILL")
        })
    )
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    for (let i = 0; i < 1200; i++) {
      if (output.includes("paas-server is running")) break
      if (child.exitCode !== null || child.signalCode !== null) {
        // The exit can come before the last of its output: wait for the pipes to close.
        yield* Effect.async<void>((resume) => {
          if (child.stdout?.readableEnded && child.stderr?.readableEnded) return resume(Effect.void)
          child.once("close", () => resume(Effect.void))
        }).pipe(Effect.timeout("2 seconds"), Effect.ignore)
        return yield* Effect.dieMessage(
          `paas-server exited at start (code ${child.exitCode}, signal ${child.signalCode}):\n${output}`
        )
      }
      yield* Effect.sleep("50 millis")
    }
    if (!output.includes("paas-server is running"))
      return yield* Effect.dieMessage(`paas-server did not start within 60 s:\n${output}`)
    return {
      api: `http://127.0.0.1:${ports.http}`,
      httpPort: ports.http,
      sshPort: ports.ssh,
      routerPort: ports.router,
      dataDir: options.dataDir,
      output: () => output,
      stop: (signal = "SIGTERM") =>
        Effect.suspend(() => {
          child.kill(signal)
          return waitForExit(child)
        })
    }
  })

/** One JSON request to the API. */
export const api = (
  server: { readonly api: string },
  method: string,
  path: string,
  options: { readonly body?: unknown; readonly token?: string; readonly cookie?: string } = {}
) =>
  Effect.promise(async () => {
    const headers: Record<string, string> = {}
    if (options.body !== undefined) headers["content-type"] = "application/json"
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
    if (options.cookie !== undefined) headers.cookie = options.cookie
    const response = await fetch(`${server.api}${path}`, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
    })
    const text = await response.text()
    let body: Envelope = {}
    try {
      body = JSON.parse(text) as Envelope
    } catch {
      body = { message: text }
    }
    return { status: response.status, headers: response.headers, body }
  })

/** Registers an account through the API, confirms it from the mail, logs in; the bearer token. */
export const signUp = (
  server: { readonly api: string },
  smtp: { readonly waitFor: (to: string, count?: number) => Effect.Effect<Captured> },
  username: string,
  password = "Sup3r-secret!"
) =>
  Effect.gen(function* () {
    const email = `${username}@example.com`
    const registered = yield* api(server, "POST", "/auth/register", { body: { username, email, password } })
    if (registered.status !== 201)
      return yield* Effect.dieMessage(`register: ${JSON.stringify(registered.body)}`)
    const token = tokenIn((yield* smtp.waitFor(email)).raw)
    const confirmed = yield* api(server, "POST", `/auth/confirm/${token}`)
    if (confirmed.status !== 201)
      return yield* Effect.dieMessage(`confirm: ${JSON.stringify(confirmed.body)}`)
    const login = yield* api(server, "POST", "/auth/login", { body: { email, password } })
    if (login.status !== 201) return yield* Effect.dieMessage(`login: ${JSON.stringify(login.body)}`)
    return login.body.content.accessToken as string
  })

/**
 * A server with a git user ready to push: a fresh data dir, a real SMTP server, an account
 * confirmed by mail, its SSH key, and one project. `env` is added to the server's environment.
 */
export const serverWithProject = (options: {
  readonly username: string
  readonly env?: Record<string, string>
}) =>
  Effect.gen(function* () {
    const dataDir = yield* scratchDir
    const home = yield* scratchDir
    const smtp = yield* smtpServer
    const server = yield* startServer({ dataDir, env: { PAAS_SMTP_URL: smtp.url, ...options.env } })
    const token = yield* signUp(server, smtp, options.username)
    const user = yield* gitUser(home, server.sshPort)
    const key = yield* api(server, "POST", "/sshkeys/my", { token, body: { value: user.publicKey } })
    if (key.status !== 201) return yield* Effect.dieMessage(`add key: ${JSON.stringify(key.body)}`)
    const project = yield* api(server, "POST", "/projects", { token, body: { name: options.username } })
    if (project.status !== 201)
      return yield* Effect.dieMessage(`create project: ${JSON.stringify(project.body)}`)
    const id: string = project.body.content.id
    return { server, smtp, dataDir, token, user, id, host: `${id}.user-app.localhost` }
  })
