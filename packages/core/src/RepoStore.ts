/**
 * RepoStore: one git repository per project, named by the project id.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type { CommitSha } from "./Build.js"
import type { RepositoryError } from "./Errors.js"
import type { ProjectId } from "./Project.js"

/** A commit as listed in a repository's history. */
export interface Commit {
  readonly sha: CommitSha
  readonly message: string
  readonly author: string
  readonly date: Date
}

/** One ref changed by a push; `null` is git's all-zero id (a ref created or deleted). */
export interface RefUpdate {
  readonly ref: string
  readonly before: CommitSha | null
  readonly after: CommitSha | null
}

/** Creates, inspects and removes the projects' repositories. */
export class RepoStore extends Context.Tag("@paas/core/RepoStore")<
  RepoStore,
  {
    readonly create: (project: ProjectId) => Effect.Effect<void, RepositoryError>
    /** Removes the repository; removing one that does not exist succeeds. */
    readonly remove: (project: ProjectId) => Effect.Effect<void, RepositoryError>
    readonly exists: (project: ProjectId) => Effect.Effect<boolean, RepositoryError>
    /** The commit a ref (`main`, `refs/heads/main`, a sha) points at, if any. */
    readonly resolve: (
      project: ProjectId,
      ref: string
    ) => Effect.Effect<Option.Option<CommitSha>, RepositoryError>
    /** The branch pushes deploy from: `main`, or `master` when that is what the repository uses. */
    readonly deployBranch: (project: ProjectId) => Effect.Effect<string, RepositoryError>
    /** The newest commits reachable from a ref, newest first. */
    readonly commits: (
      project: ProjectId,
      ref: string,
      limit: number
    ) => Effect.Effect<ReadonlyArray<Commit>, RepositoryError>
    /** A commit's tree as a tar stream, for builders. */
    readonly archive: (project: ProjectId, commit: CommitSha) => Stream.Stream<Uint8Array, RepositoryError>
    /** Bytes the repository takes on its storage. */
    readonly diskUsage: (project: ProjectId) => Effect.Effect<number, RepositoryError>
  }
>() {}
