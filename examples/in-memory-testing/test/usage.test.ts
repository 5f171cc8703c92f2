// How a product tests its code against @paas/core's in-memory drivers: no git, no Docker, no
// database, yet the same use cases, errors and state transitions as production.
import { assert, describe, it } from "@effect/vitest"
import { Platform } from "@paas/core/Platform"
import { InMemoryImageBuilder, InMemoryMailer, InMemoryRepoStore, TestPlatform } from "@paas/core/testing"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { usageSummary } from "../src/usage.js"

const signUp = (username: string) =>
  Effect.gen(function* () {
    const platform = yield* Platform
    const outbox = yield* InMemoryMailer.Outbox
    const email = `${username}@example.com`
    const password = Redacted.make("Corr3ct-horse!")
    yield* platform.register({ username, email, password })
    const token = InMemoryMailer.tokenIn((yield* outbox.latestTo(email))?.text ?? "")
    yield* platform.confirmEmail(token!)
    const session = yield* platform.login({ email, password, client: "test" })
    return yield* platform.authenticate(session.token)
  })

describe("usageSummary", () => {
  it.scoped("counts running apps, not projects", () =>
    Effect.gen(function* () {
      const platform = yield* Platform
      const repos = yield* InMemoryRepoStore.Repos
      const me = yield* signUp("dana")
      const web = yield* platform.createProject(me, { name: "web" })
      yield* platform.createProject(me, { name: "worker" })

      const update = yield* repos.push(web.id, {
        "server.js": "require('http').createServer().listen(process.env.PORT)"
      })
      const result = yield* platform.pushReceived(me, web.id, [update], () => Effect.void)
      assert.strictEqual(result._tag, "Deployed")

      assert.deepStrictEqual(yield* usageSummary(me), { projects: 2, running: 1 })
    }).pipe(Effect.provide(TestPlatform.layer()))
  )

  it.scoped("a failed build does not count as running", () =>
    Effect.gen(function* () {
      const platform = yield* Platform
      const repos = yield* InMemoryRepoStore.Repos
      const builds = yield* InMemoryImageBuilder.Builds
      const me = yield* signUp("eli")
      const app = yield* platform.createProject(me, { name: "app" })
      yield* builds.failNext("npm ERR! missing script: build")
      const update = yield* repos.push(app.id, { "package.json": "{}" })
      const result = yield* platform.pushReceived(me, app.id, [update], () => Effect.void)
      assert.strictEqual(result._tag, "BuildFailed")
      assert.deepStrictEqual(yield* usageSummary(me), { projects: 1, running: 0 })
    }).pipe(Effect.provide(TestPlatform.layer()))
  )
})
