/**
 * RepoStore in memory: repositories are maps of commits; a test "pushes" files with `Repos.push`
 * and hands the returned update to `Platform.pushReceived`, as the git server would.
 */
import { createHash } from "node:crypto"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { CommitSha } from "../Build.js"
import { RepositoryError } from "../Errors.js"
import * as Tar from "../internal/tar.js"
import type { ProjectId } from "../Project.js"
import { type Commit, type RefUpdate, RepoStore } from "../RepoStore.js"

interface StoredCommit extends Commit {
  readonly parent: CommitSha | null
  readonly files: Readonly<Record<string, string>>
}

interface Repo {
  readonly refs: Map<string, CommitSha>
  readonly commits: Map<CommitSha, StoredCommit>
}

/** Test controls of the in-memory repositories. */
export class Repos extends Context.Tag("@paas/core/testing/Repos")<
  Repos,
  {
    /** Commits `files` (the whole tree) on `branch` (default `main`) and returns the ref update. */
    readonly push: (
      project: ProjectId,
      files: Readonly<Record<string, string>>,
      options?: { readonly branch?: string; readonly message?: string }
    ) => Effect.Effect<RefUpdate, RepositoryError>
    /** Makes the next operation of any kind fail with `message`. */
    readonly failNext: (message: string) => Effect.Effect<void>
  }
>() {}

const fullRef = (ref: string) => (ref.startsWith("refs/") ? ref : `refs/heads/${ref}`)

/** Empty in-memory repositories, providing the RepoStore and its test controls. */
export const layer: Layer.Layer<RepoStore | Repos> = Layer.effectContext(
  Effect.sync(() => {
    const repos = new Map<ProjectId, Repo>()
    let failure: string | undefined
    let counter = 0

    // Every operation passes through here, so `failNext` can break any of them.
    const withRepo = <A>(project: ProjectId, f: (repo: Repo) => A): Effect.Effect<A, RepositoryError> =>
      Effect.suspend(() => {
        if (failure !== undefined) {
          const message = failure
          failure = undefined
          return Effect.fail(new RepositoryError({ message }))
        }
        const repo = repos.get(project)
        return repo
          ? Effect.sync(() => f(repo))
          : Effect.fail(new RepositoryError({ message: `no repository for project ${project}` }))
      })

    const store = RepoStore.of({
      create: (project) =>
        Effect.suspend(() => {
          if (repos.has(project))
            return Effect.fail(new RepositoryError({ message: `repository ${project} already exists` }))
          repos.set(project, { refs: new Map(), commits: new Map() })
          return Effect.void
        }),
      remove: (project) => Effect.sync(() => void repos.delete(project)),
      exists: (project) => Effect.sync(() => repos.has(project)),
      resolve: (project, ref) =>
        withRepo(project, (repo) => {
          if (/^[0-9a-f]{40}$/.test(ref))
            return repo.commits.has(ref as CommitSha) ? Option.some(ref as CommitSha) : Option.none()
          return Option.fromNullable(repo.refs.get(fullRef(ref)))
        }),
      deployBranch: (project) =>
        withRepo(project, (repo) =>
          !repo.refs.has("refs/heads/main") && repo.refs.has("refs/heads/master") ? "master" : "main"
        ),
      commits: (project, ref, limit) =>
        withRepo(project, (repo) => {
          const out: Array<Commit> = []
          let sha = /^[0-9a-f]{40}$/.test(ref) ? (ref as CommitSha) : repo.refs.get(fullRef(ref))
          while (sha && out.length < limit) {
            const commit = repo.commits.get(sha)
            if (!commit) break
            out.push({ sha: commit.sha, message: commit.message, author: commit.author, date: commit.date })
            sha = commit.parent ?? undefined
          }
          return out
        }),
      archive: (project, commit) =>
        Stream.unwrap(
          withRepo(project, (repo) => {
            const stored = repo.commits.get(commit)
            return stored
              ? Stream.make(Tar.pack(stored.files))
              : Stream.fail(new RepositoryError({ message: `unknown commit ${commit}` }))
          })
        ),
      diskUsage: (project) =>
        withRepo(project, (repo) => {
          let bytes = 0
          for (const c of repo.commits.values()) for (const v of Object.values(c.files)) bytes += v.length
          return bytes
        })
    })

    const controls = Repos.of({
      push: (project, files, options = {}) =>
        withRepo(project, (repo) => {
          const ref = fullRef(options.branch ?? "main")
          const parent = repo.refs.get(ref) ?? null
          const message = options.message ?? `commit ${++counter}`
          const sha = CommitSha.make(
            createHash("sha1")
              .update(JSON.stringify([project, parent, files, message, counter++]))
              .digest("hex")
          )
          repo.commits.set(sha, {
            sha,
            parent,
            files,
            message,
            author: "Test <test@localhost>",
            date: new Date()
          })
          repo.refs.set(ref, sha)
          return { ref, before: parent, after: sha }
        }),
      failNext: (message) =>
        Effect.sync(() => {
          failure = message
        })
    })
    return Context.make(RepoStore, store).pipe(Context.add(Repos, controls))
  })
)
