// Shared steps for the git tests: scratch directories, a git client with its own clean config,
// working copies with commits, ssh keys, and an account on the test platform.
import { randomBytes } from "node:crypto"
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Platform } from "@paas/core/Platform"
import { InMemoryMailer } from "@paas/core/testing"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { execa, type Options } from "execa"

/** A temporary directory removed when the scope closes. */
export const scratch = (prefix = "paas-git-") =>
  Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), prefix))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )

/** The environment of the git client in tests: no user config, a fixed identity. */
export const clientEnv = (home: string, extra: Record<string, string> = {}): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: home,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "Ada Tester",
  GIT_AUTHOR_EMAIL: "ada@example.com",
  GIT_COMMITTER_NAME: "Ada Tester",
  GIT_COMMITTER_EMAIL: "ada@example.com",
  GIT_TERMINAL_PROMPT: "0",
  LC_ALL: "C",
  ...extra
})

/** Runs a command to completion without throwing. */
export const exec = (file: string, args: ReadonlyArray<string>, options: Options = {}) =>
  Effect.promise(() =>
    execa(file, args, { reject: false, extendEnv: false, stdin: "ignore", timeout: 60_000, ...options })
  ).pipe(
    Effect.map((r) => ({
      exitCode: r.exitCode ?? -1,
      stdout: String(r.stdout ?? ""),
      stderr: String(r.stderr ?? ""),
      timedOut: r.timedOut
    }))
  )

/** Runs git in `cwd` and dies unless it succeeds; returns stdout trimmed. */
export const git = (cwd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.flatMap(exec("git", args, { cwd, env: clientEnv(cwd, env) }), (r) =>
    r.exitCode === 0
      ? Effect.succeed(r.stdout.trim())
      : Effect.dieMessage(`git ${args.join(" ")}: ${r.stderr}`)
  )

/** A working copy at `dir` on branch `branch`. */
export const initWorkTree = (dir: string, branch = "main") =>
  Effect.gen(function* () {
    yield* Effect.promise(() => mkdir(dir, { recursive: true }))
    yield* git(dir, ["init", "--quiet", `--initial-branch=${branch}`])
    return dir
  })

/** Writes `files` into the working copy and commits them; returns the new commit's sha. */
export const commit = (dir: string, files: Record<string, string | Uint8Array>, message = "change") =>
  Effect.gen(function* () {
    for (const [name, content] of Object.entries(files)) {
      const path = join(dir, name)
      yield* Effect.promise(() => mkdir(dirname(path), { recursive: true }))
      yield* Effect.promise(() => writeFile(path, content))
    }
    yield* git(dir, ["add", "--all"])
    yield* git(dir, ["commit", "--quiet", "--allow-empty", "-m", message])
    return yield* git(dir, ["rev-parse", "HEAD"])
  })

/** `size` bytes of incompressible content. */
export const noise = (size: number) => randomBytes(size)

/** An ed25519 key pair made by ssh-keygen: the private key's path and the public line. */
export const sshKey = (dir: string, name = "id_ed25519") =>
  Effect.gen(function* () {
    const path = join(dir, name)
    const r = yield* exec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }
    })
    if (r.exitCode !== 0) return yield* Effect.dieMessage(`ssh-keygen: ${r.stderr}`)
    const pub = yield* Effect.promise(() => readFile(`${path}.pub`, "utf8"))
    return { path, publicKey: pub.trim() }
  })

/** The ssh command line git uses to reach the server with `key`. */
export const sshCommand = (key: string, port: number | undefined, extra: ReadonlyArray<string> = []) => [
  "ssh",
  "-F",
  "/dev/null",
  "-i",
  key,
  "-o",
  "IdentitiesOnly=yes",
  "-o",
  "StrictHostKeyChecking=no",
  "-o",
  "UserKnownHostsFile=/dev/null",
  "-o",
  "BatchMode=yes",
  "-o",
  "LogLevel=ERROR",
  ...(port === undefined ? [] : ["-p", String(port)]),
  ...extra
]

/** Environment for a git client that reaches the server through ssh with `key` (the port in the URL, or `port`). */
export const gitSshEnv = (key: string, port?: number) => ({
  GIT_SSH_COMMAND: sshCommand(key, port).join(" ")
})

export const password = "Sup3r-secret!"

/** Registers, confirms through the outbox and logs in; returns the principal. */
export const signUp = (username: string) =>
  Effect.gen(function* () {
    const platform = yield* Platform
    const outbox = yield* InMemoryMailer.Outbox
    const email = `${username}@example.com`
    yield* platform.register({ username, email, password: Redacted.make(password) })
    const mail = yield* outbox.latestTo(email)
    const token = InMemoryMailer.tokenIn(mail?.text ?? "")
    if (token === undefined) return yield* Effect.dieMessage("no confirmation token in the mail")
    yield* platform.confirmEmail(token)
    const session = yield* platform.login({ email, password: Redacted.make(password), client: "127.0.0.1" })
    return yield* platform.authenticate(session.token)
  })
