/**
 * The behaviour every Persistence must have, as one suite to run against each implementation
 * (in memory, PGlite, PostgreSQL). Tests share one store per file, so each creates its own users
 * and projects with random names and only looks at what it created.
 */

import { createHash, randomBytes, randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { Build, BuildId, type BuildStatus, CommitSha } from "@paas/core/Build"
import { Deployment } from "@paas/core/Deployment"
import type { Conflict, NotFound } from "@paas/core/Errors"
import { type NewRelease, Persistence } from "@paas/core/Persistence"
import { Project, ProjectConfig, ProjectId } from "@paas/core/Project"
import { Release, ReleaseId, RunSettings } from "@paas/core/Release"
import { Fingerprint, SshKey, SshKeyId } from "@paas/core/SshKey"
import { User, UserId } from "@paas/core/User"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"

// --- fixtures --------------------------------------------------------------------------------

const token = () => randomUUID().replaceAll("-", "").slice(0, 10)
// Whole milliseconds in the recent past, so they survive any store's timestamp precision.
const at = (offsetMs = 0) => new Date(Date.UTC(2025, 0, 1) + offsetMs)

const makeUser = (fields: Partial<ConstructorParameters<typeof User>[0]> = {}) => {
  const name = `u${token()}`
  return new User({
    id: UserId.make(randomUUID()),
    username: name,
    email: `${name}@example.com`,
    isAdmin: false,
    emailConfirmed: false,
    createdAt: at(),
    updatedAt: at(),
    ...fields
  })
}

const makeKey = (userId: UserId, fields: Partial<ConstructorParameters<typeof SshKey>[0]> = {}) =>
  new SshKey({
    id: SshKeyId.make(randomUUID()),
    userId,
    name: `key ${token()}`,
    value: `ssh-ed25519 AAAA${randomBytes(24).toString("base64")} me@host`,
    fingerprint: Fingerprint.make(
      `SHA256:${createHash("sha256").update(randomBytes(16)).digest("base64").slice(0, 43)}`
    ),
    createdAt: at(),
    updatedAt: at(),
    ...fields
  })

const makeProject = (ownerId: UserId, fields: Partial<ConstructorParameters<typeof Project>[0]> = {}) =>
  new Project({
    id: ProjectId.make(randomUUID()),
    ownerId,
    name: `p${token()}`,
    config: new ProjectConfig({ env: { GREETING: "hello", EMPTY: "" } }),
    createdAt: at(),
    updatedAt: at(),
    ...fields
  })

const commit = () => CommitSha.make(randomBytes(20).toString("hex"))

const makeBuild = (projectId: ProjectId, fields: Partial<ConstructorParameters<typeof Build>[0]> = {}) =>
  new Build({
    id: BuildId.make(randomUUID()),
    projectId,
    commit: commit(),
    ref: "refs/heads/main",
    status: "queued",
    log: "",
    image: null,
    error: null,
    createdAt: at(),
    startedAt: null,
    finishedAt: null,
    ...fields
  })

const makeRelease = (projectId: ProjectId, fields: Partial<NewRelease> = {}): NewRelease => ({
  id: ReleaseId.make(randomUUID()),
  projectId,
  image: `paas/${projectId}:${token()}`,
  commit: commit(),
  buildId: null,
  config: new ProjectConfig({ env: { PORT_NAME: "web" } }),
  run: new RunSettings({
    ...RunSettings.defaults,
    port: 8080,
    command: ["node", "server.js"],
    env: { MODE: "prod" }
  }),
  description: "Deployed from a push",
  createdAt: at(),
  ...fields
})

/** A user with one project, stored. */
const owner = Effect.gen(function* () {
  const store = yield* Persistence
  const user = yield* store.users.insert(makeUser(), "hash")
  const project = yield* store.projects.insert(makeProject(user.id))
  return { store, user, project }
})

const assertConflict = (error: Conflict, resource: Conflict["resource"]) => {
  assert.strictEqual(error._tag, "Conflict")
  assert.strictEqual(error.resource, resource)
}

const assertNotFound = (error: NotFound, resource: NotFound["resource"], id: string) => {
  assert.strictEqual(error._tag, "NotFound")
  assert.strictEqual(error.resource, resource)
  assert.strictEqual(error.id, id)
}

// --- the suite -------------------------------------------------------------------------------

/** Registers the Persistence contract's tests under `name`, on one store built from `store`. */
export const persistenceSuite = (
  name: string,
  store: Layer.Layer<Persistence, unknown>,
  options: { readonly timeout?: Duration.DurationInput } = {}
) =>
  layer(store, { excludeTestServices: true, ...options })(name, (it) => {
    describe("users", () => {
      it.effect("inserts and finds a user by id, username and email (any case)", () =>
        Effect.gen(function* () {
          const store = yield* Persistence
          const user = makeUser({ email: `Mixed.${token()}@Example.com`, isAdmin: true })
          assert.deepStrictEqual(yield* store.users.insert(user, "argon2-hash"), user)
          assert.deepStrictEqual(yield* store.users.findById(user.id), Option.some(user))
          assert.deepStrictEqual(yield* store.users.findByUsername(user.username), Option.some(user))
          assert.deepStrictEqual(
            yield* store.users.findByEmail(user.email.toUpperCase()),
            Option.some({ user, passwordHash: "argon2-hash" })
          )
          assert.deepStrictEqual(
            yield* store.users.findByEmail(user.email.toLowerCase()),
            yield* store.users.findByEmail(user.email)
          )
          const listed = yield* store.users.list()
          assert.deepStrictEqual(
            listed.find((u) => u.id === user.id),
            user
          )
        })
      )

      it.effect("finds nothing for unknown ids, usernames and emails", () =>
        Effect.gen(function* () {
          const store = yield* Persistence
          assert.isTrue(Option.isNone(yield* store.users.findById(UserId.make(randomUUID()))))
          assert.isTrue(Option.isNone(yield* store.users.findByUsername(`nobody${token()}`)))
          assert.isTrue(Option.isNone(yield* store.users.findByEmail(`nobody${token()}@example.com`)))
        })
      )

      it.effect("refuses a taken username", () =>
        Effect.gen(function* () {
          const store = yield* Persistence
          const first = yield* store.users.insert(makeUser(), "hash")
          const second = makeUser({ username: first.username })
          assertConflict(yield* Effect.flip(store.users.insert(second, "hash")), "user")
          assert.isTrue(Option.isNone(yield* store.users.findById(second.id)))
        })
      )

      it.effect("refuses a registered email, compared case-insensitively", () =>
        Effect.gen(function* () {
          const store = yield* Persistence
          const first = yield* store.users.insert(makeUser(), "hash")
          const second = makeUser({ email: first.email.toUpperCase() })
          assertConflict(yield* Effect.flip(store.users.insert(second, "hash")), "user")
          assert.isTrue(Option.isNone(yield* store.users.findById(second.id)))
        })
      )

      it.effect("confirms an email and changes a password hash", () =>
        Effect.gen(function* () {
          const store = yield* Persistence
          const user = yield* store.users.insert(makeUser(), "old-hash")
          yield* store.users.confirmEmail(user.id, at(1000))
          const confirmed = Option.getOrThrow(yield* store.users.findById(user.id))
          assert.isTrue(confirmed.emailConfirmed)
          assert.deepStrictEqual(confirmed.updatedAt, at(1000))

          yield* store.users.setPasswordHash(user.id, "new-hash", at(2000))
          const withSecret = Option.getOrThrow(yield* store.users.findByEmail(user.email))
          assert.strictEqual(withSecret.passwordHash, "new-hash")
          assert.deepStrictEqual(withSecret.user.updatedAt, at(2000))
          assert.isTrue(withSecret.user.emailConfirmed)
        })
      )

      it.effect("fails with NotFound on unknown users", () =>
        Effect.gen(function* () {
          const store = yield* Persistence
          const id = UserId.make(randomUUID())
          assertNotFound(yield* Effect.flip(store.users.confirmEmail(id, at())), "user", id)
          assertNotFound(yield* Effect.flip(store.users.setPasswordHash(id, "h", at())), "user", id)
          assertNotFound(yield* Effect.flip(store.users.delete(id)), "user", id)
        })
      )

      it.effect("deletes a user once", () =>
        Effect.gen(function* () {
          const store = yield* Persistence
          const user = yield* store.users.insert(makeUser(), "hash")
          yield* store.users.delete(user.id)
          assert.isTrue(Option.isNone(yield* store.users.findById(user.id)))
          assert.isUndefined((yield* store.users.list()).find((u) => u.id === user.id))
          assertNotFound(yield* Effect.flip(store.users.delete(user.id)), "user", user.id)
          // The username and email are free again.
          yield* store.users.insert(makeUser({ username: user.username, email: user.email }), "hash")
        })
      )
    })

    describe("tokens", () => {
      it.effect("are single use", () =>
        Effect.gen(function* () {
          const { store, user } = yield* owner
          yield* store.tokens.issue("email-confirmation", user.id, "tok-1", at(60_000))
          assert.deepStrictEqual(
            yield* store.tokens.consume("email-confirmation", "tok-1", at()),
            Option.some(user.id)
          )
          assert.deepStrictEqual(
            yield* store.tokens.consume("email-confirmation", "tok-1", at()),
            Option.none()
          )
        })
      )

      it.effect("are spent once when consumed concurrently", () =>
        Effect.gen(function* () {
          const { store, user } = yield* owner
          const secret = randomUUID()
          yield* store.tokens.issue("password-reset", user.id, secret, at(60_000))
          const results = yield* Effect.all(
            Array.from({ length: 8 }, () => store.tokens.consume("password-reset", secret, at())),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(results.filter(Option.isSome).length, 1)
        })
      )

      it.effect("are replaced by a newer token of the same kind", () =>
        Effect.gen(function* () {
          const { store, user } = yield* owner
          const older = randomUUID()
          const newer = randomUUID()
          yield* store.tokens.issue("password-reset", user.id, older, at(60_000))
          yield* store.tokens.issue("password-reset", user.id, newer, at(120_000))
          assert.deepStrictEqual(yield* store.tokens.consume("password-reset", older, at()), Option.none())
          assert.deepStrictEqual(
            yield* store.tokens.consume("password-reset", newer, at()),
            Option.some(user.id)
          )
        })
      )

      it.effect("are kept per kind: a token of one kind neither replaces nor answers for the other", () =>
        Effect.gen(function* () {
          const { store, user } = yield* owner
          const confirmation = randomUUID()
          const reset = randomUUID()
          yield* store.tokens.issue("email-confirmation", user.id, confirmation, at(60_000))
          yield* store.tokens.issue("password-reset", user.id, reset, at(60_000))
          assert.deepStrictEqual(
            yield* store.tokens.consume("password-reset", confirmation, at()),
            Option.none()
          )
          assert.deepStrictEqual(
            yield* store.tokens.consume("email-confirmation", confirmation, at()),
            Option.some(user.id)
          )
          assert.deepStrictEqual(
            yield* store.tokens.consume("password-reset", reset, at()),
            Option.some(user.id)
          )
        })
      )

      it.effect("are not consumable once expired", () =>
        Effect.gen(function* () {
          const { store, user } = yield* owner
          const other = yield* store.users.insert(makeUser(), "hash")
          const expired = randomUUID()
          const boundary = randomUUID()
          yield* store.tokens.issue("email-confirmation", user.id, expired, at(1000))
          yield* store.tokens.issue("email-confirmation", other.id, boundary, at(1000))
          assert.deepStrictEqual(
            yield* store.tokens.consume("email-confirmation", expired, at(1001)),
            Option.none()
          )
          assert.deepStrictEqual(
            yield* store.tokens.consume("email-confirmation", boundary, at(1000)),
            Option.none()
          )
          // Not even later with a clock that went backwards: an expired token is spent.
          assert.deepStrictEqual(
            yield* store.tokens.consume("email-confirmation", expired, at()),
            Option.none()
          )
        })
      )

      it.effect("find nothing for unknown tokens", () =>
        Effect.gen(function* () {
          const store = yield* Persistence
          assert.deepStrictEqual(
            yield* store.tokens.consume("password-reset", randomUUID(), at()),
            Option.none()
          )
        })
      )
    })

    describe("ended sessions", () => {
      const session = (userId: UserId, digest = `d${token()}`, issuedAt = at(-60_000)) => ({
        digest,
        userId,
        issuedAt
      })

      it.effect("are known until they expire; adding one twice is harmless", () =>
        Effect.gen(function* () {
          const { store, user } = yield* owner
          const ended = session(user.id)
          assert.isFalse(yield* store.endedSessions.isEnded(ended, at()))
          yield* store.endedSessions.add(ended.digest, user.id, at(60_000), at())
          yield* store.endedSessions.add(ended.digest, user.id, at(60_000), at())
          assert.isTrue(yield* store.endedSessions.isEnded(ended, at()))
          assert.isTrue(yield* store.endedSessions.isEnded(ended, at(59_999)))
          assert.isFalse(yield* store.endedSessions.isEnded(ended, at(60_000)))
          assert.isFalse(yield* store.endedSessions.isEnded(session(user.id), at()))
        })
      )

      it.effect(
        "go with their account, and are not recorded for an unknown account or an expired session",
        () =>
          Effect.gen(function* () {
            const { store, user } = yield* owner
            const ended = session(user.id)
            yield* store.endedSessions.add(ended.digest, user.id, at(60_000), at())
            yield* store.users.delete(user.id)
            assert.isFalse(yield* store.endedSessions.isEnded(ended, at()))
            const stranger = session(UserId.make(randomUUID()))
            yield* store.endedSessions.add(stranger.digest, stranger.userId, at(60_000), at())
            assert.isFalse(yield* store.endedSessions.isEnded(stranger, at()))
            const { user: other } = yield* owner
            const expired = session(other.id)
            yield* store.endedSessions.add(expired.digest, other.id, at(1000), at(1000))
            assert.isFalse(yield* store.endedSessions.isEnded(expired, at()))
          })
      )

      it.effect("a new password ends the sessions issued in an earlier second, not the later ones", () =>
        Effect.gen(function* () {
          const { store, user } = yield* owner
          const before = session(user.id, undefined, at(9_000))
          const sameSecond = session(user.id, undefined, at(10_000))
          const after = session(user.id, undefined, at(11_000))
          assert.isFalse(yield* store.endedSessions.isEnded(before, at(20_000)))
          yield* store.users.setPasswordHash(user.id, "new-hash", at(10_400))
          assert.isTrue(yield* store.endedSessions.isEnded(before, at(20_000)))
          assert.isFalse(yield* store.endedSessions.isEnded(sameSecond, at(20_000)))
          assert.isFalse(yield* store.endedSessions.isEnded(after, at(20_000)))
          // Another account's sessions are not touched.
          const { user: other } = yield* owner
          assert.isFalse(
            yield* store.endedSessions.isEnded(session(other.id, undefined, at(9_000)), at(20_000))
          )
        })
      )
    })

    describe("ssh keys", () => {
      it.effect("inserts, finds, lists and deletes keys", () =>
        Effect.gen(function* () {
          const { store, user } = yield* owner
          const first = yield* store.keys.insert(makeKey(user.id, { createdAt: at(1), updatedAt: at(1) }))
          const second = yield* store.keys.insert(makeKey(user.id, { createdAt: at(2), updatedAt: at(2) }))
          assert.deepStrictEqual(yield* store.keys.findById(first.id), Option.some(first))
          assert.deepStrictEqual(yield* store.keys.findByFingerprint(second.fingerprint), Option.some(second))
          assert.deepStrictEqual(yield* store.keys.listByUser(user.id), [first, second])
          const all = yield* store.keys.list()
          assert.deepStrictEqual(
            all.filter((k) => k.userId === user.id),
            [first, second]
          )

          yield* store.keys.delete(first.id)
          assert.isTrue(Option.isNone(yield* store.keys.findById(first.id)))
          assert.deepStrictEqual(yield* store.keys.listByUser(user.id), [second])
          assertNotFound(yield* Effect.flip(store.keys.delete(first.id)), "sshKey", first.id)
        })
      )

      it.effect("refuses a fingerprint that any account registered", () =>
        Effect.gen(function* () {
          const { store, user } = yield* owner
          const other = yield* store.users.insert(makeUser(), "hash")
          const key = yield* store.keys.insert(makeKey(user.id))
          assertConflict(
            yield* Effect.flip(store.keys.insert(makeKey(other.id, { fingerprint: key.fingerprint }))),
            "sshKey"
          )
          assertConflict(
            yield* Effect.flip(store.keys.insert(makeKey(user.id, { fingerprint: key.fingerprint }))),
            "sshKey"
          )
          assert.deepStrictEqual(yield* store.keys.listByUser(other.id), [])
        })
      )

      it.effect("finds nothing for unknown keys", () =>
        Effect.gen(function* () {
          const { store, user } = yield* owner
          assert.isTrue(Option.isNone(yield* store.keys.findById(SshKeyId.make(randomUUID()))))
          assert.isTrue(Option.isNone(yield* store.keys.findByFingerprint(makeKey(user.id).fingerprint)))
          assert.deepStrictEqual(yield* store.keys.listByUser(user.id), [])
        })
      )
    })

    describe("projects", () => {
      it.effect("inserts, finds and lists projects", () =>
        Effect.gen(function* () {
          const { store, user, project } = yield* owner
          const second = yield* store.projects.insert(
            makeProject(user.id, { createdAt: at(1), updatedAt: at(1) })
          )
          assert.deepStrictEqual(yield* store.projects.findById(project.id), Option.some(project))
          assert.deepStrictEqual(yield* store.projects.listByOwner(user.id), [project, second])
          const all = yield* store.projects.list()
          assert.deepStrictEqual(
            all.filter((p) => p.ownerId === user.id),
            [project, second]
          )
          assert.isTrue(Option.isNone(yield* store.projects.findById(ProjectId.make(randomUUID()))))
        })
      )

      it.effect("refuses a second project of the same name for one owner, not for two", () =>
        Effect.gen(function* () {
          const { store, user, project } = yield* owner
          assertConflict(
            yield* Effect.flip(store.projects.insert(makeProject(user.id, { name: project.name }))),
            "project"
          )
          const other = yield* store.users.insert(makeUser(), "hash")
          const same = yield* store.projects.insert(makeProject(other.id, { name: project.name }))
          assert.deepStrictEqual(yield* store.projects.findById(same.id), Option.some(same))
          assert.strictEqual((yield* store.projects.listByOwner(user.id)).length, 1)
        })
      )

      it.effect("updates the configuration", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          const config = new ProjectConfig({ env: { DATABASE_URL: "postgres://db/app", QUOTES: `"'\\` } })
          const updated = yield* store.projects.updateConfig(project.id, config, at(5000))
          assert.deepStrictEqual(updated, new Project({ ...project, config, updatedAt: at(5000) }))
          assert.deepStrictEqual(yield* store.projects.findById(project.id), Option.some(updated))
          const id = ProjectId.make(randomUUID())
          assertNotFound(yield* Effect.flip(store.projects.updateConfig(id, config, at())), "project", id)
        })
      )

      it.effect("deletes a project once", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          yield* store.projects.delete(project.id)
          assert.isTrue(Option.isNone(yield* store.projects.findById(project.id)))
          assertNotFound(yield* Effect.flip(store.projects.delete(project.id)), "project", project.id)
        })
      )
    })

    describe("builds", () => {
      it.effect("inserts and finds a build, log included", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          const build = yield* store.builds.insert(makeBuild(project.id, { log: "cloning\n" }))
          assert.deepStrictEqual(yield* store.builds.findById(build.id), Option.some(build))
          assert.isTrue(Option.isNone(yield* store.builds.findById(BuildId.make(randomUUID()))))
        })
      )

      it.effect("appends to the log in order", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          const build = yield* store.builds.insert(makeBuild(project.id))
          for (const line of ["step 1\n", "step 2\n", "ünïcødé ✓\n", ""])
            yield* store.builds.appendLog(build.id, line)
          const found = Option.getOrThrow(yield* store.builds.findById(build.id))
          assert.strictEqual(found.log, "step 1\nstep 2\nünïcødé ✓\n")
          // Appending to a build that does not exist does nothing.
          yield* store.builds.appendLog(BuildId.make(randomUUID()), "lost\n")
        })
      )

      it.effect("updates only the fields given; null clears a field", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          const build = yield* store.builds.insert(makeBuild(project.id, { log: "a\n" }))
          const running = yield* store.builds.update(build.id, { status: "running", startedAt: at(10) })
          assert.deepStrictEqual(running, new Build({ ...build, status: "running", startedAt: at(10) }))
          const done = yield* store.builds.update(build.id, {
            status: "succeeded",
            image: "paas/app:1",
            finishedAt: at(20)
          })
          assert.deepStrictEqual(
            done,
            new Build({
              ...build,
              status: "succeeded",
              image: "paas/app:1",
              startedAt: at(10),
              finishedAt: at(20)
            })
          )
          const cleared = yield* store.builds.update(build.id, { image: null, error: "boom" })
          assert.strictEqual(cleared.image, null)
          assert.strictEqual(cleared.error, "boom")
          assert.strictEqual(cleared.status, "succeeded")
          assert.deepStrictEqual(yield* store.builds.update(build.id, {}), cleared)
          assert.deepStrictEqual(yield* store.builds.findById(build.id), Option.some(cleared))

          const id = BuildId.make(randomUUID())
          assertNotFound(yield* Effect.flip(store.builds.update(id, { status: "failed" })), "build", id)
          assertNotFound(yield* Effect.flip(store.builds.update(id, {})), "build", id)
        })
      )

      it.effect("lists a project's builds newest first, up to a limit", () =>
        Effect.gen(function* () {
          const { store, user, project } = yield* owner
          const other = yield* store.projects.insert(makeProject(user.id))
          const b1 = yield* store.builds.insert(makeBuild(project.id, { createdAt: at(1) }))
          const b3 = yield* store.builds.insert(makeBuild(project.id, { createdAt: at(3) }))
          const b2 = yield* store.builds.insert(makeBuild(project.id, { createdAt: at(2) }))
          yield* store.builds.insert(makeBuild(other.id, { createdAt: at(4) }))
          assert.deepStrictEqual(yield* store.builds.listByProject(project.id, 10), [b3, b2, b1])
          assert.deepStrictEqual(yield* store.builds.listByProject(project.id, 2), [b3, b2])
          assert.deepStrictEqual(yield* store.builds.listByProject(project.id, 0), [])
        })
      )

      it.effect("breaks ties between builds of the same instant by insertion order", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          const first = yield* store.builds.insert(makeBuild(project.id, { createdAt: at(7) }))
          const second = yield* store.builds.insert(makeBuild(project.id, { createdAt: at(7) }))
          const third = yield* store.builds.insert(makeBuild(project.id, { createdAt: at(7) }))
          assert.deepStrictEqual(yield* store.builds.listByProject(project.id, 10), [third, second, first])
        })
      )

      it.effect("lists builds by status", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          const statuses: ReadonlyArray<BuildStatus> = [
            "queued",
            "running",
            "succeeded",
            "failed",
            "cancelled"
          ]
          const builds = yield* Effect.forEach(statuses, (status) =>
            store.builds.insert(makeBuild(project.id, { status }))
          )
          const mine = (list: ReadonlyArray<Build>) =>
            list
              .filter((b) => b.projectId === project.id)
              .map((b) => b.status)
              .sort()
          assert.deepStrictEqual(mine(yield* store.builds.listByStatus(["queued", "running"])), [
            "queued",
            "running"
          ])
          assert.deepStrictEqual(mine(yield* store.builds.listByStatus(["failed"])), ["failed"])
          assert.deepStrictEqual(mine(yield* store.builds.listByStatus([])), [])
          const [queued] = builds
          yield* store.builds.update(queued!.id, { status: "running" })
          assert.deepStrictEqual(mine(yield* store.builds.listByStatus(["queued"])), [])
        })
      )
    })

    describe("releases", () => {
      it.effect("numbers releases 1, 2, 3 within each project", () =>
        Effect.gen(function* () {
          const { store, user, project } = yield* owner
          const other = yield* store.projects.insert(makeProject(user.id))
          const build = yield* store.builds.insert(makeBuild(project.id, { status: "succeeded" }))
          const r1 = yield* store.releases.insert(
            makeRelease(project.id, { buildId: build.id, createdAt: at(1) })
          )
          const r2 = yield* store.releases.insert(makeRelease(project.id, { createdAt: at(2) }))
          const o1 = yield* store.releases.insert(makeRelease(other.id))
          const r3 = yield* store.releases.insert(makeRelease(project.id, { createdAt: at(3) }))
          assert.deepStrictEqual([r1.number, r2.number, r3.number, o1.number], [1, 2, 3, 1])
          assert.strictEqual(r1.buildId, build.id)
          assert.deepStrictEqual(yield* store.releases.findById(r2.id), Option.some(r2))
          assert.deepStrictEqual(yield* store.releases.findByNumber(project.id, 3), Option.some(r3))
          assert.deepStrictEqual(yield* store.releases.findByNumber(other.id, 1), Option.some(o1))
          assert.isTrue(Option.isNone(yield* store.releases.findByNumber(other.id, 2)))
          assert.isTrue(Option.isNone(yield* store.releases.findById(ReleaseId.make(randomUUID()))))
          assert.deepStrictEqual(yield* store.releases.listByProject(project.id), [r3, r2, r1])
        })
      )

      it.effect("keeps every field of a release", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          const input = makeRelease(project.id, {
            run: new RunSettings({
              port: null,
              command: null,
              healthcheckPath: "/healthz",
              healthcheckTimeoutMs: 5000,
              memoryBytes: 268_435_456,
              cpus: 0.5,
              replicas: 2,
              env: {}
            })
          })
          const stored = yield* store.releases.insert(input)
          assert.deepStrictEqual(stored, new Release({ ...input, number: 1 }))
          assert.deepStrictEqual(yield* store.releases.findById(input.id), Option.some(stored))
        })
      )

      it.effect("gives concurrent inserts distinct numbers", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          const releases = yield* Effect.all(
            Array.from({ length: 12 }, () => store.releases.insert(makeRelease(project.id))),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual(
            releases.map((r) => r.number).sort((a, b) => a - b),
            Array.from({ length: 12 }, (_, i) => i + 1)
          )
          assert.strictEqual((yield* store.releases.listByProject(project.id)).length, 12)
        })
      )
    })

    describe("deployments", () => {
      it.effect("creates a deployment on the first setDesired, with status unknown", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          assert.isTrue(Option.isNone(yield* store.deployments.find(project.id)))
          const release = yield* store.releases.insert(makeRelease(project.id))
          const deployment = yield* store.deployments.setDesired(
            project.id,
            { releaseId: release.id, desired: "running" },
            at(100)
          )
          assert.deepStrictEqual(
            deployment,
            new Deployment({
              projectId: project.id,
              releaseId: release.id,
              desired: "running",
              status: "unknown",
              message: null,
              failedSpec: null,
              updatedAt: at(100)
            })
          )
          assert.deepStrictEqual(yield* store.deployments.find(project.id), Option.some(deployment))
        })
      )

      it.effect("records observations; an explicit setDesired clears failedSpec and keeps the status", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          const release = yield* store.releases.insert(makeRelease(project.id))
          yield* store.deployments.setDesired(
            project.id,
            { releaseId: release.id, desired: "running" },
            at(1)
          )
          yield* store.deployments.setObserved(
            project.id,
            { status: "failed", message: "health check timed out", failedSpec: "spec-1" },
            at(2)
          )
          const failed = Option.getOrThrow(yield* store.deployments.find(project.id))
          assert.strictEqual(failed.status, "failed")
          assert.strictEqual(failed.message, "health check timed out")
          assert.strictEqual(failed.failedSpec, "spec-1")
          assert.deepStrictEqual(failed.updatedAt, at(2))

          const retried = yield* store.deployments.setDesired(
            project.id,
            { releaseId: release.id, desired: "running" },
            at(3)
          )
          assert.strictEqual(retried.failedSpec, null)
          assert.strictEqual(retried.status, "failed")
          assert.strictEqual(retried.message, "health check timed out")
          assert.deepStrictEqual(retried.updatedAt, at(3))

          const stopped = yield* store.deployments.setDesired(
            project.id,
            { releaseId: null, desired: "stopped" },
            at(4)
          )
          assert.strictEqual(stopped.releaseId, null)
          assert.strictEqual(stopped.desired, "stopped")
        })
      )

      it.effect("ignores observations of a project without a deployment", () =>
        Effect.gen(function* () {
          const { store, project } = yield* owner
          yield* store.deployments.setObserved(
            project.id,
            { status: "running", message: null, failedSpec: null },
            at()
          )
          assert.isTrue(Option.isNone(yield* store.deployments.find(project.id)))
          yield* store.deployments.setObserved(
            ProjectId.make(randomUUID()),
            { status: "running", message: null, failedSpec: null },
            at()
          )
        })
      )

      it.effect("reads deployments with their desired release", () =>
        Effect.gen(function* () {
          const { store, user, project } = yield* owner
          const idle = yield* store.projects.insert(makeProject(user.id))
          const never = yield* store.projects.insert(makeProject(user.id))
          yield* store.releases.insert(makeRelease(project.id))
          const release = yield* store.releases.insert(makeRelease(project.id))
          const deployed = yield* store.deployments.setDesired(
            project.id,
            { releaseId: release.id, desired: "running" },
            at()
          )
          const stopped = yield* store.deployments.setDesired(
            idle.id,
            { releaseId: null, desired: "stopped" },
            at()
          )

          const all = yield* store.deployments.listDesired()
          assert.deepStrictEqual(
            all.find((d) => d.deployment.projectId === project.id),
            { deployment: deployed, release }
          )
          assert.deepStrictEqual(
            all.find((d) => d.deployment.projectId === idle.id),
            { deployment: stopped, release: null }
          )
          assert.isUndefined(all.find((d) => d.deployment.projectId === never.id))

          assert.deepStrictEqual(
            yield* store.deployments.findDesired(project.id),
            Option.some({ deployment: deployed, release })
          )
          assert.deepStrictEqual(
            yield* store.deployments.findDesired(idle.id),
            Option.some({ deployment: stopped, release: null })
          )
          assert.isTrue(Option.isNone(yield* store.deployments.findDesired(never.id)))
        })
      )
    })

    describe("cascades", () => {
      // Everything a user owns: a key, a token, and a project with a build, a release and a deployment.
      const populate = Effect.gen(function* () {
        const { store, user, project } = yield* owner
        const key = yield* store.keys.insert(makeKey(user.id))
        const secret = randomUUID()
        yield* store.tokens.issue("email-confirmation", user.id, secret, at(60_000))
        const build = yield* store.builds.insert(makeBuild(project.id))
        yield* store.builds.appendLog(build.id, "log\n")
        const release = yield* store.releases.insert(makeRelease(project.id, { buildId: build.id }))
        yield* store.deployments.setDesired(project.id, { releaseId: release.id, desired: "running" }, at())
        return { store, user, project, key, secret, build, release }
      })

      it.effect("deleting a user deletes their keys, tokens, projects and all under them", () =>
        Effect.gen(function* () {
          const { store, user, project, key, secret, build, release } = yield* populate
          const bystander = yield* populate
          yield* store.users.delete(user.id)

          assert.isTrue(Option.isNone(yield* store.keys.findById(key.id)))
          assert.deepStrictEqual(yield* store.keys.listByUser(user.id), [])
          assert.isTrue(Option.isNone(yield* store.projects.findById(project.id)))
          assert.deepStrictEqual(yield* store.projects.listByOwner(user.id), [])
          assert.isTrue(Option.isNone(yield* store.builds.findById(build.id)))
          assert.isTrue(Option.isNone(yield* store.releases.findById(release.id)))
          assert.isTrue(Option.isNone(yield* store.deployments.find(project.id)))
          assert.isUndefined(
            (yield* store.deployments.listDesired()).find((d) => d.deployment.projectId === project.id)
          )
          assert.deepStrictEqual(
            yield* store.tokens.consume("email-confirmation", secret, at()),
            Option.none()
          )

          // Another account is untouched.
          assert.isTrue(Option.isSome(yield* store.keys.findById(bystander.key.id)))
          assert.isTrue(Option.isSome(yield* store.builds.findById(bystander.build.id)))
          assert.isTrue(Option.isSome(yield* store.deployments.find(bystander.project.id)))
        })
      )

      it.effect("deleting a project deletes its builds, releases and deployment, nothing else", () =>
        Effect.gen(function* () {
          const { store, user, project, key, build, release } = yield* populate
          const sibling = yield* store.projects.insert(makeProject(user.id))
          const siblingRelease = yield* store.releases.insert(makeRelease(sibling.id))
          yield* store.projects.delete(project.id)

          assert.isTrue(Option.isNone(yield* store.builds.findById(build.id)))
          assert.deepStrictEqual(yield* store.builds.listByProject(project.id, 10), [])
          assert.isTrue(Option.isNone(yield* store.releases.findById(release.id)))
          assert.deepStrictEqual(yield* store.releases.listByProject(project.id), [])
          assert.isTrue(Option.isNone(yield* store.deployments.find(project.id)))
          assert.isTrue(Option.isNone(yield* store.deployments.findDesired(project.id)))

          assert.isTrue(Option.isSome(yield* store.users.findById(user.id)))
          assert.isTrue(Option.isSome(yield* store.keys.findById(key.id)))
          assert.deepStrictEqual(yield* store.projects.listByOwner(user.id), [sibling])
          assert.deepStrictEqual(
            yield* store.releases.findById(siblingRelease.id),
            Option.some(siblingRelease)
          )
        })
      )
    })
  })
