// The SSH git server on the test platform, with the real GitRepoStore in a scratch directory, and
// the client-side steps the server tests share.
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { assert } from "@effect/vitest"
import { Platform } from "@paas/core/Platform"
import type { ProjectId } from "@paas/core/Project"
import { type InMemoryMailer, TestPlatform } from "@paas/core/testing"
import type { Principal } from "@paas/core/User"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import ssh2 from "ssh2"
import * as GitRepoStore from "../src/GitRepoStore.js"
import * as GitSshServer from "../src/GitSshServer.js"
import { clientEnv, commit, exec, gitSshEnv, initWorkTree, scratch, signUp, sshKey } from "./support.js"

/** The scratch directory of a server under test. */
export class Fixture extends Context.Tag("test/Fixture")<Fixture, { readonly dir: string }>() {}

/** Platform, repositories and server, all released with the layer. */
export const serverLayer = (
  options: Partial<GitSshServer.GitSshServerOptions> = {},
  drivers: Omit<TestPlatform.Options, "repoStore"> = {}
) =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const dir = yield* scratch("paas-git-server-")
      const store = Layer.orDie(GitRepoStore.layer({ root: join(dir, "repos") }))
      const platform = TestPlatform.layer({ ...drivers, repoStore: store })
      const server = GitSshServer.layer({ port: 0, dataDir: join(dir, "data"), ...options }).pipe(Layer.orDie)
      return Layer.provideMerge(server, Layer.mergeAll(platform, store, Layer.succeed(Fixture, { dir })))
    })
  )

/** An account with an ssh key registered to it. */
export interface Account {
  readonly principal: Principal
  readonly key: string
  readonly publicKey: string
}

/** Signs up `name`, makes a key in the fixture dir and registers it. */
export const account = (
  name: string
): Effect.Effect<Account, never, Platform | InMemoryMailer.Outbox | Fixture> =>
  Effect.gen(function* () {
    const { dir } = yield* Fixture
    const platform = yield* Platform
    const principal = yield* signUp(name)
    const key = yield* sshKey(dir, `${name}_key`)
    yield* platform.addSshKey(principal, { value: key.publicKey, name: "laptop" })
    return { principal, key: key.path, publicKey: key.publicKey } satisfies Account
  }).pipe(Effect.orDie)

/** A project of `principal`, created through the Platform (which creates its repository). */
export const project = (principal: Principal, name = "app") =>
  Effect.gen(function* () {
    const platform = yield* Platform
    return (yield* platform.createProject(principal, { name })).id
  }).pipe(Effect.orDie)

/** `ssh://git@127.0.0.1:<port>/<id>`. */
export const url = (id: string) =>
  Effect.map(GitSshServer.GitSshServer, (server) => `ssh://git@127.0.0.1:${server.port}/${id}`)

/** Runs git in `cwd` against the server with `key`; never fails, returns exit code and output. */
export const remoteGit = (
  cwd: string,
  key: string,
  args: ReadonlyArray<string>,
  extraEnv: Record<string, string> = {}
) => exec("git", args, { cwd, env: clientEnv(cwd, { ...gitSshEnv(key), ...extraEnv }), timeout: 60_000 })

/** Every ref of a project's repository, as `ref → object`. */
export const refsOf = (id: ProjectId) =>
  Effect.gen(function* () {
    const store = yield* GitRepoStore.GitRepoStore
    if (!(yield* store.exists(id))) return null
    const refs = yield* store.refs(id)
    return Object.fromEntries([...refs].map(([ref, { object }]) => [ref, object]))
  }).pipe(Effect.orDie)

/** An ssh2 client connected to the server, closed with the scope; fails if authentication fails. */
export const connect = (config: Omit<ssh2.ConnectConfig, "host" | "port">) =>
  Effect.gen(function* () {
    const server = yield* GitSshServer.GitSshServer
    return yield* Effect.acquireRelease(
      Effect.async<ssh2.Client, Error>((resume) => {
        const client = new ssh2.Client()
        client.once("ready", () => resume(Effect.succeed(client)))
        client.once("error", (error) => resume(Effect.fail(error)))
        client.connect({
          host: "127.0.0.1",
          port: server.port,
          username: "git",
          readyTimeout: 10_000,
          ...config
        })
      }),
      (client) => Effect.sync(() => client.end())
    )
  })

/** Connects with the private key at `keyPath`. */
export const connectWithKey = (keyPath: string) =>
  Effect.flatMap(
    Effect.promise(() => readFile(keyPath)),
    (privateKey) => connect({ privateKey })
  )

/** What a finished channel said. */
export interface ChannelOutput {
  readonly code: number | null
  readonly stdout: Buffer
  readonly stderr: string
}

/** Collects a channel's output until it closes. */
export const collect = (channel: ssh2.ClientChannel) =>
  Effect.async<ChannelOutput>((resume) => {
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    let code: number | null = null
    channel.on("data", (chunk: Buffer) => stdout.push(chunk))
    channel.stderr.on("data", (chunk: Buffer) => stderr.push(chunk))
    channel.on("exit", (status: number | null) => {
      code = status
    })
    channel.on("close", () =>
      resume(
        Effect.succeed({
          code,
          stdout: Buffer.concat(stdout),
          stderr: Buffer.concat(stderr).toString("utf8")
        })
      )
    )
  })

/** Opens an exec channel for `command`. */
export const execChannel = (client: ssh2.Client, command: string, options: ssh2.ExecOptions = {}) =>
  Effect.async<ssh2.ClientChannel, Error>((resume) => {
    client.exec(command, options, (error, channel) =>
      resume(error ? Effect.fail(error) : Effect.succeed(channel))
    )
  })

/** Waits `ms` of real time. */
export const pause = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** Waits until `predicate` holds for the server's stats, polling. */
export const statsUntil = (
  predicate: (stats: GitSshServer.GitSshServerStats) => boolean,
  timeoutMs = 10_000
) =>
  Effect.gen(function* () {
    const server = yield* GitSshServer.GitSshServer
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const stats = yield* server.stats
      if (predicate(stats)) return stats
      if (Date.now() > deadline)
        return yield* Effect.dieMessage(`stats never matched: ${JSON.stringify(stats)}`)
      // Real time: tests run under TestClock, where Effect.sleep would never return.
      yield* pause(20)
    }
  })

/** The minimal environment for commands the tests run themselves. */
export const PATH = { PATH: process.env.PATH ?? "/usr/bin:/bin" }

/** An account with a project holding one pushed commit, and a working copy one commit ahead. */
export const pushedProject = (name: string) =>
  Effect.gen(function* () {
    const { dir } = yield* Fixture
    const owner = yield* account(name)
    const id = yield* project(owner.principal)
    const work = yield* initWorkTree(join(dir, `${name}-work`))
    yield* commit(work, { "a.txt": name })
    const push = yield* remoteGit(work, owner.key, ["push", yield* url(id), "main"])
    assert.strictEqual(push.exitCode, 0, push.stderr)
    yield* commit(work, { "a.txt": `${name} again` })
    return { owner, id, work }
  })
