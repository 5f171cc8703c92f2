// RepoStore over bare repositories on disk, one directory per project named by its UUID.
import { lstat, mkdir, readdir, rm, stat } from "node:fs/promises"
import { join, resolve } from "node:path"
import { CommitSha } from "@paas/core/Build"
import { RepositoryError } from "@paas/core/Errors"
import type { ProjectId } from "@paas/core/Project"
import type { Commit } from "@paas/core/RepoStore"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { execa } from "execa"
import type { GitRepoStore, GitRepoStoreOptions, RefSnapshot } from "../GitRepoStore.js"
import { gitEnv, run, runOk } from "./git.js"

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const SHA = /^[0-9a-f]{40}$/
const decodeSha = Schema.decodeUnknownOption(CommitSha)

const fail = (message: string, cause?: unknown) =>
  new RepositoryError(cause === undefined ? { message } : { message, cause })

const fs = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => fail(`${what} failed`, cause) })

// Refs as git's check-ref-format allows them, minus anything rev-parse would read as syntax
// (`@{`, `~`, `^`, `:`) or as an option: names reach git as arguments, never as revisions to
// interpret.
const isSafeRefName = (ref: string) =>
  ref.length > 0 &&
  ref.length <= 255 &&
  !ref.startsWith("-") &&
  !ref.startsWith("/") &&
  !ref.endsWith("/") &&
  !ref.endsWith(".") &&
  !ref.endsWith(".lock") &&
  !ref.includes("..") &&
  !ref.includes("//") &&
  !ref.includes("@{") &&
  !ref.includes("/.") &&
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  !/[\x00-\x20\x7f~^:?*[\\]/.test(ref)

/** Builds the store; the root directory is created if missing. */
export const make = (options: GitRepoStoreOptions): Effect.Effect<GitRepoStore["Type"], RepositoryError> =>
  Effect.gen(function* () {
    const root = resolve(options.root)
    const git = options.git ?? "git"
    yield* fs(`creating ${root}`, () => mkdir(root, { recursive: true, mode: 0o700 }))

    // The only way from a project id to a path: a lowercase UUID, so nothing can escape `root`.
    const path = (project: ProjectId): Effect.Effect<string, RepositoryError> =>
      UUID.test(project)
        ? Effect.succeed(join(root, project))
        : Effect.fail(fail(`not a project id: ${JSON.stringify(project)}`))

    const isRepository = (dir: string) =>
      Effect.promise(() =>
        stat(join(dir, "HEAD")).then(
          (s) => s.isFile(),
          () => false
        )
      )

    const existing = (project: ProjectId) =>
      Effect.flatMap(path(project), (dir) =>
        Effect.flatMap(isRepository(dir), (ok) =>
          ok ? Effect.succeed(dir) : Effect.fail(fail(`no repository for project ${project}`))
        )
      )

    const inRepo = (dir: string, args: ReadonlyArray<string>) => ["--git-dir", dir, ...args]

    // `<sha>^{commit}` only matches when the object exists and is (or peels to) a commit.
    const resolveIn = (
      dir: string,
      ref: string
    ): Effect.Effect<Option.Option<CommitSha>, RepositoryError> => {
      const name = SHA.test(ref) ? ref : ref.startsWith("refs/") ? ref : `refs/heads/${ref}`
      if (!SHA.test(name) && !isSafeRefName(name)) return Effect.succeedNone
      return Effect.map(
        run(git, inRepo(dir, ["rev-parse", "--verify", "--quiet", `${name}^{commit}`])),
        (out) => (out.exitCode === 0 ? decodeSha(out.stdout.trim()) : Option.none())
      )
    }

    const refs = (project: ProjectId): Effect.Effect<RefSnapshot, RepositoryError> =>
      Effect.gen(function* () {
        const dir = yield* existing(project)
        const out = yield* runOk(
          git,
          inRepo(dir, ["for-each-ref", "--format=%(objectname)%00%(*objectname)%00%(refname)"])
        )
        const snapshot = new Map<string, { readonly object: string; readonly commit: CommitSha }>()
        for (const line of out.split("\n")) {
          const [object, peeled, ref] = line.split("\0")
          if (!object || ref === undefined) continue
          const commit = decodeSha(peeled || object)
          if (Option.isSome(commit)) snapshot.set(ref, { object, commit: commit.value })
        }
        return snapshot
      })

    const diskUsage = (dir: string): Promise<number> =>
      readdir(dir, { withFileTypes: true }).then(async (entries) => {
        let total = (await lstat(dir)).blocks * 512
        for (const entry of entries) {
          const full = join(dir, entry.name)
          if (entry.isDirectory()) total += await diskUsage(full)
          else {
            const s = await lstat(full)
            total += s.blocks > 0 ? s.blocks * 512 : s.size
          }
        }
        return total
      })

    const store: GitRepoStore["Type"] = {
      root,
      git,
      path,
      refs,

      create: (project) =>
        Effect.gen(function* () {
          const dir = yield* path(project)
          if (yield* isRepository(dir)) return yield* fail(`repository ${project} already exists`)
          // No templates: no sample hooks, nothing that could run on push but what we run.
          yield* runOk(git, ["init", "--quiet", "--bare", "--initial-branch=main", "--template=", dir])
          // Check every received object, as public git hosts do: a malformed object never lands.
          yield* runOk(git, inRepo(dir, ["config", "receive.fsckObjects", "true"]))
        }),

      remove: (project) =>
        Effect.flatMap(path(project), (dir) =>
          fs(`removing ${dir}`, () => rm(dir, { recursive: true, force: true }))
        ),

      exists: (project) => Effect.flatMap(path(project), isRepository),

      resolve: (project, ref) => Effect.flatMap(existing(project), (dir) => resolveIn(dir, ref)),

      deployBranch: (project) =>
        Effect.gen(function* () {
          const dir = yield* existing(project)
          const out = yield* runOk(
            git,
            inRepo(dir, ["for-each-ref", "--format=%(refname)", "refs/heads/main", "refs/heads/master"])
          )
          const heads = new Set(out.split("\n"))
          return !heads.has("refs/heads/main") && heads.has("refs/heads/master") ? "master" : "main"
        }),

      commits: (project, ref, limit) =>
        Effect.gen(function* () {
          const dir = yield* existing(project)
          const sha = yield* resolveIn(dir, ref)
          const count = Math.floor(limit)
          if (Option.isNone(sha) || !(count > 0)) return []
          // NUL between fields, RS (0x1e) between records: neither occurs in the fields.
          const out = yield* runOk(
            git,
            inRepo(dir, [
              "log",
              `--max-count=${count}`,
              "--format=%H%x00%an <%ae>%x00%aI%x00%B%x1e",
              sha.value
            ])
          )
          const commits: Array<Commit> = []
          for (const record of out.split("\x1e")) {
            const [hash, author, date, message] = record.replace(/^\n/, "").split("\0")
            const commit = decodeSha(hash)
            if (Option.isNone(commit) || author === undefined || date === undefined) continue
            commits.push({
              sha: commit.value,
              author,
              date: new Date(date),
              message: (message ?? "").trimEnd()
            })
          }
          return commits
        }),

      archive: (project, commit) =>
        Stream.unwrapScoped(
          Effect.gen(function* () {
            const dir = yield* existing(project)
            const found = yield* resolveIn(dir, commit)
            if (Option.isNone(found) || found.value !== commit) return yield* fail(`unknown commit ${commit}`)
            const args = inRepo(dir, ["archive", "--format=tar", commit])
            const child = yield* Effect.acquireRelease(
              Effect.sync(() =>
                execa(git, args, {
                  shell: false,
                  extendEnv: false,
                  env: gitEnv(),
                  stdin: "ignore",
                  buffer: { stdout: false, stderr: true },
                  reject: false
                })
              ),
              // A consumer that stops early must not leave git running.
              (child) => Effect.sync(() => child.exitCode === null && child.kill())
            )
            const exited = Effect.flatMap(
              Effect.promise(() => child),
              (result) =>
                result.exitCode === 0
                  ? Effect.void
                  : Effect.fail(
                      fail(`git archive ${commit} failed: ${String(result.stderr).trim()}`, result.cause)
                    )
            )
            return Stream.fromAsyncIterable(child.stdout as AsyncIterable<Buffer>, (cause) =>
              fail(`reading git archive ${commit} failed`, cause)
            ).pipe(
              Stream.map((chunk): Uint8Array => chunk),
              Stream.concat(Stream.drain(Stream.fromEffect(exited)))
            )
          })
        ),

      diskUsage: (project) =>
        Effect.flatMap(existing(project), (dir) => fs(`measuring ${dir}`, () => diskUsage(dir)))
    }
    return store
  })
