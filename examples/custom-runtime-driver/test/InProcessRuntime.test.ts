// The user's driver plugged into the platform with one Layer, then driven through the use cases.
import { assert, describe, it } from "@effect/vitest"
import { Platform } from "@paas/core/Platform"
import { Router } from "@paas/core/Router"
import { InMemoryMailer, InMemoryRepoStore, TestPlatform } from "@paas/core/testing"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as InProcessRuntime from "../src/InProcessRuntime.js"

const fetchApp = (appId: string) =>
  Effect.gen(function* () {
    const route = (yield* (yield* Router).list()).find((r) => r.appId === appId)
    if (route === undefined) return undefined
    const response = yield* Effect.promise(() => fetch(`http://${route.target.host}:${route.target.port}/`))
    return (yield* Effect.promise(() => response.json())) as { image: string; env: Record<string, string> }
  })

describe("a custom RuntimeDriver", () => {
  it.scopedLive("runs the apps the platform deploys", () =>
    Effect.gen(function* () {
      const platform = yield* Platform
      const outbox = yield* InMemoryMailer.Outbox
      const repos = yield* InMemoryRepoStore.Repos
      const password = Redacted.make("Corr3ct-horse!")
      yield* platform.register({ username: "fran", email: "fran@example.com", password })
      yield* platform.confirmEmail(
        InMemoryMailer.tokenIn((yield* outbox.latestTo("fran@example.com"))!.text)!
      )
      const me = yield* platform.authenticate(
        (yield* platform.login({ email: "fran@example.com", password, client: "test" })).token
      )
      const project = yield* platform.createProject(me, { name: "hello" })
      const update = yield* repos.push(project.id, { "index.js": "…" })
      const pushed = yield* platform.pushReceived(me, project.id, [update], () => Effect.void)
      assert.strictEqual(pushed._tag, "Deployed")
      const first = yield* fetchApp(project.id)
      assert.match(first!.image, /^memory\//)
      assert.deepStrictEqual(first!.env, {})

      yield* platform.deploy(me, project.id, { GREETING: "hello" })
      assert.deepStrictEqual((yield* fetchApp(project.id))!.env, { GREETING: "hello" })

      yield* platform.stop(me, project.id)
      assert.isUndefined(yield* fetchApp(project.id))
    }).pipe(Effect.provide(TestPlatform.layer({ runtime: InProcessRuntime.layer })))
  )
})
