// Running the `git` CLI: always an argument array, never a shell, and a clean environment so
// that neither the host's git configuration nor the server's own environment leaks into git.

import { RepositoryError } from "@paas/core/Errors"
import * as Effect from "effect/Effect"
import { execa } from "execa"

/** The environment every git process gets, plus `extra`. */
export const gitEnv = (extra: Readonly<Record<string, string>> = {}): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
  // Only the repository's own config counts: no /etc/gitconfig, no ~/.gitconfig.
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_TERMINAL_PROMPT: "0",
  LC_ALL: "C",
  ...extra
})

/** What a finished git command printed and how it exited. */
export interface GitOutput {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

const describe = (args: ReadonlyArray<string>) => `git ${args.join(" ")}`

/** Runs git to completion; any exit code is a success here, the caller decides. */
export const run = (git: string, args: ReadonlyArray<string>): Effect.Effect<GitOutput, RepositoryError> =>
  Effect.tryPromise({
    try: (signal) =>
      execa(git, args, {
        shell: false,
        extendEnv: false,
        env: gitEnv(),
        stdin: "ignore",
        reject: false,
        stripFinalNewline: false,
        cancelSignal: signal,
        maxBuffer: 64 * 1024 * 1024
      }),
    catch: (cause) => new RepositoryError({ message: `${describe(args)} could not run`, cause })
  }).pipe(
    Effect.flatMap((result) =>
      result.exitCode === undefined
        ? Effect.fail(
            new RepositoryError({
              message: `${describe(args)} could not run: ${result.shortMessage}`,
              cause: result.cause
            })
          )
        : Effect.succeed({ exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr })
    )
  )

/** Runs git and fails unless it exits 0. */
export const runOk = (git: string, args: ReadonlyArray<string>): Effect.Effect<string, RepositoryError> =>
  Effect.flatMap(run(git, args), (out) =>
    out.exitCode === 0
      ? Effect.succeed(out.stdout)
      : Effect.fail(
          new RepositoryError({
            message: `${describe(args)} exited with ${out.exitCode}: ${out.stderr.trim().split("\n").slice(-3).join(" / ")}`
          })
        )
  )
