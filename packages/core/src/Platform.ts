/**
 * Platform: the use cases of the PaaS, composed from the contracts. Authorisation happens here,
 * so every front end (HTTP, SSH, a product embedding the SDK) gets the same rules: the owner or an
 * admin may act on a resource; anyone else gets NotFound, exactly as for a missing one.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Stream from "effect/Stream"
import type { AuthProvider } from "./AuthProvider.js"
import type { Build, BuildId } from "./Build.js"
import type { AppStatus } from "./Deployment.js"
import type {
  AuthenticationError,
  Conflict,
  Forbidden,
  MailError,
  NotFound,
  RateLimited,
  RepositoryError,
  RuntimeError,
  ValidationError
} from "./Errors.js"
import type { ImageBuilder } from "./ImageBuilder.js"
import * as internal from "./internal/platform.js"
import type { Mailer } from "./Mailer.js"
import type { Persistence } from "./Persistence.js"
import type { PlatformConfig } from "./PlatformConfig.js"
import type { Env, Project, ProjectId } from "./Project.js"
import type { RateLimiter } from "./RateLimiter.js"
import type { Reconciler } from "./Reconciler.js"
import type { Release } from "./Release.js"
import type { RefUpdate, RepoStore } from "./RepoStore.js"
import type { AppStats, LogLine, LogOptions, RuntimeDriver } from "./RuntimeDriver.js"
import type { SshKey, SshKeyId } from "./SshKey.js"
import type { Principal, User } from "./User.js"

/** A successful login: the session token, its expiry and the account. */
export interface LoginResult {
  readonly token: string
  readonly expiresAt: Date
  readonly user: User
}

/** What a deploy did: `pending` when nothing was pushed yet (the app starts after the first push). */
export type DeployResult =
  | {
      readonly _tag: "Deployed"
      readonly release: Release
      readonly status: AppStatus
      /** Why the release is not serving (an earlier one may still be), when it is not. */
      readonly message: string | null
      readonly url: string
    }
  | { readonly _tag: "Pending" }

/** The outcome of a push, as told to the pusher. */
export type PushResult =
  | { readonly _tag: "Ignored"; readonly reason: string }
  | { readonly _tag: "Deployed"; readonly build: Build; readonly release: Release; readonly url: string }
  | { readonly _tag: "BuildFailed"; readonly build: Build; readonly reason: string }
  /** A newer push to the same project arrived while this one waited for a build slot. */
  | { readonly _tag: "Superseded"; readonly build: Build; readonly reason: string }
  | {
      readonly _tag: "DeployFailed"
      readonly build: Build
      readonly release: Release
      readonly reason: string
    }

/** Which git operation is asked for: `read` (clone, fetch) or `write` (push). */
export type RepositoryAccess = "read" | "write"

/** The use cases. */
export class Platform extends Context.Tag("@paas/core/Platform")<
  Platform,
  {
    // accounts
    readonly register: (input: {
      readonly username: string
      readonly email: string
      readonly password: Redacted.Redacted<string>
    }) => Effect.Effect<User, ValidationError | Conflict | MailError>
    readonly confirmEmail: (token: string) => Effect.Effect<void, NotFound>
    /** `client` is the caller's address, for per-address rate limiting. */
    readonly login: (input: {
      readonly email: string
      readonly password: Redacted.Redacted<string>
      readonly client: string
    }) => Effect.Effect<LoginResult, AuthenticationError | RateLimited>
    /** A session token to the principal it stands for; fails if the account is gone or the session ended. */
    readonly authenticate: (token: string) => Effect.Effect<Principal, AuthenticationError>
    /**
     * Ends the session `token` stands for, before it expires: it is refused from then on. A token
     * that is not a valid session of `principal` is left alone.
     */
    readonly logout: (principal: Principal, token: string) => Effect.Effect<void>
    /** Always succeeds from the caller's point of view, whether or not the email exists. */
    readonly requestPasswordReset: (email: string) => Effect.Effect<void>
    /** Sets the new password; every session of the account ends with the old one. */
    readonly resetPassword: (
      token: string,
      password: Redacted.Redacted<string>
    ) => Effect.Effect<void, NotFound | ValidationError>
    readonly me: (principal: Principal) => Effect.Effect<User, NotFound>
    readonly listUsers: (principal: Principal) => Effect.Effect<ReadonlyArray<User>, Forbidden>
    readonly getUser: (principal: Principal, username: string) => Effect.Effect<User, Forbidden | NotFound>
    /** Deletes the account and all it owns: keys, projects, repositories, running apps. */
    readonly deleteUser: (
      principal: Principal,
      username: string
    ) => Effect.Effect<void, Forbidden | NotFound | RepositoryError>

    // ssh keys
    readonly addSshKey: (
      principal: Principal,
      input: { readonly value: string; readonly name?: string | undefined }
    ) => Effect.Effect<SshKey, ValidationError | Conflict>
    readonly listMySshKeys: (principal: Principal) => Effect.Effect<ReadonlyArray<SshKey>>
    readonly listSshKeys: (principal: Principal) => Effect.Effect<ReadonlyArray<SshKey>, Forbidden>
    readonly deleteSshKey: (principal: Principal, id: SshKeyId) => Effect.Effect<void, NotFound>
    /** The account a public key (type and wire blob, as an SSH server receives it) belongs to. */
    readonly authenticateSshKey: (key: {
      readonly type: string
      readonly blob: Uint8Array
    }) => Effect.Effect<Principal, AuthenticationError>

    // projects
    readonly createProject: (
      principal: Principal,
      input: { readonly name: string }
    ) => Effect.Effect<Project, ValidationError | Conflict | RepositoryError>
    readonly getProject: (principal: Principal, id: ProjectId) => Effect.Effect<Project, NotFound>
    readonly listMyProjects: (principal: Principal) => Effect.Effect<ReadonlyArray<Project>>
    readonly listProjects: (principal: Principal) => Effect.Effect<ReadonlyArray<Project>, Forbidden>
    /** Removes the running app, its images, the repository and the record. */
    readonly deleteProject: (
      principal: Principal,
      id: ProjectId
    ) => Effect.Effect<void, NotFound | RepositoryError>
    /** Succeeds when the principal may read or write the project's repository; NotFound otherwise. */
    readonly authorizeRepository: (
      principal: Principal,
      id: ProjectId,
      access: RepositoryAccess
    ) => Effect.Effect<Project, NotFound>

    // builds and deployments
    /**
     * Called once a push has been received: a push to the deploy branch builds, releases and
     * deploys, writing progress to `output` (the pusher's terminal) as it goes.
     */
    readonly pushReceived: (
      principal: Principal,
      id: ProjectId,
      updates: ReadonlyArray<RefUpdate>,
      output: (line: string) => Effect.Effect<void>
    ) => Effect.Effect<PushResult, NotFound | RepositoryError>
    /** Saves `env` as the project's `config.env` and deploys the latest build with it. */
    readonly deploy: (
      principal: Principal,
      id: ProjectId,
      env: Env
    ) => Effect.Effect<DeployResult, NotFound | ValidationError | RuntimeError>
    /**
     * Sets the custom domains the project's app answers at besides its own host name, and
     * redeploys the running release with them. A domain another project holds is a Conflict; the
     * platform's own names are refused.
     */
    readonly setDomains: (
      principal: Principal,
      id: ProjectId,
      domains: ReadonlyArray<string>
    ) => Effect.Effect<Project, NotFound | ValidationError | Conflict>
    readonly stop: (principal: Principal, id: ProjectId) => Effect.Effect<void, NotFound | RuntimeError>
    /** A new release copying release `number`'s image and config, deployed. */
    readonly rollback: (
      principal: Principal,
      id: ProjectId,
      number: number
    ) => Effect.Effect<DeployResult, NotFound | RuntimeError>
    readonly releases: (
      principal: Principal,
      id: ProjectId
    ) => Effect.Effect<ReadonlyArray<Release>, NotFound>
    /** The project's latest builds, newest first. */
    readonly builds: (principal: Principal, id: ProjectId) => Effect.Effect<ReadonlyArray<Build>, NotFound>
    /** One build of the project, with its log. */
    readonly build: (principal: Principal, id: ProjectId, buildId: BuildId) => Effect.Effect<Build, NotFound>
    readonly logs: (
      principal: Principal,
      id: ProjectId,
      options?: LogOptions
    ) => Stream.Stream<LogLine, NotFound | RuntimeError>
    readonly statistics: (
      principal: Principal,
      id: ProjectId
    ) => Effect.Effect<AppStats, NotFound | RuntimeError>
    /** The status of each app; NotFound when any of them is not the principal's. */
    readonly status: (
      principal: Principal,
      ids: ReadonlyArray<ProjectId>
    ) => Effect.Effect<ReadonlyArray<{ readonly id: ProjectId; readonly status: AppStatus }>, NotFound>
  }
>() {}

/** Builds the use cases from the contracts. */
export const make = internal.make

/** The use cases as a layer, over whichever drivers are provided. */
export const layer: Layer.Layer<
  Platform,
  never,
  | Persistence
  | AuthProvider
  | Mailer
  | RepoStore
  | ImageBuilder
  | RuntimeDriver
  | Reconciler
  | RateLimiter
  | PlatformConfig
> = Layer.effect(Platform, internal.make)
