import { stat } from "node:fs/promises"
import { connect as tcpConnect } from "node:net"
import { join } from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import { Platform } from "@paas/core/Platform"
import { InMemoryImageBuilder } from "@paas/core/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { GitSshServer } from "../src/GitSshServer.js"
import {
  account,
  collect,
  connectWithKey,
  execChannel,
  Fixture,
  project,
  refsOf,
  remoteGit,
  serverLayer,
  statsUntil,
  url
} from "./server.js"
import { clientEnv, commit, exec, git, initWorkTree, scratch, sshCommand } from "./support.js"

const lines = (text: string) => text.split("\n").map((l) => l.trimEnd())

// Plain tests come before `layer(…)` blocks: @effect/vitest's `layer` re-binds the shared `it`.
describe("GitSshServer: lifecycle", () => {
  it.scoped("keeps one ed25519 host key, mode 0600, across restarts", () =>
    Effect.gen(function* () {
      const dir = yield* scratch()
      const layer = serverLayer({ dataDir: join(dir, "data") })
      const first = yield* Effect.scoped(Layer.build(layer)).pipe(Effect.map(Context.get(GitSshServer)))
      const second = yield* Effect.scoped(
        Effect.gen(function* () {
          const context = yield* Layer.build(layer)
          const server = Context.get(context, GitSshServer)
          // What an ssh client is shown is the key on disk.
          const scan = yield* exec("ssh-keyscan", ["-t", "ed25519", "-p", String(server.port), "127.0.0.1"], {
            env: { PATH: process.env.PATH ?? "" }
          })
          assert.include(scan.stdout, server.hostPublicKey)
          return server
        })
      )
      assert.match(first.hostKeyFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/)
      assert.strictEqual(second.hostKeyFingerprint, first.hostKeyFingerprint)
      assert.strictEqual(second.hostPublicKey, first.hostPublicKey)
      const mode = (yield* Effect.promise(() => stat(join(dir, "data", "ssh_host_ed25519_key")))).mode & 0o777
      assert.strictEqual(mode, 0o600)
      const listed = yield* exec("ssh-keygen", ["-l", "-f", join(dir, "data", "ssh_host_ed25519_key.pub")], {
        env: { PATH: process.env.PATH ?? "" }
      })
      assert.include(listed.stdout, first.hostKeyFingerprint)
    })
  )

  it.scoped("refuses bad options and a port in use with a typed error", () =>
    Effect.gen(function* () {
      const dir = yield* scratch()
      const held = yield* Layer.build(serverLayer())
      const busyPort = Context.get(held, GitSshServer).port
      const attempts = [
        { port: busyPort, dataDir: join(dir, "a") },
        { port: -1, dataDir: join(dir, "b") },
        { port: 0, dataDir: undefined },
        { port: 0, dataDir: join(dir, "c"), maxSessionsPerAccount: 0 }
      ]
      for (const options of attempts) {
        const exit = yield* Effect.exit(Effect.scoped(Layer.build(serverLayer(options))))
        assert.isTrue(Exit.isFailure(exit), JSON.stringify(options))
        if (Exit.isFailure(exit)) assert.include(String(exit.cause), "GitSshServer")
      }
    })
  )

  it.scoped("closing the scope closes the listener and open connections, and stops git", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(serverLayer(), scope)
      const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, context)
      const server = Context.get(context, GitSshServer)
      const joe = yield* run(account("joe"))
      const id = yield* run(project(joe.principal))
      // upload-pack advertises and then waits for the client: a session that stays open.
      const client = yield* run(connectWithKey(joe.key))
      const channel = yield* execChannel(client, `git-upload-pack '/${id}'`)
      const closed = Effect.runFork(collect(channel))
      yield* run(statsUntil((s) => s.running === 1))
      yield* Scope.close(scope, Exit.void)
      yield* closed.await
      assert.strictEqual((yield* server.stats).running, 0)
      const refused = yield* Effect.async<boolean>((resume) => {
        const socket = tcpConnect(server.port, "127.0.0.1")
        socket.once("connect", () => {
          socket.destroy()
          resume(Effect.succeed(false))
        })
        socket.once("error", () => resume(Effect.succeed(true)))
      })
      assert.isTrue(refused, "the port no longer accepts connections")
    })
  )
})

describe("GitSshServer: pushing and cloning", () => {
  layer(serverLayer())((it) => {
    it.effect(
      "a push to a project created through the Platform builds, deploys and streams remote: lines",
      () =>
        Effect.gen(function* () {
          const { dir } = yield* Fixture
          const platform = yield* Platform
          const ada = yield* account("ada")
          const id = yield* project(ada.principal)
          const work = yield* initWorkTree(join(dir, "ada-work"))
          const sha = yield* commit(work, { "index.html": "<h1>hi</h1>\n" }, "first")
          const push = yield* remoteGit(work, ada.key, ["push", yield* url(id), "main"])
          assert.strictEqual(push.exitCode, 0, push.stderr)
          const out = lines(push.stderr)
          const building = out.indexOf(`remote: Building ${sha.slice(0, 12)} of app`)
          const deployed = out.indexOf(`remote: Deployed release v1: http://${id}.user-app.localhost:8000`)
          const summary = out.findIndex((l) => l.startsWith("To ssh://"))
          assert.isAtLeast(building, 0, push.stderr)
          assert.isAbove(deployed, building, push.stderr)
          assert.isAbove(summary, deployed, "the build output comes before git's summary")
          assert.include(push.stderr, "remote: Received 1 files")

          const builds = yield* platform.builds(ada.principal, id)
          assert.strictEqual(builds.length, 1)
          assert.strictEqual(builds[0]?.commit, sha)
          assert.strictEqual(builds[0]?.ref, "refs/heads/main")
          assert.strictEqual(builds[0]?.status, "succeeded")
          assert.include(builds[0]?.log ?? "", `Built memory/${id}:${sha.slice(0, 12)}`)
          assert.deepStrictEqual(yield* refsOf(id), { "refs/heads/main": sha })
        })
    )

    it.effect("clones and fetches what was pushed, over protocol v2", () =>
      Effect.gen(function* () {
        const { dir } = yield* Fixture
        const bob = yield* account("bob")
        const id = yield* project(bob.principal)
        const work = yield* initWorkTree(join(dir, "bob-work"))
        const first = yield* commit(work, { "a.txt": "1" }, "first")
        assert.strictEqual((yield* remoteGit(work, bob.key, ["push", yield* url(id), "main"])).exitCode, 0)
        const clone = join(dir, "bob-clone")
        const cloned = yield* remoteGit(dir, bob.key, ["clone", yield* url(id), clone], {
          GIT_TRACE_PACKET: "1"
        })
        assert.strictEqual(cloned.exitCode, 0, cloned.stderr)
        assert.match(cloned.stderr, /clone< version 2/, "the client's GIT_PROTOCOL reached upload-pack")
        assert.strictEqual(yield* git(clone, ["rev-parse", "HEAD"]), first)
        assert.strictEqual(yield* git(clone, ["rev-parse", "--abbrev-ref", "HEAD"]), "main")
        const second = yield* commit(work, { "a.txt": "2" }, "second")
        assert.strictEqual((yield* remoteGit(work, bob.key, ["push", yield* url(id), "main"])).exitCode, 0)
        const pulled = yield* remoteGit(clone, bob.key, ["pull", "--ff-only", "origin", "main"])
        assert.strictEqual(pulled.exitCode, 0, pulled.stderr)
        assert.strictEqual(yield* git(clone, ["rev-parse", "HEAD"]), second)
      })
    )

    it.scoped("accepts a second key of the same account", () =>
      Effect.gen(function* () {
        const { dir } = yield* Fixture
        const platform = yield* Platform
        const cleo = yield* account("cleo")
        const id = yield* project(cleo.principal)
        const keyDir = yield* scratch()
        const second = yield* exec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(keyDir, "k")], {
          env: { PATH: process.env.PATH ?? "" }
        })
        assert.strictEqual(second.exitCode, 0)
        const publicKey = (yield* exec("cat", [join(keyDir, "k.pub")], {
          env: { PATH: process.env.PATH ?? "" }
        })).stdout
        yield* platform.addSshKey(cleo.principal, { value: publicKey, name: "desktop" }).pipe(Effect.orDie)
        const work = yield* initWorkTree(join(dir, "cleo-work"))
        yield* commit(work, { "a.txt": "from laptop" })
        assert.strictEqual((yield* remoteGit(work, cleo.key, ["push", yield* url(id), "main"])).exitCode, 0)
        const sha = yield* commit(work, { "a.txt": "from desktop" })
        const push = yield* remoteGit(work, join(keyDir, "k"), ["push", yield* url(id), "main"])
        assert.strictEqual(push.exitCode, 0, push.stderr)
        assert.include(push.stderr, "remote: Deployed release v2")
        assert.strictEqual((yield* platform.builds(cleo.principal, id))[0]?.commit, sha)
      })
    )

    it.effect("accepts the scp form, `<id>.git` and `/<id>`", () =>
      Effect.gen(function* () {
        const { dir } = yield* Fixture
        const server = yield* GitSshServer
        const dan = yield* account("dan")
        const id = yield* project(dan.principal)
        const work = yield* initWorkTree(join(dir, "dan-work"))
        const sha = yield* commit(work, { "a.txt": "a" })
        const scp = yield* exec("git", ["push", `git@127.0.0.1:${id}`, "main"], {
          cwd: work,
          env: clientEnv(work, { GIT_SSH_COMMAND: sshCommand(dan.key, server.port).join(" ") })
        })
        assert.strictEqual(scp.exitCode, 0, scp.stderr)
        for (const path of [`${id}.git`, `${id.toUpperCase()}`]) {
          const listed = yield* remoteGit(work, dan.key, [
            "ls-remote",
            `ssh://git@127.0.0.1:${server.port}/${path}`
          ])
          assert.strictEqual(listed.exitCode, 0, listed.stderr)
          assert.include(listed.stdout, `${sha}\trefs/heads/main`)
        }
      })
    )

    it.effect("a push to another branch is received but not deployed", () =>
      Effect.gen(function* () {
        const { dir } = yield* Fixture
        const platform = yield* Platform
        const eve = yield* account("eve")
        const id = yield* project(eve.principal)
        const work = yield* initWorkTree(join(dir, "eve-work"))
        const sha = yield* commit(work, { "a.txt": "a" })
        const push = yield* remoteGit(work, eve.key, ["push", yield* url(id), "HEAD:refs/heads/feature"])
        assert.strictEqual(push.exitCode, 0, push.stderr)
        assert.include(push.stderr, "remote: only pushes to main are deployed")
        assert.deepStrictEqual(yield* refsOf(id), { "refs/heads/feature": sha })
        assert.strictEqual((yield* platform.builds(eve.principal, id)).length, 0)
      })
    )

    it.effect("a failed build does not fail the push: the refs were updated", () =>
      Effect.gen(function* () {
        const { dir } = yield* Fixture
        const platform = yield* Platform
        const builds = yield* InMemoryImageBuilder.Builds
        const fay = yield* account("fay")
        const id = yield* project(fay.principal)
        const work = yield* initWorkTree(join(dir, "fay-work"))
        const sha = yield* commit(work, { "a.txt": "a" })
        yield* builds.failNext("npm ERR! missing script: start")
        const push = yield* remoteGit(work, fay.key, ["push", yield* url(id), "main"])
        assert.strictEqual(push.exitCode, 0, push.stderr)
        assert.include(push.stderr, "remote: build failed: npm ERR! missing script: start")
        assert.deepStrictEqual(yield* refsOf(id), { "refs/heads/main": sha })
        assert.strictEqual((yield* platform.builds(fay.principal, id))[0]?.status, "failed")
      })
    )

    it.effect("a push that changes nothing is not reported", () =>
      Effect.gen(function* () {
        const { dir } = yield* Fixture
        const platform = yield* Platform
        const gus = yield* account("gus")
        const id = yield* project(gus.principal)
        const work = yield* initWorkTree(join(dir, "gus-work"))
        yield* commit(work, { "a.txt": "a" })
        assert.strictEqual((yield* remoteGit(work, gus.key, ["push", yield* url(id), "main"])).exitCode, 0)
        const again = yield* remoteGit(work, gus.key, ["push", yield* url(id), "main"])
        assert.strictEqual(again.exitCode, 0, again.stderr)
        assert.include(again.stderr, "Everything up-to-date")
        assert.strictEqual((yield* platform.builds(gus.principal, id)).length, 1)
      })
    )

    it.effect("a repository that only has master deploys from master", () =>
      Effect.gen(function* () {
        const { dir } = yield* Fixture
        const platform = yield* Platform
        const hal = yield* account("hal")
        const id = yield* project(hal.principal)
        const work = yield* initWorkTree(join(dir, "hal-work"), "master")
        const sha = yield* commit(work, { "a.txt": "a" })
        const push = yield* remoteGit(work, hal.key, ["push", yield* url(id), "master"])
        assert.strictEqual(push.exitCode, 0, push.stderr)
        assert.include(push.stderr, "remote: Deployed release v1")
        assert.strictEqual((yield* platform.builds(hal.principal, id))[0]?.ref, "refs/heads/master")
        assert.strictEqual((yield* platform.builds(hal.principal, id))[0]?.commit, sha)
      })
    )

    it.effect("concurrent pushes to one project each report only their own ref changes", () =>
      Effect.gen(function* () {
        const { dir } = yield* Fixture
        const platform = yield* Platform
        const kim = yield* account("kim")
        const id = yield* project(kim.principal)
        const works = yield* Effect.forEach(["a", "b"], (n) => initWorkTree(join(dir, `kim-work-${n}`)))
        const [main, feature] = yield* Effect.forEach(works, (work, n) => commit(work, { "n.txt": `${n}` }))
        const [toMain, toFeature] = yield* Effect.all(
          [
            remoteGit(works[0] ?? "", kim.key, ["push", yield* url(id), "main"]),
            remoteGit(works[1] ?? "", kim.key, ["push", yield* url(id), "HEAD:refs/heads/feature"])
          ],
          { concurrency: "unbounded" }
        )
        assert.strictEqual(toMain?.exitCode, 0, toMain?.stderr)
        assert.strictEqual(toFeature?.exitCode, 0, toFeature?.stderr)
        assert.include(toMain?.stderr, "remote: Deployed release v1")
        assert.include(toFeature?.stderr, "remote: only pushes to main are deployed")
        assert.notInclude(toFeature?.stderr, "remote: Building")
        const builds = yield* platform.builds(kim.principal, id)
        assert.deepStrictEqual(
          builds.map((b) => b.commit),
          [main]
        )
        assert.deepStrictEqual(yield* refsOf(id), { "refs/heads/main": main, "refs/heads/feature": feature })
      })
    )

    it.effect("serves concurrent pushes to several projects", () =>
      Effect.gen(function* () {
        const { dir } = yield* Fixture
        const platform = yield* Platform
        const ivy = yield* account("ivy")
        const ids = yield* Effect.forEach([1, 2, 3], (n) => project(ivy.principal, `app-${n}`))
        const results = yield* Effect.forEach(
          ids,
          (id, n) =>
            Effect.gen(function* () {
              const work = yield* initWorkTree(join(dir, `ivy-work-${n}`))
              const sha = yield* commit(work, { "n.txt": `${n}` })
              const push = yield* remoteGit(work, ivy.key, ["push", yield* url(id), "main"])
              return { id, sha, push }
            }),
          { concurrency: "unbounded" }
        )
        for (const { id, sha, push } of results) {
          assert.strictEqual(push.exitCode, 0, push.stderr)
          assert.include(push.stderr, `remote: Deployed release v1: http://${id}.user-app`)
          assert.strictEqual((yield* platform.builds(ivy.principal, id))[0]?.commit, sha)
        }
      })
    )
  })
})
