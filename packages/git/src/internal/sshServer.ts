// The SSH git server. ssh2 speaks in callbacks; every decision that needs a service (is this key
// known, may this account touch this project, report this push) runs as an Effect forked into a
// FiberSet bound to the layer's scope, so closing the scope interrupts whatever is in flight.
//
// How pushes are reported: the server snapshots the repository's refs before it starts
// `git receive-pack` and again after it exits 0, and reports the difference to
// `Platform.pushReceived`. Pushes to one repository are serialised around that window, so the
// difference is exactly what this push changed, as git itself recorded it (a ref the client asked
// for but git refused does not show up). No hook script and no shell are involved, and the report
// happens in the process that holds the connection, so the build output can still be streamed to
// the pusher: receive-pack's side-band stream is followed packet by packet and its final flush-pkt
// held back until the Platform is done, so that our lines arrive as `remote: …` like a hook's.
import { timingSafeEqual } from "node:crypto"
import { createServer, type Socket } from "node:net"
import { join } from "node:path"
import { Platform } from "@paas/core/Platform"
import type { ProjectId } from "@paas/core/Project"
import type { RefUpdate } from "@paas/core/RepoStore"
import type { Principal, UserId } from "@paas/core/User"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberSet from "effect/FiberSet"
import * as LogLevel from "effect/LogLevel"
import type * as Scope from "effect/Scope"
import { execa } from "execa"
import type { AuthContext, ClientInfo, Connection, ServerChannel, Session } from "ssh2"
import ssh2 from "ssh2"
import { GitRepoStore, type RefSnapshot } from "../GitRepoStore.js"
import {
  GitSshServer,
  GitSshServerError,
  type GitSshServerOptions,
  type GitSshServerStats
} from "../GitSshServer.js"
import { acceptEnv, forLog, type GitCommand, parse } from "./command.js"
import { gitEnv } from "./git.js"
import * as HostKey from "./hostKey.js"
import { ReceivePackOutput, sidebandMessage, terminalLines } from "./pktline.js"

const { Server, utils } = ssh2

/** Default limits. */
export const defaults = {
  host: "127.0.0.1",
  maxSessionsPerAccount: 5,
  maxConnections: 64,
  idleTimeout: Duration.minutes(5),
  authTimeout: Duration.seconds(30),
  maxPushBytes: 1024 * 1024 * 1024
} as const

const HOST_KEY_FILE = "ssh_host_ed25519_key"
const MAX_AUTH_ATTEMPTS = 10
// How long a closing channel may take to flush what is queued before its exit status is sent.
const FLUSH_TIMEOUT_MS = 10_000
// How long closing connections get to say goodbye when the server stops.
const SHUTDOWN_GRACE_MS = 1_000
// How long git gets to exit by itself once its input is closed.
const STOP_GRACE_MS = 5_000

const messages = {
  shell: "interactive shells are not available: this server only serves git push and git fetch/clone",
  pty: "terminals are not available: this server only serves git push and git fetch/clone",
  subsystem: "subsystems (sftp, …) are not available: this server only serves git push and git fetch/clone",
  notFound: (project: ProjectId) => `repository ${project} not found`,
  busy: (limit: number) =>
    `too many git operations running for this account (at most ${limit} at once); try again shortly`,
  tooBig: (limit: number) => `push refused: it is larger than the limit of ${formatBytes(limit)}`,
  internal: "internal error; the operation did not run"
} as const

const formatBytes = (bytes: number) =>
  bytes >= 1024 * 1024
    ? `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB`
    : `${Math.round(bytes / 1024)} KiB`

/** The key type written inside a public key blob (`string type, …`). */
const blobKeyType = (blob: Buffer): string | undefined => {
  if (blob.length < 4) return undefined
  const length = blob.readUInt32BE(0)
  if (length === 0 || length > 64 || blob.length < 4 + length) return undefined
  return blob.subarray(4, 4 + length).toString("latin1")
}

/** Whether a signed public-key request really was signed by the key it names. */
const signatureHolds = (ctx: Extract<AuthContext, { method: "publickey" }>, type: string): boolean => {
  if (ctx.signature === undefined || ctx.blob === undefined) return false
  const parsed = utils.parseKey(ctx.key.data)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (key === undefined || key instanceof Error || key.type !== type) return false
  const blob = key.getPublicSSH()
  if (blob.length !== ctx.key.data.length || !timingSafeEqual(blob, ctx.key.data)) return false
  return key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true
}

/** `git ls-remote`-style ref changes between two snapshots. */
export const refUpdates = (before: RefSnapshot, after: RefSnapshot): Array<RefUpdate> => {
  const updates: Array<RefUpdate> = []
  for (const [ref, now] of after) {
    const was = before.get(ref)
    if (was === undefined || was.object !== now.object)
      updates.push({ ref, before: was?.commit ?? null, after: now.commit })
  }
  for (const [ref, was] of before) if (!after.has(ref)) updates.push({ ref, before: was.commit, after: null })
  return updates
}

// ssh2 passes `undefined` for accept/reject when the client asked for no reply.
const call = (f: (() => unknown) | undefined) => {
  try {
    f?.()
  } catch {
    // the connection is already gone
  }
}

interface TcpState {
  readonly socket: Socket
  // Operations that keep a connection busy without moving data (waiting for a build).
  holds: number
  authenticated: boolean
}

interface ConnectionState {
  readonly id: number
  readonly remote: string
  readonly tcp: TcpState | undefined
  principal: Principal | undefined
  authAttempts: number
}

/** A channel's lifecycle as the server sees it. */
interface ChannelState {
  readonly channel: ServerChannel
  closed: boolean
}

type Settings = {
  readonly host: string
  readonly port: number
  readonly hostKeyPath: string
  readonly maxSessionsPerAccount: number
  readonly maxConnections: number
  readonly idleTimeoutMs: number
  readonly authTimeoutMs: number
  readonly maxPushBytes: number
}

const settingsFrom = (options: GitSshServerOptions): Either.Either<Settings, string> => {
  const hostKeyPath =
    options.hostKeyPath ?? (options.dataDir === undefined ? undefined : join(options.dataDir, HOST_KEY_FILE))
  if (hostKeyPath === undefined) return Either.left("either dataDir or hostKeyPath is required")
  const positive = (name: string, value: number) =>
    Number.isInteger(value) && value > 0 ? undefined : `${name} must be a positive integer`
  const settings: Settings = {
    host: options.host ?? defaults.host,
    port: options.port,
    hostKeyPath,
    maxSessionsPerAccount: options.maxSessionsPerAccount ?? defaults.maxSessionsPerAccount,
    maxConnections: options.maxConnections ?? defaults.maxConnections,
    idleTimeoutMs: Duration.toMillis(options.idleTimeout ?? defaults.idleTimeout),
    authTimeoutMs: Duration.toMillis(options.authTimeout ?? defaults.authTimeout),
    maxPushBytes: options.maxPushBytes ?? defaults.maxPushBytes
  }
  const problem =
    (Number.isInteger(settings.port) && settings.port >= 0 && settings.port <= 65535
      ? undefined
      : "port must be an integer from 0 to 65535") ??
    positive("maxSessionsPerAccount", settings.maxSessionsPerAccount) ??
    positive("maxConnections", settings.maxConnections) ??
    positive("maxPushBytes", settings.maxPushBytes) ??
    positive("idleTimeout (ms)", Math.round(settings.idleTimeoutMs)) ??
    positive("authTimeout (ms)", Math.round(settings.authTimeoutMs))
  return problem === undefined ? Either.right(settings) : Either.left(problem)
}

/** Starts the server in the current scope. */
export const make = (
  options: GitSshServerOptions
): Effect.Effect<GitSshServer["Type"], GitSshServerError, Platform | GitRepoStore | Scope.Scope> =>
  Effect.gen(function* () {
    const parsed = settingsFrom(options)
    if (Either.isLeft(parsed))
      return yield* new GitSshServerError({ message: `GitSshServer: ${parsed.left}` })
    const settings = parsed.right
    const platform = yield* Platform
    const repos = yield* GitRepoStore
    const git = options.git ?? repos.git
    const hostKey = yield* HostKey.loadOrCreate(settings.hostKeyPath).pipe(
      Effect.mapError((cause) => new GitSshServerError({ message: cause.message, cause }))
    )
    const run = yield* FiberSet.makeRuntime<never, unknown, unknown>()

    const stats = { connections: 0, running: 0, started: 0, refused: 0 }
    const sockets = new Map<string, TcpState>()
    const clients = new Set<Connection>()
    const sessionsByAccount = new Map<UserId, number>()
    const pushLocks = new Map<ProjectId, { readonly lock: Effect.Semaphore; users: number }>()
    let connectionIds = 0

    const log = (
      level: "Debug" | "Info" | "Warning" | "Error",
      conn: ConnectionState | undefined,
      message: string,
      annotations: Record<string, unknown> = {}
    ) =>
      run(
        Effect.logWithLevel(LogLevel.fromLiteral(level), message).pipe(
          Effect.annotateLogs({
            service: "git-ssh",
            ...(conn ? { connection: conn.id, remote: conn.remote } : {}),
            ...(conn?.principal ? { user: conn.principal.userId } : {}),
            ...annotations
          })
        )
      )
    const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error))

    // ---- channels ---------------------------------------------------------------------------

    const track = (conn: ConnectionState, channel: ServerChannel): ChannelState => {
      const state: ChannelState = { channel, closed: false }
      channel.on("error", (error: unknown) =>
        log("Warning", conn, "channel error", { error: errorText(error) })
      )
      channel.stderr.on("error", (error: unknown) =>
        log("Warning", conn, "channel error", { error: errorText(error) })
      )
      channel.once("close", () => {
        state.closed = true
      })
      return state
    }

    // Waits until what was written to the channel has gone out (or the channel is gone): an
    // empty write's callback runs once every write queued before it has been handed to ssh2.
    const drained = (state: ChannelState) =>
      Effect.async<void>((resume) => {
        const { channel } = state
        let pending = 2
        let settled = false
        const settle = () => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          channel.off("close", settle)
          resume(Effect.void)
        }
        const timer = setTimeout(settle, FLUSH_TIMEOUT_MS)
        channel.once("close", settle)
        if (state.closed) return settle()
        const done = () => {
          if (--pending === 0) settle()
        }
        try {
          channel.write(Buffer.alloc(0), done)
          channel.stderr.write(Buffer.alloc(0), done)
        } catch {
          settle()
        }
        return Effect.sync(settle)
      })

    const write = (state: ChannelState, target: "stdout" | "stderr", data: Buffer) =>
      Effect.suspend(() => {
        if (state.closed || data.length === 0) return Effect.void
        try {
          const stream = target === "stdout" ? state.channel : state.channel.stderr
          return stream.write(data) ? Effect.void : drained(state)
        } catch {
          return Effect.void
        }
      })

    // Sends the exit status after everything written so far, then closes the channel.
    const finish = (state: ChannelState, code: number, message?: string) =>
      Effect.gen(function* () {
        if (message !== undefined) yield* write(state, "stderr", Buffer.from(`${message}\n`))
        yield* drained(state)
        if (state.closed) return
        try {
          state.channel.exit(code)
          state.channel.end()
        } catch {
          // the client went away meanwhile
        }
      })

    const refuse = (
      conn: ConnectionState,
      state: ChannelState,
      message: string,
      detail: Record<string, unknown>
    ) =>
      Effect.suspend(() => {
        stats.refused++
        log("Warning", conn, `refused: ${message}`, detail)
        return finish(state, 1, message)
      })

    // ---- limits -------------------------------------------------------------------------------

    const sessionSlot = (account: UserId) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const used = sessionsByAccount.get(account) ?? 0
          if (used >= settings.maxSessionsPerAccount) return false
          sessionsByAccount.set(account, used + 1)
          return true
        }),
        (acquired) =>
          Effect.sync(() => {
            if (!acquired) return
            const used = (sessionsByAccount.get(account) ?? 1) - 1
            if (used <= 0) sessionsByAccount.delete(account)
            else sessionsByAccount.set(account, used)
          })
      )

    const holding = <A, E>(conn: ConnectionState, effect: Effect.Effect<A, E>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          if (conn.tcp) conn.tcp.holds++
        }),
        () => effect,
        () =>
          Effect.sync(() => {
            if (conn.tcp) conn.tcp.holds--
          })
      )

    // Pushes to one repository take turns, so that each sees only its own ref changes. Waiting
    // for a turn is not idleness: the connection is held meanwhile.
    const withPushLock = <A, E>(conn: ConnectionState, project: ProjectId, effect: Effect.Effect<A, E>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          const entry = pushLocks.get(project) ?? { lock: Effect.unsafeMakeSemaphore(1), users: 0 }
          entry.users++
          pushLocks.set(project, entry)
          return entry
        }),
        (entry) =>
          Effect.acquireUseRelease(
            holding(conn, entry.lock.take(1)),
            () => effect,
            () => entry.lock.release(1)
          ),
        (entry) =>
          Effect.sync(() => {
            if (--entry.users === 0) pushLocks.delete(project)
          })
      )

    // ---- running git --------------------------------------------------------------------------

    interface GitRun {
      readonly code: number
      readonly tooBig: boolean
    }

    const runGit = (
      conn: ConnectionState,
      state: ChannelState,
      command: GitCommand,
      dir: string,
      protocol: string | undefined,
      output: ReceivePackOutput | undefined
    ) =>
      Effect.async<GitRun>((resume) => {
        const { channel } = state
        const receive = command.service === "git-receive-pack"
        const args = receive ? ["receive-pack", dir] : ["upload-pack", "--strict", dir]
        const child = execa(git, args, {
          shell: false,
          extendEnv: false,
          env: gitEnv(protocol === undefined ? {} : { GIT_PROTOCOL: protocol }),
          stdin: "pipe",
          stdout: "pipe",
          stderr: "pipe",
          buffer: false,
          reject: false,
          cleanup: true,
          forceKillAfterDelay: 5_000
        })
        stats.started++
        stats.running++
        let received = 0
        let tooBig = false
        let finished = false
        let stopTimer: ReturnType<typeof setTimeout> | undefined

        // Stopping git by ending its input rather than by a signal: receive-pack then sees a
        // truncated pack, refuses it, removes its quarantine directory and exits on its own (a
        // signal can leave index-pack's temporary files behind). A git that does not exit soon
        // after is killed.
        const stop = () => {
          if (finished || stopTimer !== undefined) return
          child.stdin.end()
          stopTimer = setTimeout(() => child.kill("SIGTERM"), STOP_GRACE_MS)
        }

        const fromClient = (chunk: Buffer) => {
          if (tooBig) return
          received += chunk.length
          if (receive && received > settings.maxPushBytes) {
            tooBig = true
            log("Warning", conn, "push over the size limit: stopping git", {
              project: command.project,
              received
            })
            // What was received within the limit is all git gets; the rest is read and dropped.
            const within = chunk.length - (received - settings.maxPushBytes)
            if (within > 0) child.stdin.write(chunk.subarray(0, within))
            channel.resume()
            stop()
            return
          }
          if (!child.stdin.write(chunk)) channel.pause()
        }
        const fromClientEnd = () => child.stdin.end()
        const resumeClient = () => channel.resume()
        const toClient = (chunk: Buffer) => {
          // Once the channel is gone, output is dropped so that git never blocks on a full pipe.
          if (state.closed) return
          const data = output ? output.push(chunk) : chunk
          if (data.length > 0 && !channel.write(data)) child.stdout.pause()
        }
        const resumeGit = () => child.stdout.resume()
        const toClientStderr = (chunk: Buffer) => {
          if (!state.closed) channel.stderr.write(chunk)
        }
        const onClose = () => {
          // The client is gone (or dropped mid-push): git must not linger, and must not update refs
          // from a half-received pack (it does not: refs are only updated once the pack is whole).
          stop()
          child.stdout.resume()
        }

        channel.on("data", fromClient)
        channel.on("end", fromClientEnd)
        channel.on("drain", resumeGit)
        channel.on("close", onClose)
        child.stdin.on("drain", resumeClient)
        child.stdin.on("error", (error) =>
          log("Debug", conn, "git stdin closed", { error: errorText(error) })
        )
        child.stdout.on("data", toClient)
        child.stderr.on("data", toClientStderr)
        if (state.closed) onClose()

        const cleanup = () => {
          clearTimeout(stopTimer)
          channel.off("data", fromClient)
          channel.off("end", fromClientEnd)
          channel.off("drain", resumeGit)
          channel.off("close", onClose)
        }
        child.then(
          (result) => {
            finished = true
            stats.running--
            cleanup()
            if (result.exitCode === undefined)
              log("Error", conn, "git could not run", { args, error: result.shortMessage })
            resume(Effect.succeed({ code: result.exitCode ?? (result.failed ? 128 : 1), tooBig }))
          },
          (error: unknown) => {
            finished = true
            stats.running--
            cleanup()
            log("Error", conn, "git failed", { args, error: errorText(error) })
            resume(Effect.succeed({ code: 128, tooBig }))
          }
        )
        // Interrupted (the server is stopping): no grace.
        return Effect.sync(() => {
          if (!finished) child.kill("SIGTERM")
        })
      })

    // ---- one exec request ---------------------------------------------------------------------

    const serve = (
      conn: ConnectionState,
      state: ChannelState,
      command: GitCommand,
      protocol: string | undefined
    ) =>
      Effect.gen(function* () {
        const principal = conn.principal
        const detail = { service: command.service, project: command.project }
        if (principal === undefined) return yield* refuse(conn, state, messages.internal, detail)
        const authorised = yield* Effect.either(
          platform.authorizeRepository(principal, command.project, command.access)
        )
        if (Either.isLeft(authorised) || !(yield* repos.exists(command.project)))
          return yield* refuse(conn, state, messages.notFound(command.project), detail)
        const dir = yield* repos.path(command.project)
        if (!(yield* sessionSlot(principal.userId)))
          return yield* refuse(conn, state, messages.busy(settings.maxSessionsPerAccount), detail)
        const started = Date.now()

        if (command.service === "git-upload-pack") {
          const result = yield* runGit(conn, state, command, dir, protocol, undefined)
          log("Info", conn, "fetch served", { ...detail, code: result.code, ms: Date.now() - started })
          return yield* finish(state, result.code)
        }

        const output = new ReceivePackOutput()
        // While receive-pack runs, the idle timeout applies as usual: git sends keepalives of its
        // own while it checks a large pack (receive.keepAlive), so only a stalled client is idle.
        const pushed = yield* withPushLock(
          conn,
          command.project,
          Effect.gen(function* () {
            const before = yield* repos.refs(command.project)
            const result = yield* runGit(conn, state, command, dir, protocol, output)
            if (result.code !== 0) return { result, updates: [] }
            return { result, updates: refUpdates(before, yield* repos.refs(command.project)) }
          })
        )
        const { result, updates } = pushed
        log("Info", conn, "push received", {
          ...detail,
          code: result.code,
          ms: Date.now() - started,
          updates: updates.map((u) => `${u.ref} ${u.before ?? "-"}..${u.after ?? "-"}`)
        })
        if (result.tooBig) {
          stats.refused++
          return yield* finish(state, 1, messages.tooBig(settings.maxPushBytes))
        }
        if (result.code !== 0 || updates.length === 0) {
          yield* write(state, "stdout", output.finish())
          return yield* finish(state, result.code)
        }

        // The refs are updated: from here on the push has succeeded, whatever the build does.
        const say = (line: string) =>
          Effect.suspend(() => {
            const lines = terminalLines(line)
            return output.canWriteMessages
              ? write(state, "stdout", Buffer.concat(lines.map(sidebandMessage)))
              : write(state, "stderr", Buffer.from(lines.map((l) => `${l}\n`).join("")))
          })
        yield* holding(
          conn,
          platform.pushReceived(principal, command.project, updates, say).pipe(
            Effect.tap((outcome) => log("Info", conn, "push reported", { ...detail, outcome: outcome._tag })),
            Effect.catchAll((error) =>
              Effect.zipRight(
                say(`the push was received but could not be deployed: ${error.message}`),
                Effect.sync(() =>
                  log("Warning", conn, "push report failed", { ...detail, error: error.message })
                )
              )
            ),
            Effect.catchAllDefect((defect) =>
              Effect.zipRight(
                say("the push was received but deploying it failed with an internal error"),
                Effect.sync(() =>
                  log("Error", conn, "push report died", { ...detail, error: errorText(defect) })
                )
              )
            )
          )
        )
        yield* write(state, "stdout", output.finish())
        return yield* finish(state, 0)
      }).pipe(
        Effect.scoped,
        Effect.catchAllCause((cause) =>
          Effect.zipRight(
            Effect.sync(() => log("Error", conn, "git session failed", { error: String(cause) })),
            finish(state, 1, messages.internal)
          )
        )
      )

    // ---- connections --------------------------------------------------------------------------

    const onSession = (conn: ConnectionState, session: Session) => {
      let protocol: string | undefined
      let ptyRequested = false
      session.on("error", (error: unknown) =>
        log("Warning", conn, "session error", { error: errorText(error) })
      )
      session.on("env", (accept, reject, info) => {
        if (acceptEnv(info.key, info.val)) {
          protocol = info.val
          call(accept)
        } else {
          log("Debug", conn, "env refused", { name: forLog(info.key) })
          call(reject)
        }
      })
      session.on("pty", (_accept, reject) => {
        ptyRequested = true
        log("Warning", conn, "refused: pty")
        call(reject)
      })
      const refuseRequest = (request: string) => (_accept: unknown, reject: (() => void) | undefined) => {
        log("Warning", conn, `refused: ${request}`)
        call(reject)
      }
      session.on("x11", refuseRequest("x11"))
      session.on("auth-agent", refuseRequest("agent forwarding"))
      session.on("signal", refuseRequest("signal"))
      session.on("window-change", refuseRequest("window-change"))
      session.on("shell", (accept) => {
        const channel = accept()
        if (channel === undefined) return
        run(
          refuse(conn, track(conn, channel), ptyRequested ? messages.pty : messages.shell, {
            request: "shell"
          })
        )
      })
      session.on("subsystem", (accept, _reject, info) => {
        const channel = accept()
        if (channel === undefined) return
        run(
          refuse(conn, track(conn, channel), messages.subsystem, {
            request: "subsystem",
            name: forLog(info.name)
          })
        )
      })
      session.on("exec", (accept, _reject, info) => {
        const channel = accept()
        if (channel === undefined) return
        const state = track(conn, channel)
        const command = parse(info.command)
        if (Either.isLeft(command)) {
          run(refuse(conn, state, command.left, { request: "exec", command: forLog(info.command) }))
          return
        }
        if (ptyRequested) {
          run(refuse(conn, state, messages.pty, { request: "exec", command: forLog(info.command) }))
          return
        }
        run(serve(conn, state, command.right, protocol))
      })
    }

    const authenticate = (conn: ConnectionState, client: Connection, ctx: AuthContext) => {
      if (ctx.method !== "publickey") {
        // Passwords, keyboard-interactive and host-based are not offered; "none" learns the list.
        if (ctx.method !== "none") log("Warning", conn, `refused: ${ctx.method} authentication`)
        return call(() => ctx.reject(["publickey"]))
      }
      const type = blobKeyType(ctx.key.data)
      if (++conn.authAttempts > MAX_AUTH_ATTEMPTS || type === undefined) {
        log("Warning", conn, "refused: too many or malformed authentication attempts")
        call(() => ctx.reject(["publickey"]))
        return call(() => client.end())
      }
      const signed = ctx.signature !== undefined
      run(
        platform.authenticateSshKey({ type, blob: new Uint8Array(ctx.key.data) }).pipe(
          Effect.match({
            onFailure: () => {
              if (signed) log("Warning", conn, "refused: unknown key", { keyType: forLog(type) })
              call(() => ctx.reject(["publickey"]))
            },
            onSuccess: (principal) => {
              if (!signed) return call(() => ctx.accept())
              if (!signatureHolds(ctx, type)) {
                log("Warning", conn, "refused: bad signature")
                return call(() => ctx.reject(["publickey"]))
              }
              conn.principal = principal
              if (conn.tcp) conn.tcp.authenticated = true
              log("Info", conn, "authenticated", { user: principal.userId })
              call(() => ctx.accept())
            }
          }),
          Effect.catchAllCause((cause) =>
            Effect.sync(() => {
              log("Error", conn, "authentication failed", { error: String(cause) })
              call(() => ctx.reject(["publickey"]))
            })
          )
        )
      )
    }

    const onConnection = (client: Connection, info: ClientInfo) => {
      const tcp = sockets.get(`${info.ip}:${info.port}`)
      const conn: ConnectionState = {
        id: ++connectionIds,
        remote: `${info.ip}:${info.port}`,
        tcp,
        principal: undefined,
        authAttempts: 0
      }
      clients.add(client)
      client.on("error", (error: unknown) =>
        log("Warning", conn, "connection error", { error: errorText(error) })
      )
      client.once("close", () => clients.delete(client))
      client.on("authentication", (ctx) => authenticate(conn, client, ctx))
      client.on("session", (accept, reject) => {
        if (conn.principal === undefined) return call(reject)
        const session = accept()
        if (session !== undefined) onSession(conn, session)
      })
      // Port forwarding in either direction, and Unix socket forwarding: never.
      client.on("request", (_accept, reject, name) => {
        log("Warning", conn, `refused: ${name}`)
        call(reject)
      })
      client.on("tcpip", (_accept, reject, request) => {
        log("Warning", conn, "refused: direct-tcpip", { to: `${request.destIP}:${request.destPort}` })
        call(reject)
      })
      client.on("openssh.streamlocal", (_accept, reject) => {
        log("Warning", conn, "refused: streamlocal")
        call(reject)
      })
    }

    // ---- listening ----------------------------------------------------------------------------

    const ssh = new Server({ hostKeys: [hostKey.privateKey], ident: "paas-git" }, onConnection)
    ssh.on("error", (error: unknown) =>
      log("Warning", undefined, "ssh server error", { error: errorText(error) })
    )

    // Our own TCP server hands sockets to ssh2, so that we hold every socket (timeouts, shutdown).
    const tcp = createServer({ noDelay: true }, (socket) => {
      if (sockets.size >= settings.maxConnections) {
        log("Warning", undefined, "refused: too many connections", { remote: socket.remoteAddress })
        socket.destroy()
        return
      }
      const key = `${socket.remoteAddress}:${socket.remotePort}`
      const state: TcpState = { socket, holds: 0, authenticated: false }
      sockets.set(key, state)
      stats.connections++
      const authDeadline = setTimeout(() => {
        if (!state.authenticated) {
          log("Warning", undefined, "closing: not authenticated in time", { remote: key })
          socket.destroy()
        }
      }, settings.authTimeoutMs)
      socket.setTimeout(settings.idleTimeoutMs)
      socket.on("timeout", () => {
        if (state.holds > 0) {
          // Busy without traffic (a build is running): not idle.
          socket.setTimeout(settings.idleTimeoutMs)
          return
        }
        log("Warning", undefined, "closing: idle", { remote: key })
        socket.destroy()
      })
      socket.on("error", () => {
        // ssh2 reports socket errors as connection errors, which are logged there.
      })
      socket.once("close", () => {
        clearTimeout(authDeadline)
        sockets.delete(key)
        stats.connections--
      })
      ssh.injectSocket(socket)
    })
    tcp.maxConnections = settings.maxConnections + 16

    const address = yield* Effect.acquireRelease(
      Effect.async<{ readonly host: string; readonly port: number }, GitSshServerError>((resume) => {
        const onError = (cause: Error) =>
          resume(
            Effect.fail(
              new GitSshServerError({
                message: `GitSshServer could not listen on ${settings.host}:${settings.port}: ${cause.message}`,
                cause
              })
            )
          )
        tcp.once("error", onError)
        tcp.listen(settings.port, settings.host, () => {
          tcp.off("error", onError)
          tcp.on("error", (error) => log("Warning", undefined, "listener error", { error: errorText(error) }))
          const bound = tcp.address()
          resume(
            Effect.succeed({
              host: settings.host,
              port: typeof bound === "object" && bound !== null ? bound.port : settings.port
            })
          )
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          tcp.close(() => resume(Effect.void))
          for (const client of clients) call(() => client.end())
          // Clients get a moment to receive the disconnect; then their sockets are closed for them.
          const timer = setTimeout(() => {
            for (const { socket } of sockets.values()) socket.destroy()
          }, SHUTDOWN_GRACE_MS)
          timer.unref()
          if (sockets.size === 0) clearTimeout(timer)
          tcp.once("close", () => clearTimeout(timer))
        })
    )
    log("Info", undefined, "listening", {
      host: address.host,
      port: address.port,
      hostKey: hostKey.fingerprint
    })

    return GitSshServer.of({
      host: address.host,
      port: address.port,
      hostPublicKey: hostKey.publicKey,
      hostKeyFingerprint: hostKey.fingerprint,
      stats: Effect.sync((): GitSshServerStats => ({ ...stats }))
    })
  })
