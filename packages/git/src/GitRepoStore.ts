/**
 * GitRepoStore: the RepoStore as bare git repositories on disk, one directory per project named by
 * its UUID, driven through the `git` CLI. It provides the core `RepoStore` and its own tag, which
 * also tells where a repository lives (the SSH git server needs the path).
 */

import type { CommitSha } from "@paas/core/Build"
import type { RepositoryError } from "@paas/core/Errors"
import type { ProjectId } from "@paas/core/Project"
import { RepoStore } from "@paas/core/RepoStore"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internal from "./internal/repoStore.js"

/** Where the repositories live and which git runs them. */
export interface GitRepoStoreOptions {
  /** The directory holding one bare repository per project; created (mode 0700) if missing. */
  readonly root: string
  /** The git executable; `git` on the PATH by default. */
  readonly git?: string | undefined
}

/** A repository's refs: each ref's object id and the commit it peels to. */
export type RefSnapshot = ReadonlyMap<string, { readonly object: string; readonly commit: CommitSha }>

/** The RepoStore on disk, with what a git server needs besides. */
export class GitRepoStore extends Context.Tag("@paas/git/GitRepoStore")<
  GitRepoStore,
  RepoStore["Type"] & {
    /** The absolute directory holding the repositories. */
    readonly root: string
    /** The git executable used. */
    readonly git: string
    /** The directory of a project's repository (whether or not it exists). */
    readonly path: (project: ProjectId) => Effect.Effect<string, RepositoryError>
    /** Every ref of a project's repository. */
    readonly refs: (project: ProjectId) => Effect.Effect<RefSnapshot, RepositoryError>
  }
>() {}

/** Builds the store, creating the root directory if needed. */
export const make: (options: GitRepoStoreOptions) => Effect.Effect<GitRepoStore["Type"], RepositoryError> =
  internal.make

/** Provides both `GitRepoStore` and the core `RepoStore`. */
export const layer = (options: GitRepoStoreOptions): Layer.Layer<GitRepoStore | RepoStore, RepositoryError> =>
  Layer.effectContext(
    Effect.map(make(options), (store) =>
      Context.make(GitRepoStore, store).pipe(Context.add(RepoStore, store))
    )
  )
