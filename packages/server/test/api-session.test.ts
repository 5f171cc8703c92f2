/**
 * Sessions over time (TestClock moves the server's clock), in development mode (cookies without Secure).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { account, layer, password, send } from "./support/api.js"

describe("HTTP API: sessions in development mode", () => {
  it.layer(layer({}, { devMode: true }))((it) => {
    it.effect("the access cookie is not Secure", () =>
      Effect.gen(function* () {
        const user = yield* account()
        const login = yield* send("POST", "/auth/login", { body: { email: user.email, password } })
        const cookie = login.cookies.find((c) => c.startsWith("access="))
        assert.isDefined(cookie)
        assert.notMatch(cookie!, /Secure/i)
      })
    )

    it.effect("a token is refused once 6 hours have passed", () =>
      Effect.gen(function* () {
        const user = yield* account()
        assert.strictEqual((yield* send("GET", "/users/my", { token: user.token })).status, 200)
        yield* TestClock.adjust("5 hours")
        assert.strictEqual((yield* send("GET", "/users/my", { token: user.token })).status, 200)
        yield* TestClock.adjust("1 hour")
        yield* TestClock.adjust("1 second")
        const expired = yield* send("GET", "/users/my", { token: user.token })
        assert.strictEqual(expired.status, 401)
        assert.strictEqual(expired.body.status, "unauthorized")
      })
    )
  })
})
