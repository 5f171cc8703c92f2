// The exec requests the git server accepts, parsed by hand against one narrow grammar:
//
//   command := service " " path
//   service := "git-receive-pack" | "git-upload-pack"
//   path    := "'" repo "'" | repo          (git quotes the path; other clients may not)
//   repo    := ["/"] uuid [".git"]
//
// `git push ssh://git@host:port/<id>` sends `git-receive-pack '/<id>'`; the scp form
// `git@host:<id>` sends `git-receive-pack '<id>'`. Anything else, including every shell
// metacharacter, `..`, other absolute paths and extra whitespace, is refused. The result names a
// project; no part of the command ever reaches a shell or a file system path.

import type { RepositoryAccess } from "@paas/core/Platform"
import { ProjectId } from "@paas/core/Project"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/** The two git services served. */
export type GitService = "git-receive-pack" | "git-upload-pack"

/** A parsed, allowed request: which service, on which project, needing which access. */
export interface GitCommand {
  readonly service: GitService
  readonly access: RepositoryAccess
  readonly project: ProjectId
}

/** Longer than any valid command (`git-receive-pack '/<36>.git'` is 62 characters). */
export const MAX_COMMAND_LENGTH = 128

const SERVICES: Readonly<Record<string, RepositoryAccess>> = {
  "git-receive-pack": "write",
  "git-upload-pack": "read"
}

const REPO = /^\/?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?:\.git)?$/
const decodeProjectId = Schema.decodeUnknownOption(ProjectId)

/** Why a request is refused, as one line for the person at the other end. */
export const refusals = {
  notGit: "this server only runs git push and git fetch/clone (git-receive-pack, git-upload-pack)",
  badPath: "the repository must be a project id: ssh://git@<host>:<port>/<project-id>",
  tooLong: "command too long"
} as const

/** Parses an exec request; `Left` carries the one-line refusal. */
export const parse = (command: string): Either.Either<GitCommand, string> => {
  if (command.length > MAX_COMMAND_LENGTH) return Either.left(refusals.tooLong)
  const space = command.indexOf(" ")
  if (space === -1) return Either.left(refusals.notGit)
  const service = command.slice(0, space)
  const access = Object.hasOwn(SERVICES, service) ? SERVICES[service] : undefined
  if (access === undefined) return Either.left(refusals.notGit)
  let path = command.slice(space + 1)
  if (path.startsWith("'")) {
    if (path.length < 2 || !path.endsWith("'")) return Either.left(refusals.badPath)
    path = path.slice(1, -1)
  }
  const match = REPO.exec(path)
  if (match === null || match[1] === undefined) return Either.left(refusals.badPath)
  const project = decodeProjectId(match[1].toLowerCase())
  if (Option.isNone(project)) return Either.left(refusals.badPath)
  return Either.right({ service: service as GitService, access, project: project.value })
}

/** Environment values a client may set: only `GIT_PROTOCOL`, only in git's own syntax. */
export const acceptEnv = (name: string, value: string): boolean =>
  name === "GIT_PROTOCOL" && value.length <= 64 && /^[A-Za-z0-9=:._-]+$/.test(value)

/** Quotes untrusted text for a log line: visible, one line, bounded. */
export const forLog = (text: string): string =>
  JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text)
