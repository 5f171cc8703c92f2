import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { ImageBuilder } from "../src/ImageBuilder.js"
import { Persistence } from "../src/Persistence.js"
import * as PlatformModule from "../src/Platform.js"
import { Platform } from "../src/Platform.js"
import { Reconciler } from "../src/Reconciler.js"
import { RunSettings } from "../src/Release.js"
import { RepoStore } from "../src/RepoStore.js"
import { Router } from "../src/Router.js"
import {
  InMemoryImageBuilder,
  InMemoryMailer,
  InMemoryRouter,
  InMemoryRuntime,
  TestPlatform
} from "../src/testing.js"
import { password, push, signUp } from "./support.js"

const ED25519 =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDtx5LGOvO7T9kfzdjhqCgbnqcbZDE8BDWuDBtPiJ4He alice@laptop"
const ED25519_2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHXRl3mGvFUNbS2/0Yf4Gj1ufSLK2AZiVBy1S1f8CDsO second"

const withPlatform = <A, E>(effect: Effect.Effect<A, E, TestPlatform.Services>) =>
  Effect.provide(effect, TestPlatform.layer({ config: { adminEmail: Option.some("root@example.com") } }))

describe("Platform main path", () => {
  it.scoped(
    "register → confirm → login → key → project → push → deploy → redeploy → rollback → stop → delete",
    () =>
      withPlatform(
        Effect.gen(function* () {
          const platform = yield* Platform
          const routes = yield* InMemoryRouter.Routes
          const runtime = yield* InMemoryRuntime.RuntimeControls
          const repoStore = yield* RepoStore
          const store = yield* Persistence

          const { principal, user } = yield* signUp("alice")
          assert.isTrue(user.emailConfirmed)
          assert.isFalse(principal.isAdmin)

          const key = yield* platform.addSshKey(principal, { value: ED25519, name: "laptop" })
          assert.match(key.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/)
          const byKey = yield* platform.authenticateSshKey({
            type: "ssh-ed25519",
            blob: Buffer.from(ED25519.split(" ")[1]!, "base64")
          })
          assert.strictEqual(byKey.userId, principal.userId)

          const project = yield* platform.createProject(principal, { name: "hello" })
          assert.isTrue(yield* repoStore.exists(project.id))

          // push → build → release → reconcile → running, routed
          const first = yield* push(principal, project.id, { "index.js": "console.log('v1')" })
          assert.strictEqual(first.result._tag, "Deployed")
          assert.isTrue(first.lines.some((l) => l.startsWith("Received 1 files")))
          assert.isTrue(first.lines.at(-1)!.includes(`http://${project.id}.user-app.localhost:8000`))
          const [build] = yield* platform.builds(principal, project.id)
          assert.strictEqual(build!.status, "succeeded")
          assert.strictEqual(build!.commit, first.commit)
          assert.include(build!.log, "Built memory/")
          const [status1] = yield* platform.status(principal, [project.id])
          assert.strictEqual(status1!.status, "running")
          const route1 = yield* routes.lookup(`${project.id}.user-app.localhost`)
          assert.isDefined(route1)

          // redeploy with new env: a new release with the same image, a new instance, the old one gone
          const deployed = yield* platform.deploy(principal, project.id, { GREETING: "hi" })
          assert.strictEqual(deployed._tag, "Deployed")
          if (deployed._tag !== "Deployed") return
          assert.strictEqual(deployed.release.number, 2)
          assert.strictEqual(deployed.status, "running")
          const instances = yield* runtime.instances
          assert.strictEqual(instances.length, 1)
          const spec = yield* runtime.specOf(instances[0]!.id)
          assert.deepStrictEqual(spec?.env, { GREETING: "hi" })
          const route2 = yield* routes.lookup(`${project.id}.user-app.localhost`)
          assert.strictEqual(route2?.instanceId, instances[0]!.id)
          assert.notStrictEqual(route2?.instanceId, route1?.instanceId)
          assert.deepStrictEqual((yield* platform.getProject(principal, project.id)).config.env, {
            GREETING: "hi"
          })

          // rollback to v1: env back to empty, release v3
          const rolledBack = yield* platform.rollback(principal, project.id, 1)
          assert.strictEqual(rolledBack._tag === "Deployed" && rolledBack.release.number, 3)
          const [current] = yield* runtime.instances
          assert.deepStrictEqual((yield* runtime.specOf(current!.id))?.env, {})
          assert.deepStrictEqual(
            (yield* platform.releases(principal, project.id)).map((r) => r.description),
            ["Rollback to v1", "Deploy with new environment", `Deploy ${first.commit.slice(0, 12)}`]
          )

          // logs and statistics
          yield* runtime.emit(project.id, "listening on 8080")
          const logs = yield* Stream.runCollect(platform.logs(principal, project.id, { tail: 1 }))
          assert.deepStrictEqual(
            Chunk.toArray(logs).map((l) => l.line),
            ["listening on 8080"]
          )
          const stats = yield* platform.statistics(principal, project.id)
          assert.isAbove(stats.memoryLimitBytes, 0)

          // stop
          yield* platform.stop(principal, project.id)
          assert.strictEqual((yield* platform.status(principal, [project.id]))[0]!.status, "stopped")
          assert.lengthOf(yield* runtime.instances, 0)
          assert.isUndefined(yield* routes.lookup(`${project.id}.user-app.localhost`))

          // delete: record, repository, releases, builds all gone
          yield* platform.deleteProject(principal, project.id)
          assert.isFalse(yield* repoStore.exists(project.id))
          assert.isTrue(Option.isNone(yield* store.projects.findById(project.id)))
          assert.lengthOf(yield* store.releases.listByProject(project.id), 0)
          assert.lengthOf(yield* store.builds.listByProject(project.id, 10), 0)
          const gone = yield* Effect.either(platform.getProject(principal, project.id))
          assert.isTrue(Either.isLeft(gone) && gone.left._tag === "NotFound")
        })
      )
  )

  it.scoped("a stopped app starts again on deploy", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const { principal } = yield* signUp("bob")
        const project = yield* platform.createProject(principal, { name: "app" })
        yield* push(principal, project.id, { "index.js": "1" })
        yield* platform.stop(principal, project.id)
        const result = yield* platform.deploy(principal, project.id, {})
        assert.isTrue(result._tag === "Deployed" && result.status === "running")
      })
    )
  )

  it.scoped("deploy before the first push saves the env and waits for a push", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const { principal } = yield* signUp("carol")
        const project = yield* platform.createProject(principal, { name: "app" })
        const result = yield* platform.deploy(principal, project.id, { A: "1" })
        assert.strictEqual(result._tag, "Pending")
        const pushed = yield* push(principal, project.id, { "index.js": "1" })
        assert.strictEqual(pushed.result._tag, "Deployed")
        const runtime = yield* InMemoryRuntime.RuntimeControls
        const [instance] = yield* runtime.instances
        assert.deepStrictEqual((yield* runtime.specOf(instance!.id))?.env, { A: "1" })
        assert.strictEqual((yield* platform.status(principal, [project.id]))[0]!.status, "running")
      })
    )
  )

  it.scoped("a push to another branch is not deployed", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const { principal } = yield* signUp("dave")
        const project = yield* platform.createProject(principal, { name: "app" })
        const repos = yield* (yield* Effect.promise(() => import("../src/testing.js"))).InMemoryRepoStore
          .Repos
        const update = yield* repos.push(project.id, { a: "1" }, { branch: "feature" })
        yield* repos.push(project.id, { a: "1" }) // main exists, so main is the deploy branch
        const result = yield* platform.pushReceived(principal, project.id, [update], () => Effect.void)
        assert.strictEqual(result._tag, "Ignored")
        assert.lengthOf(yield* platform.builds(principal, project.id), 0)
      })
    )
  )
})

describe("Platform failures", () => {
  it.scoped(
    "an unconfirmed account cannot log in; a wrong password is refused alike for unknown emails",
    () =>
      withPlatform(
        Effect.gen(function* () {
          const platform = yield* Platform
          yield* platform.register({
            username: "erin",
            email: "erin@example.com",
            password: Redacted.make(password)
          })
          const unconfirmed = yield* Effect.flip(
            platform.login({ email: "erin@example.com", password: Redacted.make(password), client: "a" })
          )
          assert.strictEqual(
            unconfirmed._tag === "AuthenticationError" && unconfirmed.reason,
            "email-not-confirmed"
          )
          const wrong = yield* Effect.flip(
            platform.login({
              email: "erin@example.com",
              password: Redacted.make("Wrong-pass1!"),
              client: "a"
            })
          )
          const unknown = yield* Effect.flip(
            platform.login({ email: "nobody@example.com", password: Redacted.make(password), client: "a" })
          )
          assert.strictEqual(wrong._tag === "AuthenticationError" && wrong.reason, "invalid-credentials")
          assert.deepStrictEqual(wrong, unknown)
        })
      )
  )

  it.scoped("confirmation tokens are single-use", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const outbox = yield* InMemoryMailer.Outbox
        yield* platform.register({
          username: "fay",
          email: "fay@example.com",
          password: Redacted.make(password)
        })
        const token = InMemoryMailer.tokenIn((yield* outbox.latestTo("fay@example.com"))!.text)!
        yield* platform.confirmEmail(token)
        const again = yield* Effect.flip(platform.confirmEmail(token))
        assert.strictEqual(again._tag, "NotFound")
      })
    )
  )

  it.scoped("password reset: a new token replaces the old, a used token is spent", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const outbox = yield* InMemoryMailer.Outbox
        yield* signUp("gus")
        yield* platform.requestPasswordReset("gus@example.com")
        const first = InMemoryMailer.tokenIn((yield* outbox.latestTo("gus@example.com"))!.text)!
        yield* platform.requestPasswordReset("gus@example.com")
        const second = InMemoryMailer.tokenIn((yield* outbox.latestTo("gus@example.com"))!.text)!
        assert.notStrictEqual(first, second)
        const newPassword = Redacted.make("N3w-password!")
        assert.strictEqual((yield* Effect.flip(platform.resetPassword(first, newPassword)))._tag, "NotFound")
        const weak = yield* Effect.flip(platform.resetPassword(second, Redacted.make("short")))
        assert.isTrue(weak._tag === "ValidationError" && weak.field === "password")
        yield* platform.resetPassword(second, newPassword)
        assert.strictEqual((yield* Effect.flip(platform.resetPassword(second, newPassword)))._tag, "NotFound")
        yield* platform.login({ email: "gus@example.com", password: newPassword, client: "a" })
        // unknown emails are answered the same way, and send nothing
        const before = (yield* outbox.messages).length
        yield* platform.requestPasswordReset("nobody@example.com")
        assert.strictEqual((yield* outbox.messages).length, before)
      })
    )
  )

  it.scoped("login is rate limited per account", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        yield* signUp("hal")
        for (let i = 0; i < 10; i++)
          yield* Effect.flip(
            platform.login({
              email: "hal@example.com",
              password: Redacted.make("Wrong-pass1!"),
              client: `c${i}`
            })
          )
        const limited = yield* Effect.flip(
          platform.login({ email: "hal@example.com", password: Redacted.make(password), client: "other" })
        )
        assert.isTrue(limited._tag === "RateLimited" && limited.retryAfterSeconds > 0)
      })
    )
  )

  it.scoped("another user's project, key and app are NotFound; admins see them", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const alice = yield* signUp("alice")
        const mallory = yield* signUp("mallory")
        const admin = yield* signUp("root", "root@example.com")
        assert.isTrue(admin.principal.isAdmin)
        const project = yield* platform.createProject(alice.principal, { name: "secret" })
        const key = yield* platform.addSshKey(alice.principal, { value: ED25519 })
        const attempts: Array<Effect.Effect<unknown, { readonly _tag: string }>> = [
          platform.getProject(mallory.principal, project.id),
          platform.deleteProject(mallory.principal, project.id),
          platform.deploy(mallory.principal, project.id, {}),
          platform.stop(mallory.principal, project.id),
          platform.statistics(mallory.principal, project.id),
          platform.status(mallory.principal, [project.id]),
          platform.authorizeRepository(mallory.principal, project.id, "write"),
          platform.deleteSshKey(mallory.principal, key.id)
        ]
        for (const attempt of attempts) assert.strictEqual((yield* Effect.flip(attempt))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(platform.listUsers(mallory.principal)))._tag, "Forbidden")
        assert.strictEqual((yield* platform.getProject(admin.principal, project.id)).id, project.id)
        assert.lengthOf(yield* platform.listProjects(admin.principal), 1)
        assert.lengthOf(yield* platform.listSshKeys(admin.principal), 1)
        assert.lengthOf(yield* platform.listMyProjects(mallory.principal), 0)
      })
    )
  )

  it.scoped("a key is unique across accounts; a second key for one account works", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const alice = yield* signUp("alice")
        const bob = yield* signUp("bob")
        yield* platform.addSshKey(alice.principal, { value: ED25519 })
        yield* platform.addSshKey(alice.principal, { value: ED25519_2 })
        assert.strictEqual(
          (yield* Effect.flip(platform.addSshKey(bob.principal, { value: ED25519 })))._tag,
          "Conflict"
        )
        const bad = yield* Effect.flip(
          platform.addSshKey(bob.principal, {
            value: "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIDtx5LGOvO7T9kfzdjhqCgbnqcbZDE8BDWuDBtPiJ4He"
          })
        )
        assert.isTrue(bad._tag === "ValidationError" && bad.field === "value")
        assert.lengthOf(yield* platform.listMySshKeys(alice.principal), 2)
      })
    )
  )

  it.scoped("a failing build leaves the previous release desired and running", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const builds = yield* InMemoryImageBuilder.Builds
        const runtime = yield* InMemoryRuntime.RuntimeControls
        const { principal } = yield* signUp("ivy")
        const project = yield* platform.createProject(principal, { name: "app" })
        yield* push(principal, project.id, { v: "1" })
        const [before] = yield* runtime.instances
        yield* builds.failNext("SyntaxError: Unexpected token")
        const second = yield* push(principal, project.id, { v: "2" })
        assert.strictEqual(second.result._tag, "BuildFailed")
        assert.include(second.lines.at(-1)!, "SyntaxError")
        const [latestBuild] = yield* platform.builds(principal, project.id)
        assert.strictEqual(latestBuild!.status, "failed")
        assert.include(latestBuild!.log, "SyntaxError")
        assert.lengthOf(yield* platform.releases(principal, project.id), 1)
        assert.deepStrictEqual(yield* runtime.instances, [before])
        assert.strictEqual((yield* platform.status(principal, [project.id]))[0]!.status, "running")
      })
    )
  )

  it.scoped("a failing deploy keeps the old instance serving and says why", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const runtime = yield* InMemoryRuntime.RuntimeControls
        const routes = yield* InMemoryRouter.Routes
        const reconciler = yield* Reconciler
        const { principal } = yield* signUp("joe")
        const project = yield* platform.createProject(principal, { name: "app" })
        yield* push(principal, project.id, { v: "1" })
        const [old] = yield* runtime.instances
        yield* runtime.failNextStart("health check timed out after 30s")
        const second = yield* push(principal, project.id, { v: "2" })
        assert.strictEqual(second.result._tag, "DeployFailed")
        assert.include(second.lines.at(-1)!, "health check timed out")
        assert.deepStrictEqual(yield* runtime.instances, [old])
        assert.strictEqual((yield* routes.lookup(`${project.id}.user-app.localhost`))?.instanceId, old!.id)
        const store = yield* Persistence
        const deployment = Option.getOrThrow(yield* store.deployments.find(project.id))
        assert.include(deployment.message ?? "", "health check timed out")
        // the broken release is not retried on every pass
        const ops = yield* runtime.operations
        yield* reconciler.reconcileAll
        assert.deepStrictEqual(yield* runtime.operations, ops)
        // a first deploy that fails leaves the app failed, shown as stopped in PaaSTech terms
        const other = yield* platform.createProject(principal, { name: "other" })
        yield* runtime.failNextStart("exited with code 1")
        const failed = yield* push(principal, other.id, { v: "1" })
        assert.strictEqual(failed.result._tag, "DeployFailed")
        assert.strictEqual((yield* platform.status(principal, [other.id]))[0]!.status, "failed")
      })
    )
  )

  it.scoped("project names are unique per owner only", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const alice = yield* signUp("alice")
        const bob = yield* signUp("bob")
        yield* platform.createProject(alice.principal, { name: "web" })
        const dup = yield* Effect.flip(platform.createProject(alice.principal, { name: "web" }))
        assert.strictEqual(dup._tag, "Conflict")
        yield* platform.createProject(bob.principal, { name: "web" })
        const bad = yield* Effect.flip(platform.createProject(bob.principal, { name: "x".repeat(31) }))
        assert.isTrue(bad._tag === "ValidationError" && bad.field === "name")
      })
    )
  )

  it.scoped("registration validates each field by name and refuses duplicates", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const register = (username: string, email: string, pw: string) =>
          Effect.flip(platform.register({ username, email, password: Redacted.make(pw) }))
        const cases: Array<[string, string, string, string]> = [
          ["ab", "a@example.com", password, "username"],
          ["1abc", "a@example.com", password, "username"],
          ["abc-", "a@example.com", password, "username"],
          ["abc", "not-an-email", password, "email"],
          ["abc", `${"a".repeat(95)}@x.com`, password, "email"],
          ["abc", "a@example.com", "Sh0rt!", "password"],
          ["abc", "a@example.com", "alllowercase1!", "password"],
          ["abc", "a@example.com", `Aa1!${"x".repeat(69)}`, "password"]
        ]
        for (const [u, e, p, field] of cases) {
          const error = yield* register(u, e, p)
          assert.isTrue(error._tag === "ValidationError" && error.field === field, `${u} ${e} ${p}: ${field}`)
        }
        // the limits themselves are accepted
        yield* platform.register({
          username: "abc",
          email: "abc@example.com",
          password: Redacted.make(`Aa1!${"x".repeat(68)}`)
        })
        yield* platform.register({
          username: `a${"b".repeat(29)}`,
          email: "long@example.com",
          password: Redacted.make(password)
        })
        assert.strictEqual((yield* register("abc", "other@example.com", password))._tag, "Conflict")
        assert.strictEqual((yield* register("abd", "ABC@example.com", password))._tag, "Conflict")
      })
    )
  )

  it.scoped("a failed confirmation mail undoes the registration", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const outbox = yield* InMemoryMailer.Outbox
        yield* outbox.failNext("smtp down")
        const error = yield* Effect.flip(
          platform.register({ username: "kim", email: "kim@example.com", password: Redacted.make(password) })
        )
        assert.strictEqual(error._tag, "MailError")
        yield* signUp("kim")
      })
    )
  )

  it.scoped("deleting a user removes their projects, repositories, apps and routes", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const runtime = yield* InMemoryRuntime.RuntimeControls
        const router = yield* Router
        const repoStore = yield* RepoStore
        const admin = yield* signUp("root", "root@example.com")
        const { principal } = yield* signUp("leo")
        const project = yield* platform.createProject(principal, { name: "app" })
        yield* platform.addSshKey(principal, { value: ED25519 })
        yield* push(principal, project.id, { v: "1" })
        yield* platform.deleteUser(admin.principal, "leo")
        assert.lengthOf(yield* runtime.instances, 0)
        assert.lengthOf(yield* router.list(), 0)
        assert.isFalse(yield* repoStore.exists(project.id))
        assert.lengthOf(yield* platform.listSshKeys(admin.principal), 0)
        const error = yield* Effect.flip(platform.authenticate((yield* Effect.succeed(principal)) && "x"))
        assert.strictEqual(error._tag, "AuthenticationError")
      })
    )
  )
})

describe("Platform deploys", () => {
  it.scoped("says so in the push output when paas.yaml asks for replicas this version does not start", () =>
    Effect.provide(
      Effect.gen(function* () {
        const platform = yield* Platform
        const { principal } = yield* signUp("rex")
        const project = yield* platform.createProject(principal, { name: "app" })
        const { result, lines } = yield* push(principal, project.id, { v: "1" })
        assert.strictEqual(result._tag, "Deployed")
        assert.isTrue(
          lines.some((line) => line.includes("run.replicas is 3")),
          lines.join("\n")
        )
      }),
      TestPlatform.layer({
        builder: Layer.effect(
          ImageBuilder,
          Effect.map(ImageBuilder, (inner) =>
            ImageBuilder.of({
              ...inner,
              build: (request, log) =>
                Effect.map(inner.build(request, log), (built) => ({
                  ...built,
                  run: new RunSettings({ ...RunSettings.defaults, replicas: 3 })
                }))
            })
          )
        ).pipe(Layer.provide(InMemoryImageBuilder.layer))
      })
    )
  )
})

describe("Platform custom domains", () => {
  it.scoped("route the app at its domains too; kept by env deploys and rollbacks; one project's each", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const router = yield* Router
        const { principal } = yield* signUp("dee")
        const { principal: stranger } = yield* signUp("eli")
        const project = yield* platform.createProject(principal, { name: "shop" })
        yield* push(principal, project.id, { v: "1" })
        const saved = yield* platform.setDomains(principal, project.id, [
          "Shop.Example.com.",
          "shop.example.com"
        ])
        assert.deepStrictEqual(saved.config.domains, ["shop.example.com"])
        const hosts = () => Effect.map(router.list(project.id), (routes) => routes[0]?.hosts ?? [])
        assert.deepStrictEqual(yield* hosts(), [`${project.id}.user-app.localhost`, "shop.example.com"])

        yield* platform.deploy(principal, project.id, { GREETING: "hi" })
        assert.include(yield* hosts(), "shop.example.com")
        yield* platform.rollback(principal, project.id, 1)
        assert.include(yield* hosts(), "shop.example.com")
        assert.deepStrictEqual((yield* platform.getProject(principal, project.id)).config.domains, [
          "shop.example.com"
        ])

        const other = yield* platform.createProject(stranger, { name: "copy" })
        const taken = yield* Effect.flip(platform.setDomains(stranger, other.id, ["shop.example.com"]))
        assert.strictEqual(taken._tag, "Conflict")
        for (const bad of [
          "not a domain",
          "localhost",
          `x.${project.id}.user-app.localhost`,
          "127.0.0.1",
          "10.1.2.3"
        ]) {
          const refused = yield* Effect.flip(platform.setDomains(stranger, other.id, [bad]))
          assert.strictEqual(refused._tag, "ValidationError", bad)
        }
        assert.strictEqual(
          (yield* Effect.flip(platform.setDomains(stranger, project.id, ["mine.example.com"])))._tag,
          "NotFound"
        )
        // Given up, a domain is free for another project.
        yield* platform.setDomains(principal, project.id, [])
        assert.deepStrictEqual(yield* hosts(), [`${project.id}.user-app.localhost`])
        yield* platform.setDomains(stranger, other.id, ["shop.example.com"])
      })
    )
  )
})

describe("Platform sessions", () => {
  it.scoped(
    "logout ends one session at once here, and on another server sharing the store within accountRecheck",
    () =>
      withPlatform(
        Effect.gen(function* () {
          const platform = yield* Platform
          // A second server process on the same database and secret.
          const other = yield* PlatformModule.make
          const { principal, token } = yield* signUp("ivy")
          const second = yield* platform.login({
            email: "ivy@example.com",
            password: Redacted.make(password),
            client: "127.0.0.1"
          })
          yield* other.authenticate(token)
          // Another account's session is not this principal's to end.
          const { token: strangerToken } = yield* signUp("sam")
          yield* platform.logout(principal, strangerToken)
          yield* platform.authenticate(strangerToken)

          yield* platform.logout(principal, token)
          const refused = yield* Effect.flip(platform.authenticate(token))
          assert.strictEqual(refused.reason, "invalid-token")
          assert.include(refused.message, "ended")
          // The other server checked this session a moment ago; it asks the store again once
          // accountRecheck has passed.
          yield* other.authenticate(token)
          yield* TestClock.adjust("5 seconds")
          assert.strictEqual((yield* Effect.flip(other.authenticate(token)))._tag, "AuthenticationError")
          assert.deepStrictEqual(yield* platform.authenticate(second.token), principal)
          assert.deepStrictEqual(yield* other.authenticate(second.token), principal)
        })
      )
  )
})

describe("Platform password reset", () => {
  it.scoped(
    "a new password ends every earlier session of the account, here and, within accountRecheck, elsewhere",
    () =>
      withPlatform(
        Effect.gen(function* () {
          const platform = yield* Platform
          const other = yield* PlatformModule.make
          const outbox = yield* InMemoryMailer.Outbox
          const { principal, token } = yield* signUp("uma")
          const { token: strangerToken } = yield* signUp("vic")
          yield* other.authenticate(token)
          yield* TestClock.adjust("1 second")
          yield* platform.requestPasswordReset("uma@example.com")
          const reset = InMemoryMailer.tokenIn((yield* outbox.latestTo("uma@example.com"))!.text)!
          const newPassword = "N3w-secret!"
          yield* platform.resetPassword(reset, Redacted.make(newPassword))
          assert.include((yield* Effect.flip(platform.authenticate(token))).message, "ended")
          yield* TestClock.adjust("5 seconds")
          assert.strictEqual((yield* Effect.flip(other.authenticate(token)))._tag, "AuthenticationError")
          yield* platform.authenticate(strangerToken)
          const fresh = yield* platform.login({
            email: "uma@example.com",
            password: Redacted.make(newPassword),
            client: "127.0.0.1"
          })
          assert.deepStrictEqual(yield* platform.authenticate(fresh.token), principal)
          assert.deepStrictEqual(yield* other.authenticate(fresh.token), principal)
        })
      )
  )
})

describe("Platform builds", () => {
  it.scoped("queued builds of one project collapse to the newest commit", () =>
    withPlatform(
      Effect.gen(function* () {
        const platform = yield* Platform
        const builds = yield* InMemoryImageBuilder.Builds
        const { principal } = yield* signUp("nia")
        const project = yield* platform.createProject(principal, { name: "busy" })
        // The first build holds the only slot; two more pushes queue behind it.
        yield* builds.hold
        // Waits (a bounded number of turns, the clock is a test clock) until `n` builds are recorded.
        const recordedBuilds = (n: number) =>
          Effect.gen(function* () {
            for (let i = 0; i < 10_000; i++) {
              if ((yield* platform.builds(principal, project.id)).length >= n) return
              yield* Effect.yieldNow()
            }
            return yield* Effect.dieMessage(`${n} builds were never recorded`)
          })
        const first = yield* Effect.fork(push(principal, project.id, { v: "1" }))
        for (let i = 0; i < 10_000 && (yield* builds.held) === 0; i++) yield* Effect.yieldNow()
        const second = yield* Effect.fork(push(principal, project.id, { v: "2" }))
        yield* recordedBuilds(2)
        const third = yield* Effect.fork(push(principal, project.id, { v: "3" }))
        yield* recordedBuilds(3)
        yield* builds.release
        const [a, b, c] = yield* Effect.all([first, second, third].map((f) => f.await))
        const results = [a, b, c].map((exit) => (exit._tag === "Success" ? exit.value : undefined))
        assert.strictEqual(results[0]?.result._tag, "Deployed")
        assert.strictEqual(results[1]?.result._tag, "Superseded")
        assert.include(results[1]!.lines.at(-1)!, "superseded by a newer push")
        assert.strictEqual(results[2]?.result._tag, "Deployed")
        // Only the first and the newest were built; the superseded one is recorded as cancelled.
        assert.lengthOf(yield* builds.requests, 2)
        const recorded = yield* platform.builds(principal, project.id)
        assert.deepStrictEqual(
          recorded.map((b) => b.status),
          ["succeeded", "cancelled", "succeeded"]
        )
        const releases = yield* platform.releases(principal, project.id)
        assert.strictEqual(releases[0]!.commit, results[2]!.commit)
      })
    )
  )

  it.scoped("images of old releases are pruned; the latest ones are kept for rollback", () =>
    Effect.gen(function* () {
      const platform = yield* Platform
      const builds = yield* InMemoryImageBuilder.Builds
      const { principal } = yield* signUp("oli")
      const project = yield* platform.createProject(principal, { name: "many" })
      for (let i = 1; i <= 4; i++) yield* push(principal, project.id, { v: `${i}` })
      const releases = yield* platform.releases(principal, project.id)
      assert.lengthOf(releases, 4)
      // releasesKept is 2: the two oldest images are gone, the two newest stay.
      assert.sameMembers([...(yield* builds.pruned)], [releases[3]!.image, releases[2]!.image])
      const rolledBack = yield* platform.rollback(principal, project.id, releases[1]!.number)
      assert.strictEqual(rolledBack._tag, "Deployed")
    }).pipe(Effect.provide(TestPlatform.layer({ config: { releasesKept: 2 } })))
  )
})
