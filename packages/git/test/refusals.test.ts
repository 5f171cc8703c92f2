// Everything the server refuses. Each test checks that no git process ran and that the
// repository's refs did not change.
import { existsSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { createServer, type Server, connect as tcpConnect } from "node:net"
import { join } from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { Platform } from "@paas/core/Platform"
import type { ProjectId } from "@paas/core/Project"
import * as Effect from "effect/Effect"
import { execa } from "execa"
import * as GitRepoStore from "../src/GitRepoStore.js"
import { GitSshServer } from "../src/GitSshServer.js"
import {
  account,
  collect,
  connect,
  connectWithKey,
  execChannel,
  Fixture,
  PATH,
  pause,
  pushedProject,
  refsOf,
  remoteGit,
  serverLayer,
  url
} from "./server.js"
import { commit, exec, initWorkTree, scratch, sshCommand, sshKey } from "./support.js"

/** Runs `check` and asserts that it started no git process and left the refs of `id` as they were. */
const unchanged = <A, E, R>(id: ProjectId, check: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const server = yield* GitSshServer
    const before = yield* server.stats
    const refs = yield* refsOf(id)
    const result = yield* check
    const after = yield* server.stats
    assert.strictEqual(after.started, before.started, "no git process ran")
    assert.deepStrictEqual(yield* refsOf(id), refs, "the refs are unchanged")
    return result
  })

/** `ssh git@127.0.0.1 <args…>` with `key`. */
const ssh = (
  key: string,
  args: ReadonlyArray<string>,
  options: { readonly sshOptions?: ReadonlyArray<string> } = {}
) =>
  Effect.gen(function* () {
    const server = yield* GitSshServer
    const [file, ...base] = sshCommand(key, server.port, options.sshOptions ?? [])
    return yield* exec(file ?? "ssh", [...base, "git@127.0.0.1", ...args], { env: PATH, timeout: 20_000 })
  })

const freePort = Effect.async<number>((resume) => {
  const probe = createServer()
  probe.listen(0, "127.0.0.1", () => {
    const address = probe.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    probe.close(() => resume(Effect.succeed(port)))
  })
})

/** A TCP server counting the connections it gets, closed with the scope. */
const target = Effect.acquireRelease(
  Effect.async<{ readonly server: Server; readonly port: number; readonly hits: () => number }>((resume) => {
    let hits = 0
    const server = createServer((socket) => {
      hits++
      socket.end("hello from the target\n")
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ server, port, hits: () => hits }))
    })
  }),
  ({ server }) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
)

/** Connects to `port` and returns what it reads before the connection closes (or null if refused). */
const readFrom = (port: number) =>
  Effect.async<string | null>((resume) => {
    const socket = tcpConnect(port, "127.0.0.1")
    const chunks: Array<Buffer> = []
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", () => resume(Effect.succeed(null)))
    socket.on("close", () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8"))))
    setTimeout(() => socket.destroy(), 5_000)
  })

describe("GitSshServer: refusals", () => {
  layer(serverLayer())((it) => {
    it.scoped("an unknown key is refused at authentication", () =>
      Effect.gen(function* () {
        const { id, work } = yield* pushedProject("owner1")
        const keys = yield* scratch()
        const stranger = yield* sshKey(keys, "stranger")
        yield* unchanged(
          id,
          Effect.gen(function* () {
            const push = yield* remoteGit(work, stranger.path, ["push", yield* url(id), "main"])
            assert.notStrictEqual(push.exitCode, 0)
            assert.include(push.stderr, "Permission denied (publickey)")
            const clone = yield* remoteGit(work, stranger.path, ["ls-remote", yield* url(id)])
            assert.notStrictEqual(clone.exitCode, 0)
            assert.include(clone.stderr, "Permission denied (publickey)")
            const error = yield* Effect.flip(
              connect({ privateKey: yield* Effect.promise(() => readFile(stranger.path)) })
            )
            assert.include(error.message, "All configured authentication methods failed")
          })
        )
      })
    )

    it.scoped("passwords and keyboard-interactive are refused; only publickey is offered", () =>
      Effect.gen(function* () {
        const { owner, id } = yield* pushedProject("owner2")
        yield* unchanged(
          id,
          Effect.gen(function* () {
            const error = yield* Effect.flip(connect({ password: "Sup3r-secret!", tryKeyboard: true }))
            assert.include(error.message, "All configured authentication methods failed")
            const prompted = yield* ssh(owner.key, ["git-upload-pack", `'/${id}'`], {
              sshOptions: [
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive"
              ]
            })
            assert.strictEqual(prompted.exitCode, 255)
            assert.include(prompted.stderr, "Permission denied (publickey)")
          })
        )
      })
    )

    it.scoped("another account's project is not found, for push and for clone", () =>
      Effect.gen(function* () {
        const { id } = yield* pushedProject("owner3")
        const { dir } = yield* Fixture
        const mallory = yield* account("mallory3")
        const work = yield* initWorkTree(join(dir, "mallory3-work"))
        yield* commit(work, { "evil.txt": "x" })
        yield* unchanged(
          id,
          Effect.gen(function* () {
            const push = yield* remoteGit(work, mallory.key, ["push", "--force", yield* url(id), "main"])
            assert.notStrictEqual(push.exitCode, 0)
            assert.include(push.stderr, `repository ${id} not found`)
            const clone = yield* remoteGit(dir, mallory.key, ["clone", yield* url(id), join(dir, "stolen")])
            assert.notStrictEqual(clone.exitCode, 0)
            assert.include(clone.stderr, `repository ${id} not found`)
            assert.isFalse(existsSync(join(dir, "stolen", "a.txt")))
          })
        )
      })
    )

    it.effect("a deleted project is not found, and its repository is not recreated", () =>
      Effect.gen(function* () {
        const { owner, id, work } = yield* pushedProject("owner4")
        const platform = yield* Platform
        const store = yield* GitRepoStore.GitRepoStore
        yield* platform.deleteProject(owner.principal, id).pipe(Effect.orDie)
        yield* unchanged(
          id,
          Effect.gen(function* () {
            const push = yield* remoteGit(work, owner.key, ["push", yield* url(id), "main"])
            assert.notStrictEqual(push.exitCode, 0)
            assert.include(push.stderr, `repository ${id} not found`)
          })
        )
        assert.isFalse(yield* store.exists(id))
        assert.isFalse(existsSync(join(store.root, id)))
      })
    )

    it.effect("a path that is not a project id is refused", () =>
      Effect.gen(function* () {
        const { owner, id, work } = yield* pushedProject("owner5")
        const server = yield* GitSshServer
        const store = yield* GitRepoStore.GitRepoStore
        const base = `ssh://git@127.0.0.1:${server.port}`
        yield* unchanged(
          id,
          Effect.forEach(
            [
              `${base}/not-a-project`,
              `${base}/${id}/x`,
              `${base}/${id}.git/`,
              `${base}/${id.slice(0, 30)}`,
              `${base}/../${id}`,
              `${base}/../../${id}`,
              `${base}/./${id}`,
              `${base}${store.root}/${id}`,
              `${base}/etc/passwd`,
              `${base}/~/${id}`,
              `git@127.0.0.1:../${id}`,
              `git@127.0.0.1:/tmp/${id}`
            ],
            (target) =>
              Effect.gen(function* () {
                const push = yield* remoteGit(work, owner.key, ["push", target, "main"], {
                  GIT_SSH_COMMAND: sshCommand(owner.key, server.port).join(" ")
                })
                assert.notStrictEqual(push.exitCode, 0, target)
                assert.include(push.stderr, "the repository must be a project id", target)
              })
          )
        )
      })
    )

    it.scoped("quotes, `;` and `$()` in the command never reach a shell", () =>
      Effect.gen(function* () {
        const { owner, id } = yield* pushedProject("owner6")
        const marker = join(yield* scratch(), "pwned")
        yield* unchanged(
          id,
          Effect.forEach(
            [
              `git-receive-pack '/${id}'; touch ${marker}`,
              `git-upload-pack '/${id}';touch ${marker}`,
              `git-upload-pack '/${id}$(touch ${marker})'`,
              `git-upload-pack '/$(touch ${marker})'`,
              `git-upload-pack '/${id}\`touch ${marker}\`'`,
              `git-upload-pack '/${id}'\\''x'`,
              `git-upload-pack '/${id}' && touch ${marker}`,
              `git-upload-pack '/${id}' | touch ${marker}`,
              `git-upload-pack "/${id}"`,
              `git-upload-pack '--upload-pack=touch ${marker}'`
            ],
            (command) =>
              Effect.gen(function* () {
                const result = yield* ssh(owner.key, [command])
                assert.strictEqual(result.exitCode, 1, command)
                assert.include(result.stderr, "the repository must be a project id", command)
                assert.strictEqual(result.stdout, "", command)
              })
          )
        )
        assert.isFalse(existsSync(marker))
        // Through git itself: a quote in the URL is quoted by git and still refused.
        const server = yield* GitSshServer
        const push = yield* remoteGit(yield* scratch(), owner.key, [
          "ls-remote",
          `ssh://git@127.0.0.1:${server.port}/${id}';touch ${marker};'`
        ])
        assert.notStrictEqual(push.exitCode, 0)
        assert.isFalse(existsSync(marker))
      })
    )

    it.effect("other commands are refused with one line: `ls`, `sh -c`, git-upload-archive", () =>
      Effect.gen(function* () {
        const { owner, id } = yield* pushedProject("owner7")
        yield* unchanged(
          id,
          Effect.forEach(
            [
              ["ls"],
              ["ls", "-la", "/"],
              ["sh", "-c", "id"],
              ["git-upload-archive", `'/${id}'`],
              ["cat", "/etc/passwd"]
            ],
            (command) =>
              Effect.gen(function* () {
                const result = yield* ssh(owner.key, command)
                assert.strictEqual(result.exitCode, 1, command.join(" "))
                assert.strictEqual(result.stdout, "")
                assert.strictEqual(
                  result.stderr.trim(),
                  "this server only runs git push and git fetch/clone (git-receive-pack, git-upload-pack)"
                )
              })
          )
        )
      })
    )

    it.effect("an interactive shell is refused", () =>
      Effect.gen(function* () {
        const { owner, id } = yield* pushedProject("owner8")
        yield* unchanged(
          id,
          Effect.gen(function* () {
            const result = yield* ssh(owner.key, [])
            assert.strictEqual(result.exitCode, 1)
            assert.include(result.stderr, "interactive shells are not available")
          })
        )
      })
    )

    it.scoped("a pty is refused (`ssh -tt`), and nothing runs in a session that asked for one", () =>
      Effect.gen(function* () {
        const { owner, id } = yield* pushedProject("owner9")
        yield* unchanged(
          id,
          Effect.gen(function* () {
            // OpenSSH gives up on a session whose forced pty was refused, with its own one line.
            const shell = yield* ssh(owner.key, [], { sshOptions: ["-tt"] })
            assert.strictEqual(shell.exitCode, 255)
            assert.include(shell.stderr, "PTY allocation request failed")
            const exec = yield* ssh(owner.key, ["git-upload-pack", `'/${id}'`], { sshOptions: ["-tt"] })
            assert.strictEqual(exec.exitCode, 255)
            assert.include(exec.stderr, "PTY allocation request failed")
            assert.strictEqual(exec.stdout, "")
            // A client that carries on without its pty gets a refusal instead of a shell or git.
            const client = yield* connectWithKey(owner.key)
            const refused = yield* Effect.flip(execChannel(client, `git-upload-pack '/${id}'`, { pty: true }))
            assert.include(refused.message, "pseudo-terminal")
            const lenient = yield* Effect.async<string>((resume) => {
              client.shell(false, (error, channel) => {
                if (error) resume(Effect.succeed(error.message))
                else Effect.runFork(Effect.map(collect(channel), (o) => resume(Effect.succeed(o.stderr))))
              })
            })
            assert.include(lenient, "interactive shells are not available")
          })
        )
      })
    )

    it.scoped("local port forwarding (`ssh -N -L`) is refused: the forward never connects", () =>
      Effect.gen(function* () {
        const { owner, id } = yield* pushedProject("owner10")
        const server = yield* GitSshServer
        const destination = yield* target
        const local = yield* freePort
        yield* unchanged(
          id,
          Effect.gen(function* () {
            const [file, ...base] = sshCommand(owner.key, server.port, [
              "-N",
              "-L",
              `127.0.0.1:${local}:127.0.0.1:${destination.port}`
            ])
            const child = yield* Effect.acquireRelease(
              Effect.sync(() =>
                execa(file ?? "ssh", [...base, "git@127.0.0.1"], { env: PATH, reject: false })
              ),
              (child) =>
                Effect.promise(async () => {
                  child.kill("SIGTERM")
                  await child
                })
            )
            // Wait for the client's local listener.
            let got: string | null = null
            for (let attempt = 0; attempt < 100 && got === null; attempt++) {
              got = yield* readFrom(local)
              if (got === null) yield* pause(50)
            }
            assert.strictEqual(got, "", "the forwarded connection is closed without data")
            assert.strictEqual(destination.hits(), 0, "nothing reached the destination")
            assert.strictEqual(child.exitCode, null, "ssh itself stays up; only the forward failed")
          })
        )
      })
    )

    it.scoped("remote port forwarding (`ssh -R`) is refused", () =>
      Effect.gen(function* () {
        const { owner, id } = yield* pushedProject("owner11")
        const destination = yield* target
        const remotePort = yield* freePort
        yield* unchanged(
          id,
          Effect.gen(function* () {
            const result = yield* ssh(owner.key, [], {
              sshOptions: [
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-R",
                `127.0.0.1:${remotePort}:127.0.0.1:${destination.port}`
              ]
            })
            assert.strictEqual(result.exitCode, 255)
            assert.include(result.stderr, "remote port forwarding failed")
            assert.isNull(yield* readFrom(remotePort), "nothing listens on the remote port")
          })
        )
      })
    )

    it.scoped("forwarding, X11, agent forwarding and subsystems are refused over the protocol", () =>
      Effect.gen(function* () {
        const { owner, id } = yield* pushedProject("owner12")
        const destination = yield* target
        yield* unchanged(
          id,
          Effect.gen(function* () {
            const client = yield* connectWithKey(owner.key)
            const out = yield* Effect.flip(
              Effect.async<unknown, Error>((resume) => {
                client.forwardOut("127.0.0.1", 1234, "127.0.0.1", destination.port, (error, channel) =>
                  resume(error ? Effect.fail(error) : Effect.succeed(channel))
                )
              })
            )
            assert.match(out.message, /prohibited|failure/i)
            const inward = yield* Effect.flip(
              Effect.async<unknown, Error>((resume) => {
                client.forwardIn("127.0.0.1", 0, (error, port) =>
                  resume(error ? Effect.fail(error) : Effect.succeed(port))
                )
              })
            )
            assert.include(inward.message, "Unable to bind")
            const x11 = yield* Effect.flip(execChannel(client, `git-upload-pack '/${id}'`, { x11: true }))
            assert.include(x11.message, "X11")
            const sftp = yield* Effect.async<string>((resume) => {
              client.sftp((error) => resume(Effect.succeed(error ? error.message : "opened")))
            })
            assert.notStrictEqual(sftp, "opened")
            const subsystem = yield* Effect.async<string>((resume) => {
              client.subsys("rsync", (error, channel) => {
                if (error) resume(Effect.succeed(error.message))
                else Effect.runFork(Effect.map(collect(channel), (o) => resume(Effect.succeed(o.stderr))))
              })
            })
            assert.include(subsystem, "subsystems (sftp, …) are not available")
            assert.strictEqual(destination.hits(), 0)
          })
        )
        // Agent forwarding: ssh2 only asks for it when it has an agent to offer.
        const agentClient = yield* connect({
          privateKey: yield* Effect.promise(() => readFile(owner.key)),
          agent: join(yield* scratch(), "agent.sock"),
          agentForward: true
        })
        const agent = yield* Effect.flip(execChannel(agentClient, `git-upload-pack '/${id}'`))
        assert.include(agent.message, "agent forwarding")
      })
    )

    it.effect("environment other than GIT_PROTOCOL is ignored", () =>
      Effect.gen(function* () {
        const { owner, id, work } = yield* pushedProject("owner13")
        const server = yield* GitSshServer
        const before = yield* refsOf(id)
        const listed = yield* remoteGit(work, owner.key, ["ls-remote", yield* url(id)], {
          GIT_SSH_COMMAND: [
            ...sshCommand(owner.key, server.port, [
              "-o",
              "SetEnv=GIT_DIR=/nonexistent",
              "-o",
              "SetEnv=LD_PRELOAD=/nonexistent.so"
            ])
          ].join(" ")
        })
        assert.strictEqual(listed.exitCode, 0, listed.stderr)
        assert.include(listed.stdout, `${before?.["refs/heads/main"]}\trefs/heads/main`)
      })
    )
  })
})
