// Domain records to the shapes the API promises (paastech-api.md "Shapes"), and core errors to the
// API's envelope errors.
import type { Build } from "@paas/core/Build"
import type * as CoreErrors from "@paas/core/Errors"
import type { Project } from "@paas/core/Project"
import type { Release } from "@paas/core/Release"
import type { SshKey } from "@paas/core/SshKey"
import type { User } from "@paas/core/User"
import * as Effect from "effect/Effect"
import * as Api from "../Api.js"

export const user = (u: User): typeof Api.UserView.Type => ({
  id: u.id,
  username: u.username,
  email: u.email,
  isAdmin: u.isAdmin,
  createdAt: u.createdAt,
  updatedAt: u.updatedAt
})

export const sshKey = (k: SshKey): typeof Api.SshKeyView.Type => ({
  id: k.id,
  name: k.name,
  value: k.value,
  fingerprint: k.fingerprint,
  createdAt: k.createdAt,
  updatedAt: k.updatedAt
})

export const project = (p: Project): typeof Api.ProjectView.Type => ({
  id: p.id,
  name: p.name,
  config: { env: { ...p.config.env }, domains: p.config.domains },
  createdAt: p.createdAt,
  updatedAt: p.updatedAt
})

export const build = (b: Build, withLog: boolean): typeof Api.BuildView.Type => ({
  id: b.id,
  commit: b.commit,
  ref: b.ref,
  status: b.status,
  error: b.error,
  createdAt: b.createdAt,
  startedAt: b.startedAt,
  finishedAt: b.finishedAt,
  ...(withLog ? { log: b.log } : {})
})

export const release = (r: Release): typeof Api.ReleaseView.Type => ({
  id: r.id,
  number: r.number,
  commit: r.commit,
  image: r.image,
  description: r.description,
  config: { env: { ...r.config.env }, domains: r.config.domains },
  createdAt: r.createdAt
})

/** The core errors a use case may fail with. */
export type CoreError =
  | CoreErrors.NotFound
  | CoreErrors.Forbidden
  | CoreErrors.Conflict
  | CoreErrors.ValidationError
  | CoreErrors.RuntimeError
  | CoreErrors.RepositoryError
  | CoreErrors.RouterError
  | CoreErrors.MailError

/** The envelope error each core error becomes. */
export type ApiErrorOf<E> = E extends CoreErrors.NotFound
  ? Api.NotFound
  : E extends CoreErrors.Forbidden
    ? Api.Forbidden
    : E extends CoreErrors.Conflict
      ? Api.Conflict
      : E extends CoreErrors.ValidationError
        ? Api.Invalid
        : Api.Unavailable

const toApiError = (
  error: CoreError
): Api.NotFound | Api.Forbidden | Api.Conflict | Api.Invalid | Api.Unavailable => {
  switch (error._tag) {
    case "NotFound":
      return Api.NotFound.of(error.message)
    case "Forbidden":
      return Api.Forbidden.of(error.message)
    case "Conflict":
      return Api.Conflict.of(error.message)
    case "ValidationError":
      return Api.Invalid.field(error.field, error.message)
    default:
      return Api.Unavailable.of(error.message)
  }
}

// Failures of the platform's own machinery (runtime, repositories, mail) are the operator's
// business: log them with their cause, and tell the client only what failed.
const logIfUnavailable = (error: CoreError) =>
  error._tag === "RuntimeError" ||
  error._tag === "RepositoryError" ||
  error._tag === "RouterError" ||
  error._tag === "MailError"
    ? Effect.logError(error.message, error)
    : Effect.void

/** Maps a use case's core errors onto the API's envelope errors. */
export const apiErrors = <A, E extends CoreError, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, ApiErrorOf<E>, R> =>
  self.pipe(
    Effect.tapError(logIfUnavailable),
    Effect.mapError((e) => toApiError(e) as ApiErrorOf<E>)
  )
