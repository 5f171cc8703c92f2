/**
 * Login rate limits through the HTTP API (a server of their own: every test client shares 127.0.0.1).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { account, layer, password, send } from "./support/api.js"

describe("HTTP API: login rate limits", () => {
  it.layer(layer())((it) => {
    it.effect("10 failures for one account give 429 with Retry-After, even with the right password", () =>
      Effect.gen(function* () {
        const user = yield* account()
        for (let i = 0; i < 10; i++) {
          const reply = yield* send("POST", "/auth/login", {
            body: { email: user.email, password: "Wrong-pass1" }
          })
          assert.strictEqual(reply.status, 401)
        }
        const limited = yield* send("POST", "/auth/login", { body: { email: user.email, password } })
        assert.strictEqual(limited.status, 429)
        assert.strictEqual(limited.body.status, "too_many_requests")
        const retryAfter = Number(limited.headers["retry-after"])
        assert.isTrue(retryAfter > 0 && retryAfter <= 900, `Retry-After ${limited.headers["retry-after"]}`)
      })
    )

    it.effect("50 failures from one address give 429 for every account from it", () =>
      Effect.gen(function* () {
        const user = yield* account()
        for (let i = 0; i < 40; i++) {
          const reply = yield* send("POST", "/auth/login", {
            body: { email: `nobody${i}@example.com`, password }
          })
          assert.strictEqual(reply.status, 401)
        }
        const limited = yield* send("POST", "/auth/login", { body: { email: user.email, password } })
        assert.strictEqual(limited.status, 429)
        assert.isDefined(limited.headers["retry-after"])
      })
    )
  })
})
