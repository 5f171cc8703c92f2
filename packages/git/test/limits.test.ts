// Limits, and clients that misbehave: the server refuses or cuts them off and keeps serving.
import { randomBytes } from "node:crypto"
import { readdir } from "node:fs/promises"
import { connect as tcpConnect } from "node:net"
import { join } from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { ImageBuilder } from "@paas/core/ImageBuilder"
import type { ProjectId } from "@paas/core/Project"
import { RunSettings } from "@paas/core/Release"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { execa } from "execa"
import * as GitRepoStore from "../src/GitRepoStore.js"
import { GitSshServer } from "../src/GitSshServer.js"
import {
  collect,
  connectWithKey,
  execChannel,
  PATH,
  pause,
  pushedProject,
  refsOf,
  remoteGit,
  serverLayer,
  statsUntil,
  url
} from "./server.js"
import { commit, noise, sshCommand } from "./support.js"

const pkt = (text: string) => `${(Buffer.byteLength(text) + 4).toString(16).padStart(4, "0")}${text}`

/** Quarantine directories git leaves behind when a receive is cut off uncleanly. */
const leftovers = (id: ProjectId) =>
  Effect.gen(function* () {
    const store = yield* GitRepoStore.GitRepoStore
    const objects = join(yield* store.path(id), "objects")
    const entries = yield* Effect.promise(() => readdir(objects))
    return entries.filter((e) => e.startsWith("incoming-") || e.startsWith("tmp_"))
  })

/**
 * Runs `ssh … git-receive-pack` by hand: waits for the ref advertisement, sends `payload(oldSha)`,
 * then after `ms` kills ssh outright (like a client losing its network) or lets it finish.
 */
const rawReceivePack = (
  key: string,
  id: ProjectId,
  payload: (old: string) => Buffer,
  options: { readonly killAfterMs?: number }
) =>
  Effect.gen(function* () {
    const server = yield* GitSshServer
    const [file, ...base] = sshCommand(key, server.port)
    const child = execa(file ?? "ssh", [...base, "git@127.0.0.1", `git-receive-pack '/${id}'`], {
      env: PATH,
      reject: false,
      stdin: "pipe",
      buffer: { stdout: false, stderr: true },
      encoding: "buffer"
    })
    const advertisement = yield* Effect.async<string>((resume) => {
      let seen = ""
      child.stdout.on("data", (chunk: Buffer) => {
        seen += chunk.toString("latin1")
        if (seen.endsWith("0000")) resume(Effect.succeed(seen))
      })
    })
    const old = advertisement.slice(4, 44)
    child.stdin.write(payload(old))
    if (options.killAfterMs !== undefined) {
      yield* pause(options.killAfterMs)
      child.kill("SIGKILL")
    } else child.stdin.end()
    const result = yield* Effect.promise(() => child)
    return { exitCode: result.exitCode, stderr: Buffer.from(result.stderr as Uint8Array).toString("utf8") }
  })

describe("GitSshServer: misbehaving clients", () => {
  layer(serverLayer())((it) => {
    it.effect("a client that drops mid-push changes nothing, and the next push is served", () =>
      Effect.gen(function* () {
        const { owner, id, work } = yield* pushedProject("drop1")
        const before = yield* refsOf(id)
        const fake = "1".repeat(40)
        yield* rawReceivePack(
          owner.key,
          id,
          (old) =>
            Buffer.concat([
              Buffer.from(pkt(`${old} ${fake} refs/heads/main\0 report-status side-band-64k\n`)),
              Buffer.from("0000"),
              // A pack header promising many objects, then a fraction of them.
              Buffer.from("PACK\0\0\0\x02\0\0\x03\xe8", "latin1"),
              randomBytes(200_000)
            ]),
          { killAfterMs: 300 }
        )
        yield* statsUntil((s) => s.running === 0 && s.connections === 0)
        assert.deepStrictEqual(yield* refsOf(id), before)
        assert.deepStrictEqual(yield* leftovers(id), [])
        // And with a real git client that dies halfway through a large push.
        yield* commit(work, { "big.bin": noise(20_000_000) })
        const [file, ...base] = sshCommand(owner.key, undefined)
        const push = execa("git", ["push", yield* url(id), "main"], {
          cwd: work,
          env: {
            ...PATH,
            HOME: work,
            GIT_CONFIG_NOSYSTEM: "1",
            GIT_CONFIG_GLOBAL: "/dev/null",
            GIT_SSH_COMMAND: [file, ...base].join(" ")
          },
          reject: false,
          detached: true
        })
        yield* statsUntil((s) => s.running === 1)
        yield* pause(100)
        // The whole client process group: git and its ssh.
        if (push.pid !== undefined) process.kill(-push.pid, "SIGKILL")
        yield* Effect.promise(() => push)
        yield* statsUntil((s) => s.running === 0 && s.connections === 0)
        assert.deepStrictEqual(yield* refsOf(id), before)
        const next = yield* remoteGit(work, owner.key, ["push", yield* url(id), "main"])
        assert.strictEqual(next.exitCode, 0, next.stderr)
        assert.include(next.stderr, "remote: Deployed release v2")
      })
    )

    it.effect("garbage sent to receive-pack fails that push only", () =>
      Effect.gen(function* () {
        const { owner, id, work } = yield* pushedProject("junk1")
        const before = yield* refsOf(id)
        const result = yield* rawReceivePack(owner.key, id, () => randomBytes(100_000), {})
        assert.notStrictEqual(result.exitCode, 0)
        yield* statsUntil((s) => s.running === 0)
        assert.deepStrictEqual(yield* refsOf(id), before)
        const next = yield* remoteGit(work, owner.key, ["push", yield* url(id), "main"])
        assert.strictEqual(next.exitCode, 0, next.stderr)
      })
    )

    it.effect(
      "garbage instead of SSH, or after the SSH greeting, is dropped and the server keeps serving",
      () =>
        Effect.gen(function* () {
          const { owner, id, work } = yield* pushedProject("junk2")
          const server = yield* GitSshServer
          for (const garbage of [
            randomBytes(64 * 1024),
            Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Buffer.concat([Buffer.from("SSH-2.0-OpenSSH_9.0\r\n"), randomBytes(64 * 1024)])
          ]) {
            const closed = yield* Effect.async<boolean>((resume) => {
              const socket = tcpConnect(server.port, "127.0.0.1", () => socket.write(garbage))
              socket.on("error", () => undefined)
              socket.on("data", () => undefined)
              const timer = setTimeout(() => {
                socket.destroy()
                resume(Effect.succeed(false))
              }, 10_000)
              socket.on("close", () => {
                clearTimeout(timer)
                resume(Effect.succeed(true))
              })
            })
            assert.isTrue(closed, "the server hung up")
          }
          const listed = yield* remoteGit(work, owner.key, ["ls-remote", yield* url(id)])
          assert.strictEqual(listed.exitCode, 0, listed.stderr)
        })
    )
  })
})

describe("GitSshServer: limits", () => {
  layer(serverLayer({ maxPushBytes: 256 * 1024 }))((it) => {
    it.effect("a push larger than the limit is cut off with a message and changes nothing", () =>
      Effect.gen(function* () {
        const { owner, id, work } = yield* pushedProject("big1")
        const before = yield* refsOf(id)
        const small = yield* commit(work, { "b.txt": "small" })
        yield* commit(work, { "big.bin": noise(1024 * 1024) })
        const push = yield* remoteGit(work, owner.key, ["push", yield* url(id), "main"])
        assert.notStrictEqual(push.exitCode, 0)
        assert.include(push.stderr, "push refused: it is larger than the limit of 256 KiB")
        yield* statsUntil((s) => s.running === 0)
        assert.deepStrictEqual(yield* refsOf(id), before)
        assert.deepStrictEqual(yield* leftovers(id), [])
        const fits = yield* remoteGit(work, owner.key, ["push", yield* url(id), `${small}:refs/heads/main`])
        assert.strictEqual(fits.exitCode, 0, fits.stderr)
      })
    )
  })

  layer(serverLayer({ maxSessionsPerAccount: 1 }))((it) => {
    it.scoped("an account runs at most maxSessionsPerAccount git commands at once", () =>
      Effect.gen(function* () {
        const { owner, id, work } = yield* pushedProject("busy1")
        const other = yield* pushedProject("busy2")
        const client = yield* connectWithKey(owner.key)
        const held = yield* execChannel(client, `git-upload-pack '/${id}'`)
        yield* statsUntil((s) => s.running === 1)
        const before = yield* (yield* GitSshServer).stats
        const refused = yield* remoteGit(work, owner.key, ["ls-remote", yield* url(id)])
        assert.notStrictEqual(refused.exitCode, 0)
        assert.include(refused.stderr, "too many git operations running for this account (at most 1 at once)")
        assert.strictEqual((yield* (yield* GitSshServer).stats).started, before.started)
        // Another account is not affected.
        const elsewhere = yield* remoteGit(other.work, other.owner.key, ["ls-remote", yield* url(other.id)])
        assert.strictEqual(elsewhere.exitCode, 0, elsewhere.stderr)
        held.end()
        yield* collect(held)
        yield* statsUntil((s) => s.running === 0)
        const again = yield* remoteGit(work, owner.key, ["ls-remote", yield* url(id)])
        assert.strictEqual(again.exitCode, 0, again.stderr)
      })
    )
  })

  layer(serverLayer({ maxConnections: 2, authTimeout: "500 millis" }))((it) => {
    it.effect("connections beyond maxConnections, and ones that never authenticate, are closed", () =>
      Effect.gen(function* () {
        const server = yield* GitSshServer
        const open = () =>
          Effect.async<{ readonly closedAfterMs: number; readonly greeting: string }>((resume) => {
            const started = Date.now()
            let greeting = ""
            const socket = tcpConnect(server.port, "127.0.0.1")
            socket.on("data", (chunk: Buffer) => {
              greeting += chunk.toString("latin1")
            })
            socket.on("error", () => undefined)
            socket.on("close", () =>
              resume(Effect.succeed({ closedAfterMs: Date.now() - started, greeting }))
            )
          })
        const [first, second, third] = yield* Effect.all(
          [open(), open(), Effect.zipRight(pause(100), open())],
          {
            concurrency: "unbounded"
          }
        )
        assert.strictEqual(third?.greeting, "", "the third connection is dropped before the SSH greeting")
        assert.isBelow(third?.closedAfterMs ?? 0, 400)
        for (const silent of [first, second]) {
          assert.match(silent?.greeting ?? "", /^SSH-2\.0-paas-git/)
          assert.isAtLeast(silent?.closedAfterMs ?? 0, 450)
          assert.isBelow(silent?.closedAfterMs ?? 0, 5_000)
        }
        yield* statsUntil((s) => s.connections === 0)
      })
    )
  })

  // A builder that thinks for 2 seconds without a word: longer than the idle timeout.
  const slowBuilder = Layer.succeed(
    ImageBuilder,
    ImageBuilder.of({
      build: (request) =>
        Effect.gen(function* () {
          yield* Stream.runCollect(request.source).pipe(Effect.map(Chunk.size), Effect.orDie)
          yield* pause(2_000)
          return {
            image: `slow/${request.projectId}:${request.commit.slice(0, 12)}`,
            run: RunSettings.defaults
          }
        }),
      prune: () => Effect.void
    })
  )

  layer(serverLayer({ idleTimeout: "1 second" }, { builder: slowBuilder }))((it) => {
    it.scoped("an idle connection is closed, but a push waiting for its build is not idle", () =>
      Effect.gen(function* () {
        const { owner, id, work } = yield* pushedProject("idle1")
        const client = yield* connectWithKey(owner.key)
        const channel = yield* execChannel(client, `git-upload-pack '/${id}'`)
        const started = Date.now()
        yield* collect(channel)
        const elapsed = Date.now() - started
        assert.isAtLeast(elapsed, 900)
        assert.isBelow(elapsed, 5_000)
        yield* statsUntil((s) => s.running === 0)
        const push = yield* remoteGit(work, owner.key, ["push", yield* url(id), "main"])
        assert.strictEqual(push.exitCode, 0, push.stderr)
        assert.include(push.stderr, "remote: Deployed release v2")
      })
    )
  })
})
