// The Platform's use cases. Authorisation is decided in `owned`: the owner or an admin may act; to
// anyone else a resource answers NotFound, exactly as a missing one does.
import { createHash, randomUUID } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { AuthProvider } from "../AuthProvider.js"
import { Build, type BuildId, type CommitSha } from "../Build.js"
import {
  AuthenticationError,
  BuildFailed,
  Conflict,
  Forbidden,
  NotFound,
  type RouterError,
  type RuntimeError,
  ValidationError
} from "../Errors.js"
import { ImageBuilder } from "../ImageBuilder.js"
import { Mailer } from "../Mailer.js"
import { Persistence } from "../Persistence.js"
import type { DeployResult, Platform, PushResult } from "../Platform.js"
import { appUrl, PlatformConfig, reservedDomain } from "../PlatformConfig.js"
import { Domain, Env, MAX_DOMAINS, Project, ProjectConfig, type ProjectId, ProjectName } from "../Project.js"
import { RateLimiter } from "../RateLimiter.js"
import { Reconciler } from "../Reconciler.js"
import { type Release, ReleaseId, type RunSettings } from "../Release.js"
import { RepoStore } from "../RepoStore.js"
import { RuntimeDriver } from "../RuntimeDriver.js"
import { KeyName, SshKey, SshKeyId } from "../SshKey.js"
import { Password, Principal, Registration, User, UserId } from "../User.js"
import * as Mails from "./mails.js"
import * as SshKeyLine from "./sshKeyLine.js"
import { validate } from "./validate.js"

const LOGIN_WINDOW = Duration.minutes(15)
const LOG_FLUSH_LINES = 100
const LOG_TAIL_LINES = 20
// Accounts whose existence was checked recently, for `authenticate` (bounded, oldest first out).
const KNOWN_ACCOUNTS = 10_000
// Sessions recently found not ended, by digest, for `authenticate` (bounded, oldest first out).
const KNOWN_SESSIONS = 10_000

/** What the store keeps of an ended session: a digest, so that its rows are no credentials. */
const sessionDigest = (token: string) => createHash("sha256").update(token).digest("base64url")

const sessionEnded = new AuthenticationError({
  reason: "invalid-token",
  message: "the session has ended"
})

const invalidCredentials = new AuthenticationError({
  reason: "invalid-credentials",
  message: "invalid email or password"
})

export const make = Effect.gen(function* () {
  const store = yield* Persistence
  const auth = yield* AuthProvider
  const mailer = yield* Mailer
  const repos = yield* RepoStore
  const builder = yield* ImageBuilder
  const runtime = yield* RuntimeDriver
  const reconciler = yield* Reconciler
  const limiter = yield* RateLimiter
  const settings = yield* PlatformConfig
  const buildSlots = yield* Effect.makeSemaphore(settings.buildConcurrency)
  const accounts = new Map<UserId, { readonly principal: Principal; readonly checkedAt: number }>()
  // Sessions recently found not ended: digest → the account and when it was checked.
  const liveSessions = new Map<string, { readonly userId: UserId; readonly checkedAt: number }>()
  // Per project, the build waiting for a slot, so that a newer push can supersede it.
  const waiting = new Map<
    ProjectId,
    { readonly buildId: BuildId; readonly superseded: Deferred.Deferred<CommitSha> }
  >()
  // Checked against when an email is unknown, so a login takes as long either way.
  const decoyHash = yield* auth.hashPassword(Redacted.make(randomUUID()))

  const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))
  const uuid = Effect.sync(() => randomUUID())
  const later = (at: Date, d: Duration.Duration) => new Date(at.getTime() + Duration.toMillis(d))

  const requireAdmin = (principal: Principal) =>
    principal.isAdmin
      ? Effect.void
      : Effect.fail(new Forbidden({ message: "this is for administrators only" }))

  const owned = <A extends { readonly ownerId: UserId } | { readonly userId: UserId }>(
    principal: Principal,
    resource: NotFound["resource"],
    id: string,
    found: Option.Option<A>
  ): Effect.Effect<A, NotFound> => {
    if (Option.isSome(found)) {
      const owner = "ownerId" in found.value ? found.value.ownerId : found.value.userId
      if (principal.isAdmin || owner === principal.userId) return Effect.succeed(found.value)
    }
    return Effect.fail(new NotFound({ resource, id }))
  }

  const getProject = (principal: Principal, id: ProjectId) =>
    Effect.flatMap(store.projects.findById(id), (p) => owned(principal, "project", id, p))

  // Reconciling is how every change reaches the runtime; a failure there is recorded on the
  // deployment by the reconciler and retried by the next pass, so callers get it as a message.
  const converge = (id: ProjectId) =>
    reconciler
      .reconcileApp(id)
      .pipe(
        Effect.catchAll((e: RuntimeError | RouterError) =>
          Effect.succeed({ appId: id, status: "failed" as const, message: e.message, changed: false })
        )
      )

  // Images of the latest releases stay for rollback, and whatever the deployment points at;
  // everything older goes. Pruning is housekeeping: a failure is logged, never the caller's.
  const pruneImages = (projectId: ProjectId) =>
    Effect.gen(function* () {
      const releases = yield* store.releases.listByProject(projectId)
      const deployment = yield* store.deployments.findDesired(projectId)
      // The latest builds' images too: a build that finished while this deploy ran has an image
      // but no release yet, and must not lose it.
      const builds = yield* store.builds.listByProject(projectId, settings.releasesKept)
      const keep = new Set([
        ...releases.slice(0, settings.releasesKept).map((r) => r.image),
        ...builds.flatMap((b) => (b.image === null ? [] : [b.image]))
      ])
      if (Option.isSome(deployment) && deployment.value.release !== null)
        keep.add(deployment.value.release.image)
      yield* builder.prune(projectId, [...keep])
    }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("pruning images failed", cause)))

  const deployRelease = (project: Project, release: Release): Effect.Effect<DeployResult> =>
    Effect.gen(function* () {
      yield* store.deployments.setDesired(
        project.id,
        { releaseId: release.id, desired: "running" },
        yield* now
      )
      const outcome = yield* converge(project.id)
      yield* pruneImages(project.id)
      return {
        _tag: "Deployed" as const,
        release,
        status: outcome.status,
        message: outcome.message,
        url: appUrl(settings, project.id)
      }
    })

  const newRelease = (
    project: Project,
    from: { image: string; commit: CommitSha; buildId: BuildId | null; run: RunSettings },
    config: ProjectConfig,
    description: string
  ) =>
    Effect.gen(function* () {
      return yield* store.releases.insert({
        id: ReleaseId.make(yield* uuid),
        projectId: project.id,
        image: from.image,
        commit: from.commit,
        buildId: from.buildId,
        run: from.run,
        config,
        description,
        createdAt: yield* now
      })
    })

  // Runs one build: queued until a slot is free, then running; every line goes to the build's log
  // (batched, since a store write per line would dominate) and to the pusher's terminal.
  const runBuild = (
    project: Project,
    commit: CommitSha,
    ref: string,
    output: (line: string) => Effect.Effect<void>
  ) =>
    Effect.scoped(
      Effect.gen(function* () {
        const build = yield* store.builds.insert(
          new Build({
            id: (yield* uuid) as BuildId,
            projectId: project.id,
            commit,
            ref,
            status: "queued",
            log: "",
            image: null,
            error: null,
            createdAt: yield* now,
            startedAt: null,
            finishedAt: null
          })
        )
        yield* reconciler.trackBuild(build.id)
        const pending: Array<string> = []
        const tail: Array<string> = []
        const flush = Effect.suspend(() =>
          pending.length === 0
            ? Effect.void
            : store.builds.appendLog(build.id, `${pending.splice(0).join("\n")}\n`)
        )
        const log = (line: string) =>
          Effect.suspend(() => {
            pending.push(line)
            tail.push(line)
            if (tail.length > LOG_TAIL_LINES) tail.shift()
            return Effect.zipRight(pending.length >= LOG_FLUSH_LINES ? flush : Effect.void, output(line))
          })
        const finish = (status: Build["status"], fields: { image?: string; error?: string }) =>
          Effect.gen(function* () {
            yield* flush
            return yield* store.builds
              .update(build.id, { status, ...fields, finishedAt: yield* now })
              .pipe(Effect.orElseSucceed(() => build))
          })

        // Queued builds of one project collapse to the newest commit: a newer push supersedes
        // this build while it waits for a slot (never once it runs).
        const superseded = yield* Deferred.make<CommitSha>()
        const previous = waiting.get(project.id)
        waiting.set(project.id, { buildId: build.id, superseded })
        if (previous !== undefined) yield* Deferred.succeed(previous.superseded, commit)
        const leaveQueue = Effect.sync(() => {
          if (waiting.get(project.id)?.buildId === build.id) waiting.delete(project.id)
        })

        const attempt = buildSlots.withPermits(1)(
          Effect.gen(function* () {
            yield* leaveQueue
            yield* store.builds.update(build.id, { status: "running", startedAt: yield* now })
            yield* log(`Building ${commit.slice(0, 12)} of ${project.name}`)
            return yield* builder
              .build(
                {
                  projectId: project.id,
                  buildId: build.id,
                  commit,
                  source: repos.archive(project.id, commit),
                  env: project.config.env
                },
                log
              )
              .pipe(
                Effect.timeoutFail({
                  duration: settings.buildTimeout,
                  onTimeout: () =>
                    new BuildFailed({
                      message: `the build took longer than ${Duration.format(settings.buildTimeout)}`,
                      logTail: [...tail]
                    })
                })
              )
          })
        )
        const outcome = yield* Effect.raceFirst(
          attempt.pipe(
            Effect.catchTag("NotFound", (e) =>
              Effect.fail(new BuildFailed({ message: e.message, logTail: [] }))
            ),
            Effect.either,
            Effect.map((result) => ({ _tag: "Done" as const, result }))
          ),
          Effect.map(Deferred.await(superseded), (by) => ({ _tag: "Superseded" as const, by }))
        ).pipe(
          Effect.ensuring(leaveQueue),
          Effect.onInterrupt(() => Effect.ignore(finish("cancelled", { error: "the build was cancelled" })))
        )
        if (outcome._tag === "Superseded") {
          const reason = `superseded by a newer push (${outcome.by.slice(0, 12)}) before it started`
          const cancelled = yield* finish("cancelled", { error: reason })
          return { _tag: "Superseded" as const, build: cancelled, reason }
        }
        const result = outcome.result
        if (result._tag === "Left") {
          const failed = yield* finish("failed", { error: result.left.message })
          return { _tag: "Left" as const, build: failed, reason: result.left.message }
        }
        const done = yield* finish("succeeded", { image: result.right.image })
        return { _tag: "Right" as const, build: done, image: result.right }
      })
    )

  const service: Platform["Type"] = {
    register: (input) =>
      Effect.gen(function* () {
        const fields = yield* validate(Registration)({ ...input, password: Redacted.value(input.password) })
        const at = yield* now
        const isAdmin = Option.exists(
          settings.adminEmail,
          (e) => e.toLowerCase() === fields.email.toLowerCase()
        )
        const user = yield* store.users.insert(
          new User({
            id: UserId.make(yield* uuid),
            username: fields.username,
            email: fields.email,
            isAdmin,
            emailConfirmed: false,
            createdAt: at,
            updatedAt: at
          }),
          yield* auth.hashPassword(input.password)
        )
        const token = yield* uuid
        yield* store.tokens.issue("email-confirmation", user.id, token, later(at, settings.emailTokenTtl))
        // Without the mail the account could never be confirmed: undo it so the person can retry.
        yield* mailer
          .send(Mails.confirmation(user.email, user.username, settings.publicUrl, token))
          .pipe(Effect.tapError(() => Effect.ignore(store.users.delete(user.id))))
        return user
      }),

    confirmEmail: (token) =>
      Effect.gen(function* () {
        const at = yield* now
        const userId = yield* store.tokens.consume("email-confirmation", token, at)
        if (Option.isNone(userId)) return yield* new NotFound({ resource: "token", id: token })
        yield* store.users.confirmEmail(userId.value, at)
      }),

    login: ({ email, password, client }) =>
      Effect.gen(function* () {
        const limits = [
          { key: `login:account:${email.toLowerCase()}`, max: 10, window: LOGIN_WINDOW },
          { key: `login:address:${client}`, max: 50, window: LOGIN_WINDOW }
        ]
        yield* limiter.check(limits)
        const found = yield* store.users.findByEmail(email)
        const ok = yield* auth.verifyPassword(
          Option.match(found, { onNone: () => decoyHash, onSome: (u) => u.passwordHash }),
          password
        )
        if (Option.isNone(found) || !ok) {
          yield* limiter.fail(limits)
          return yield* invalidCredentials
        }
        const user = found.value.user
        if (!user.emailConfirmed)
          return yield* new AuthenticationError({
            reason: "email-not-confirmed",
            message: "confirm your email address before logging in"
          })
        yield* limiter.reset(limits[0]!.key)
        const session = yield* auth.issueSession(new Principal({ userId: user.id, isAdmin: user.isAdmin }))
        return { token: session.token, expiresAt: session.expiresAt, user }
      }),

    authenticate: (token) =>
      Effect.gen(function* () {
        const { principal: claimed, issuedAt } = yield* auth.verifySession(token)
        const at = yield* Clock.currentTimeMillis
        const recheck = Duration.toMillis(settings.accountRecheck)
        // The session may have been ended (logout, a new password), here or by another server on
        // the same store: ask the store at most once per accountRecheck for each session (ending
        // it here forgets it at once).
        const digest = sessionDigest(token)
        const live = liveSessions.get(digest)
        if (live === undefined || at - live.checkedAt >= recheck) {
          liveSessions.delete(digest)
          if (yield* store.endedSessions.isEnded({ digest, userId: claimed.userId, issuedAt }, new Date(at)))
            return yield* sessionEnded
          if (liveSessions.size >= KNOWN_SESSIONS) liveSessions.delete(liveSessions.keys().next().value!)
          liveSessions.set(digest, { userId: claimed.userId, checkedAt: at })
        }
        // The account may have been deleted since the token was issued: ask the store, at most
        // once per accountRecheck for each account (a deletion here forgets it at once).
        const known = accounts.get(claimed.userId)
        if (known !== undefined && at - known.checkedAt < recheck) return known.principal
        const user = yield* store.users.findById(claimed.userId)
        if (Option.isNone(user)) {
          accounts.delete(claimed.userId)
          return yield* new AuthenticationError({
            reason: "invalid-token",
            message: "the account no longer exists"
          })
        }
        const principal = new Principal({ userId: user.value.id, isAdmin: user.value.isAdmin })
        if (accounts.size >= KNOWN_ACCOUNTS) accounts.delete(accounts.keys().next().value!)
        accounts.set(principal.userId, { principal, checkedAt: at })
        return principal
      }),

    logout: (principal, token) =>
      Effect.gen(function* () {
        const session = yield* Effect.option(auth.verifySession(token))
        if (Option.isNone(session) || session.value.principal.userId !== principal.userId) return
        const digest = sessionDigest(token)
        yield* store.endedSessions.add(digest, principal.userId, session.value.expiresAt, yield* now)
        liveSessions.delete(digest)
      }),

    requestPasswordReset: (email) =>
      Effect.gen(function* () {
        const found = yield* store.users.findByEmail(email)
        if (Option.isNone(found)) return
        const at = yield* now
        const token = yield* uuid
        const user = found.value.user
        yield* store.tokens.issue("password-reset", user.id, token, later(at, settings.emailTokenTtl))
        // The caller gets the same answer whether the email exists or the mail failed.
        yield* mailer
          .send(Mails.passwordReset(user.email, settings.publicUrl, token))
          .pipe(Effect.catchAll((e) => Effect.logError("could not send a password reset mail", e)))
      }),

    resetPassword: (token, password) =>
      Effect.gen(function* () {
        yield* validate(Password, "password")(Redacted.value(password))
        const at = yield* now
        const userId = yield* store.tokens.consume("password-reset", token, at)
        if (Option.isNone(userId)) return yield* new NotFound({ resource: "token", id: token })
        // The new password ends every session of the account (a stolen session too).
        yield* store.users.setPasswordHash(userId.value, yield* auth.hashPassword(password), at)
        for (const [digest, live] of liveSessions)
          if (live.userId === userId.value) liveSessions.delete(digest)
      }),

    me: (principal) =>
      Effect.flatMap(store.users.findById(principal.userId), (u) =>
        Option.match(u, {
          onNone: () => Effect.fail(new NotFound({ resource: "user", id: principal.userId })),
          onSome: Effect.succeed
        })
      ),

    listUsers: (principal) => Effect.zipRight(requireAdmin(principal), store.users.list()),

    getUser: (principal, username) =>
      Effect.gen(function* () {
        yield* requireAdmin(principal)
        const user = yield* store.users.findByUsername(username)
        if (Option.isNone(user)) return yield* new NotFound({ resource: "user", id: username })
        return user.value
      }),

    deleteUser: (principal, username) =>
      Effect.gen(function* () {
        const user = yield* service.getUser(principal, username)
        // Repositories first: if one cannot be removed, the account is still there to retry with.
        const projects = yield* store.projects.listByOwner(user.id)
        for (const project of projects) yield* repos.remove(project.id)
        yield* store.users.delete(user.id)
        accounts.delete(user.id)
        for (const project of projects) {
          yield* converge(project.id)
          yield* builder.prune(project.id, [])
        }
      }),

    addSshKey: (principal, input) =>
      Effect.gen(function* () {
        const name = input.name === undefined ? undefined : yield* validate(KeyName, "name")(input.name)
        const parsed = yield* auth.parsePublicKey(input.value)
        const at = yield* now
        return yield* store.keys.insert(
          new SshKey({
            id: SshKeyId.make(yield* uuid),
            userId: principal.userId,
            name: name || parsed.comment.slice(0, 30) || parsed.type,
            value: parsed.normalized,
            fingerprint: parsed.fingerprint,
            createdAt: at,
            updatedAt: at
          })
        )
      }),

    listMySshKeys: (principal) => store.keys.listByUser(principal.userId),

    listSshKeys: (principal) => Effect.zipRight(requireAdmin(principal), store.keys.list()),

    deleteSshKey: (principal, id) =>
      Effect.gen(function* () {
        const key = yield* owned(principal, "sshKey", id, yield* store.keys.findById(id))
        yield* store.keys.delete(key.id)
      }),

    authenticateSshKey: (key) =>
      Effect.gen(function* () {
        const unknown = new AuthenticationError({
          reason: "unknown-key",
          message: "this key is not registered"
        })
        const stored = yield* store.keys.findByFingerprint(SshKeyLine.fingerprintOf(key.blob))
        if (Option.isNone(stored) || !stored.value.value.startsWith(`${key.type} `)) return yield* unknown
        const user = yield* store.users.findById(stored.value.userId)
        if (Option.isNone(user)) return yield* unknown
        return new Principal({ userId: user.value.id, isAdmin: user.value.isAdmin })
      }),

    createProject: (principal, input) =>
      Effect.gen(function* () {
        const name = yield* validate(ProjectName, "name")(input.name)
        const at = yield* now
        const project = yield* store.projects.insert(
          new Project({
            id: (yield* uuid) as ProjectId,
            ownerId: principal.userId,
            name,
            config: new ProjectConfig({ env: {} }),
            createdAt: at,
            updatedAt: at
          })
        )
        // The repository follows the record; without one the project would be unusable.
        yield* repos
          .create(project.id)
          .pipe(Effect.tapError(() => Effect.ignore(store.projects.delete(project.id))))
        return project
      }),

    getProject,

    listMyProjects: (principal) => store.projects.listByOwner(principal.userId),

    listProjects: (principal) => Effect.zipRight(requireAdmin(principal), store.projects.list()),

    deleteProject: (principal, id) =>
      Effect.gen(function* () {
        yield* getProject(principal, id)
        yield* repos.remove(id)
        yield* store.projects.delete(id)
        yield* converge(id)
        yield* builder.prune(id, [])
      }),

    authorizeRepository: (principal, id) => getProject(principal, id),

    pushReceived: (principal, id, updates, output) =>
      Effect.gen(function* () {
        const project = yield* getProject(principal, id)
        const branch = yield* repos.deployBranch(id)
        const update = updates.find((u) => u.ref === `refs/heads/${branch}` && u.after !== null)
        if (update === undefined || update.after === null) {
          const reason = `only pushes to ${branch} are deployed`
          yield* output(reason)
          return { _tag: "Ignored", reason } satisfies PushResult
        }
        const built = yield* runBuild(project, update.after, update.ref, output)
        if (built._tag === "Superseded") {
          yield* output(`Not deployed: ${built.reason}; that push is built instead.`)
          return { _tag: "Superseded", build: built.build, reason: built.reason } satisfies PushResult
        }
        if (built._tag === "Left") {
          const reason = `build failed: ${built.reason}`
          yield* output(reason)
          return { _tag: "BuildFailed", build: built.build, reason } satisfies PushResult
        }
        const release = yield* newRelease(
          project,
          { image: built.image.image, commit: update.after, buildId: built.build.id, run: built.image.run },
          project.config,
          `Deploy ${update.after.slice(0, 12)}`
        )
        yield* output(`Deploying release v${release.number}`)
        if (release.run.replicas > 1)
          yield* output(
            `run.replicas is ${release.run.replicas}: this version runs one instance of each app; the others are not started`
          )
        const deployed = yield* deployRelease(project, release)
        if (deployed._tag === "Deployed" && deployed.status === "running" && deployed.message === null) {
          yield* output(`Deployed release v${release.number}: ${deployed.url}`)
          return { _tag: "Deployed", build: built.build, release, url: deployed.url } satisfies PushResult
        }
        const reason = `release v${release.number} did not start: ${deployed._tag === "Deployed" ? deployed.message : "unknown"}`
        yield* output(reason)
        return { _tag: "DeployFailed", build: built.build, release, reason } satisfies PushResult
      }),

    deploy: (principal, id, env) =>
      Effect.gen(function* () {
        const current = yield* getProject(principal, id)
        const config = new ProjectConfig({ ...current.config, env: yield* validate(Env, "env_vars")(env) })
        const project = yield* store.projects.updateConfig(id, config, yield* now)
        const [latest] = yield* store.releases.listByProject(id)
        if (latest === undefined) return { _tag: "Pending" } satisfies DeployResult
        const release = yield* newRelease(project, latest, config, "Deploy with new environment")
        return yield* deployRelease(project, release)
      }),

    setDomains: (principal, id, input) =>
      Effect.gen(function* () {
        const current = yield* getProject(principal, id)
        // Host names are case-insensitive and may be written with a final dot.
        const domains = [...new Set(input.map((d) => d.trim().toLowerCase().replace(/\.$/, "")))]
        if (domains.length > MAX_DOMAINS)
          return yield* new ValidationError({ field: "domains", message: `at most ${MAX_DOMAINS} domains` })
        for (const domain of domains) {
          yield* validate(Domain, "domains")(domain)
          const reserved = reservedDomain(settings, domain)
          if (reserved !== undefined)
            return yield* new ValidationError({ field: "domains", message: reserved })
        }
        for (const other of yield* store.projects.list())
          if (other.id !== id && other.config.domains.some((d) => domains.includes(d)))
            return yield* new Conflict({
              resource: "project",
              message: `${other.config.domains.find((d) => domains.includes(d))} is already a domain of another project`
            })
        const config = new ProjectConfig({ ...current.config, domains })
        const project = yield* store.projects.updateConfig(id, config, yield* now)
        // A running app takes its new names with a new release of the same build.
        const deployment = yield* store.deployments.find(id)
        if (Option.isSome(deployment) && deployment.value.desired === "running") {
          const [latest] = yield* store.releases.listByProject(id)
          if (latest !== undefined) {
            const release = yield* newRelease(project, latest, config, "Deploy with new domains")
            yield* deployRelease(project, release)
          }
        }
        return project
      }),

    stop: (principal, id) =>
      Effect.gen(function* () {
        yield* getProject(principal, id)
        const current = yield* store.deployments.find(id)
        const releaseId = Option.match(current, { onNone: () => null, onSome: (d) => d.releaseId })
        yield* store.deployments.setDesired(id, { releaseId, desired: "stopped" }, yield* now)
        yield* converge(id)
      }),

    rollback: (principal, id, number) =>
      Effect.gen(function* () {
        const current = yield* getProject(principal, id)
        const target = yield* store.releases.findByNumber(id, number)
        if (Option.isNone(target)) return yield* new NotFound({ resource: "release", id: `${id} v${number}` })
        // The project's env follows the release, so a later deploy starts from what is running;
        // its domains stay as they are now (a domain given away since must not come back).
        const config = new ProjectConfig({ ...target.value.config, domains: current.config.domains })
        const project = yield* store.projects.updateConfig(id, config, yield* now)
        const release = yield* newRelease(project, target.value, config, `Rollback to v${number}`)
        return yield* deployRelease(project, release)
      }),

    releases: (principal, id) => Effect.zipRight(getProject(principal, id), store.releases.listByProject(id)),

    builds: (principal, id) =>
      Effect.zipRight(getProject(principal, id), store.builds.listByProject(id, 100)),

    build: (principal, id, buildId) =>
      Effect.gen(function* () {
        yield* getProject(principal, id)
        const build = yield* store.builds.findById(buildId)
        if (Option.isNone(build) || build.value.projectId !== id)
          return yield* new NotFound({ resource: "build", id: buildId })
        return build.value
      }),

    logs: (principal, id, options) =>
      Stream.unwrap(Effect.as(getProject(principal, id), runtime.logs(id, options))),

    statistics: (principal, id) => Effect.zipRight(getProject(principal, id), runtime.stats(id)),

    status: (principal, ids) =>
      Effect.forEach(ids, (id) =>
        Effect.gen(function* () {
          yield* getProject(principal, id)
          const deployment = yield* store.deployments.find(id)
          return {
            id,
            status: Option.match(deployment, { onNone: () => "unknown" as const, onSome: (d) => d.status })
          }
        })
      )
  }
  return service
})
