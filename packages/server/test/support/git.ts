/**
 * A git user for end-to-end tests: real `git`, `ssh-keygen` and OpenSSH's `ssh` against the
 * server's git port on 127.0.0.1, with no user configuration of the machine involved.
 */
import { spawn } from "node:child_process"
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import * as Effect from "effect/Effect"

/** What a command printed and how it ended. */
export interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a program (argv, no shell) to completion, killing it after `timeoutMs`. */
export const run = (
  file: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: Record<string, string>; readonly timeoutMs?: number } = {}
) =>
  Effect.async<Ran>((resume) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString()
    })
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString()
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000)
    child.on("close", (code) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code, stdout, stderr }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })

/** A git user: a key pair, a working copy, and push over SSH to the server. */
export const gitUser = (dir: string, sshPort: number) =>
  Effect.gen(function* () {
    const keyPath = join(dir, "id_ed25519")
    const made = yield* run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", keyPath])
    if (made.code !== 0) return yield* Effect.dieMessage(`ssh-keygen: ${made.stderr}`)
    const publicKey = (yield* Effect.promise(() => readFile(`${keyPath}.pub`, "utf8"))).trim()
    const work = join(dir, "work")
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_AUTHOR_NAME: "E2E",
      GIT_AUTHOR_EMAIL: "e2e@example.com",
      GIT_COMMITTER_NAME: "E2E",
      GIT_COMMITTER_EMAIL: "e2e@example.com",
      GIT_TERMINAL_PROMPT: "0",
      LC_ALL: "C",
      GIT_SSH_COMMAND: [
        "ssh",
        "-i",
        keyPath,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "BatchMode=yes"
      ].join(" ")
    }
    const git = (args: ReadonlyArray<string>) =>
      Effect.flatMap(run("git", args, { cwd: work, env }), (r) =>
        r.code === 0
          ? Effect.succeed(r.stdout.trim())
          : Effect.dieMessage(`git ${args.join(" ")}: ${r.stderr}`)
      )
    yield* Effect.promise(() => mkdir(work, { recursive: true }))
    yield* git(["init", "--quiet", "--initial-branch=main"])
    return {
      publicKey,
      work,
      /** Writes files (paths relative to the working copy) and commits them; returns the sha. */
      commit: (files: Record<string, string>, message = "change") =>
        Effect.gen(function* () {
          for (const [path, content] of Object.entries(files)) {
            const full = join(work, path)
            yield* Effect.promise(() => mkdir(dirname(full), { recursive: true }))
            yield* Effect.promise(() => writeFile(full, content))
          }
          yield* git(["add", "--all"])
          yield* git(["commit", "--quiet", "--allow-empty", "-m", message])
          return yield* git(["rev-parse", "HEAD"])
        }),
      /** `git push` to the project; what git printed (the server's lines come as `remote:`). */
      push: (projectId: string, ref = "main") =>
        run("git", ["push", `ssh://git@127.0.0.1:${sshPort}/${projectId}`, ref], { cwd: work, env })
    }
  })

/** The `remote:` lines of a push's output, without the prefix. */
export const remoteLines = (stderr: string) =>
  stderr
    .split("\n")
    .filter((l) => l.startsWith("remote: "))
    .map((l) => l.slice("remote: ".length).trimEnd())
