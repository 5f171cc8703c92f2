/**
 * Persistence: the desired state of the platform and its records. Store failures (the database
 * is down) are defects; the typed errors are the ones a caller can act on.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { Build, BuildId, BuildStatus } from "./Build.js"
import type { AppStatus, Deployment, DesiredState } from "./Deployment.js"
import type { Conflict, NotFound } from "./Errors.js"
import type { Project, ProjectConfig, ProjectId } from "./Project.js"
import type { Release, ReleaseId } from "./Release.js"
import type { Fingerprint, SshKey, SshKeyId } from "./SshKey.js"
import type { User, UserId } from "./User.js"

/** A user with the secret the store keeps beside it. */
export interface UserWithSecret {
  readonly user: User
  readonly passwordHash: string
}

/** The kinds of single-use tokens sent by email. */
export type TokenKind = "email-confirmation" | "password-reset"

/** A changed subset of a build's fields. */
export interface BuildUpdate {
  readonly status?: BuildStatus
  readonly image?: string | null
  readonly error?: string | null
  readonly startedAt?: Date | null
  readonly finishedAt?: Date | null
}

/** A release before the store numbers it. */
export type NewRelease = Omit<Release, "number">

/** A deployment with the release it wants, read in one go by the reconciler. */
export interface DesiredApp {
  readonly deployment: Deployment
  readonly release: Release | null
}

/** The store of users, keys, projects, builds, releases and deployments. */
export class Persistence extends Context.Tag("@paas/core/Persistence")<
  Persistence,
  {
    readonly users: {
      /** Fails with Conflict when the username or the email is taken. */
      readonly insert: (user: User, passwordHash: string) => Effect.Effect<User, Conflict>
      readonly findById: (id: UserId) => Effect.Effect<Option.Option<User>>
      readonly findByUsername: (username: string) => Effect.Effect<Option.Option<User>>
      /** Emails compare case-insensitively. */
      readonly findByEmail: (email: string) => Effect.Effect<Option.Option<UserWithSecret>>
      readonly list: () => Effect.Effect<ReadonlyArray<User>>
      readonly confirmEmail: (id: UserId, at: Date) => Effect.Effect<void, NotFound>
      /** Sets a new password; the sessions issued in a second before `at` end with the old one. */
      readonly setPasswordHash: (id: UserId, hash: string, at: Date) => Effect.Effect<void, NotFound>
      /** Deletes the user with their keys, projects and everything under them. */
      readonly delete: (id: UserId) => Effect.Effect<void, NotFound>
    }
    readonly tokens: {
      /** Stores a token, replacing any earlier token of the same kind for the same user. */
      readonly issue: (kind: TokenKind, userId: UserId, token: string, expiresAt: Date) => Effect.Effect<void>
      /** Spends a token: returns its user once, if it exists and has not expired at `now`. */
      readonly consume: (kind: TokenKind, token: string, now: Date) => Effect.Effect<Option.Option<UserId>>
    }
    /**
     * Sessions ended before their expiry: one by one (logout), by a digest of their token (never
     * the token), and all of an account's at once by a new password (`users.setPasswordHash`).
     */
    readonly endedSessions: {
      /** Records an ended session until `expiresAt`; forgets the records that expired before `now`. */
      readonly add: (digest: string, userId: UserId, expiresAt: Date, now: Date) => Effect.Effect<void>
      /**
       * Whether a session has ended: its digest was recorded (and has not expired at `now`), or its
       * account's password was set in a later second than `issuedAt`.
       */
      readonly isEnded: (
        session: { readonly digest: string; readonly userId: UserId; readonly issuedAt: Date },
        now: Date
      ) => Effect.Effect<boolean>
    }
    readonly keys: {
      /** Fails with Conflict when any account already registered the fingerprint. */
      readonly insert: (key: SshKey) => Effect.Effect<SshKey, Conflict>
      readonly findById: (id: SshKeyId) => Effect.Effect<Option.Option<SshKey>>
      readonly findByFingerprint: (fingerprint: Fingerprint) => Effect.Effect<Option.Option<SshKey>>
      readonly listByUser: (userId: UserId) => Effect.Effect<ReadonlyArray<SshKey>>
      readonly list: () => Effect.Effect<ReadonlyArray<SshKey>>
      readonly delete: (id: SshKeyId) => Effect.Effect<void, NotFound>
    }
    readonly projects: {
      /** Fails with Conflict when the owner already has a project of that name. */
      readonly insert: (project: Project) => Effect.Effect<Project, Conflict>
      readonly findById: (id: ProjectId) => Effect.Effect<Option.Option<Project>>
      readonly listByOwner: (ownerId: UserId) => Effect.Effect<ReadonlyArray<Project>>
      readonly list: () => Effect.Effect<ReadonlyArray<Project>>
      readonly updateConfig: (
        id: ProjectId,
        config: ProjectConfig,
        at: Date
      ) => Effect.Effect<Project, NotFound>
      /** Deletes the project with its builds, releases and deployment. */
      readonly delete: (id: ProjectId) => Effect.Effect<void, NotFound>
    }
    readonly builds: {
      readonly insert: (build: Build) => Effect.Effect<Build>
      readonly findById: (id: BuildId) => Effect.Effect<Option.Option<Build>>
      /** Newest first. */
      readonly listByProject: (projectId: ProjectId, limit: number) => Effect.Effect<ReadonlyArray<Build>>
      readonly listByStatus: (statuses: ReadonlyArray<BuildStatus>) => Effect.Effect<ReadonlyArray<Build>>
      readonly update: (id: BuildId, update: BuildUpdate) => Effect.Effect<Build, NotFound>
      /** Appends output to the build's log. */
      readonly appendLog: (id: BuildId, text: string) => Effect.Effect<void>
    }
    readonly releases: {
      /** Numbers the release one above the project's latest, atomically. */
      readonly insert: (release: NewRelease) => Effect.Effect<Release>
      readonly findById: (id: ReleaseId) => Effect.Effect<Option.Option<Release>>
      readonly findByNumber: (projectId: ProjectId, number: number) => Effect.Effect<Option.Option<Release>>
      /** Newest first. */
      readonly listByProject: (projectId: ProjectId) => Effect.Effect<ReadonlyArray<Release>>
    }
    readonly deployments: {
      readonly find: (projectId: ProjectId) => Effect.Effect<Option.Option<Deployment>>
      /**
       * Sets what the owner wants (creating the deployment if needed, with status "unknown") and
       * clears `failedSpec`, so an explicit deploy retries a spec that failed before.
       */
      readonly setDesired: (
        projectId: ProjectId,
        desired: { readonly releaseId: ReleaseId | null; readonly desired: DesiredState },
        at: Date
      ) => Effect.Effect<Deployment>
      /** Records what the reconciler saw; does nothing when the deployment is gone. */
      readonly setObserved: (
        projectId: ProjectId,
        observed: {
          readonly status: AppStatus
          readonly message: string | null
          readonly failedSpec: string | null
        },
        at: Date
      ) => Effect.Effect<void>
      /** Every deployment with its desired release, in one read. */
      readonly listDesired: () => Effect.Effect<ReadonlyArray<DesiredApp>>
      readonly findDesired: (projectId: ProjectId) => Effect.Effect<Option.Option<DesiredApp>>
    }
  }
>() {}
