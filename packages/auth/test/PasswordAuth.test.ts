import { createHmac } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { AuthProvider } from "@paas/core/AuthProvider"
import type { AuthenticationError } from "@paas/core/Errors"
import { Principal, UserId } from "@paas/core/User"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { SignJWT } from "jose"
import * as PasswordAuth from "../src/PasswordAuth.js"
import { captureLogs } from "./support.js"

const secret = Redacted.make("a-test-secret-that-is-long-enough-for-hs256")
const alice = new Principal({ userId: UserId.make("6f1c2a34-8d2b-4c1e-9a57-3b2f0e9d4c11"), isAdmin: false })
const root = new Principal({ userId: UserId.make("0b6e3f0a-1c2d-4e5f-8a9b-c0d1e2f3a4b5"), isAdmin: true })
const start = Date.parse("2030-01-01T00:00:00Z")

const refused = (token: string) =>
  Effect.flatMap(AuthProvider, (auth) => Effect.flip(auth.verifySession(token)))

const segments = (token: string) => {
  const [header, payload, signature] = token.split(".")
  return { header: header!, payload: payload!, signature: signature! }
}

it.layer(PasswordAuth.layer({ secret }))("PasswordAuth", (it) => {
  describe("passwords", () => {
    it.effect("hashes with argon2id at the default cost and verifies only the right password", () =>
      Effect.gen(function* () {
        const auth = yield* AuthProvider
        const hash = yield* auth.hashPassword(Redacted.make("Sup3r-secret!"))
        assert.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]{43}$/)
        assert.notInclude(hash, "Sup3r-secret!")
        assert.isTrue(yield* auth.verifyPassword(hash, Redacted.make("Sup3r-secret!")))
        assert.isFalse(yield* auth.verifyPassword(hash, Redacted.make("Sup3r-secret?")))
        assert.isFalse(yield* auth.verifyPassword(hash, Redacted.make("")))
      })
    )

    it.effect("salts each hash", () =>
      Effect.gen(function* () {
        const auth = yield* AuthProvider
        const [first, second] = yield* Effect.all([
          auth.hashPassword(Redacted.make("Same-pass1!")),
          auth.hashPassword(Redacted.make("Same-pass1!"))
        ])
        assert.notStrictEqual(first, second)
        assert.isTrue(yield* auth.verifyPassword(second, Redacted.make("Same-pass1!")))
      })
    )

    it.effect("treats a hash that is not argon2 as matching nothing, and says so in the log", () =>
      Effect.gen(function* () {
        const auth = yield* AuthProvider
        const { result, lines } = yield* captureLogs(
          auth.verifyPassword("memory$abc$def", Redacted.make("Sup3r-secret!"))
        )
        assert.isFalse(result)
        assert.isTrue(
          lines.some((line) => line.startsWith("WARN") && line.includes("not a valid argon2 hash"))
        )
      })
    )

    it.effect("verifies hashes made with other costs, so the cost can change later", () =>
      Effect.gen(function* () {
        const cheap = yield* PasswordAuth.make({
          secret,
          argon2: { memoryCost: 8192, timeCost: 1, parallelism: 1 }
        })
        const hash = yield* cheap.hashPassword(Redacted.make("Old-hash1!"))
        assert.match(hash, /^\$argon2id\$v=19\$m=8192,t=1,p=1\$/)
        const auth = yield* AuthProvider
        assert.isTrue(yield* auth.verifyPassword(hash, Redacted.make("Old-hash1!")))
      })
    )
  })

  describe("sessions", () => {
    it.effect("issues an HS256 JWT whose claims carry the user id and admin flag", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(start)
        const auth = yield* AuthProvider
        const session = yield* auth.issueSession(root)
        assert.strictEqual(session.expiresAt.getTime(), start + Duration.toMillis("6 hours"))
        const { header, payload } = segments(session.token)
        assert.deepStrictEqual(JSON.parse(Buffer.from(header, "base64url").toString()), {
          alg: "HS256",
          typ: "JWT"
        })
        const { jti, ...claims } = JSON.parse(Buffer.from(payload, "base64url").toString())
        assert.deepStrictEqual(claims, {
          adm: true,
          sub: root.userId,
          iat: start / 1000,
          exp: start / 1000 + 6 * 3600
        })
        assert.match(jti, /^[0-9a-f-]{36}$/, "a token id, so two sessions are never one token")
        const verified = yield* auth.verifySession(session.token)
        assert.deepStrictEqual(verified, {
          principal: root,
          issuedAt: new Date(start),
          expiresAt: session.expiresAt
        })
        assert.deepStrictEqual(
          (yield* auth.verifySession((yield* auth.issueSession(alice)).token)).principal,
          alice
        )
        // Issued in the same instant, for the same account: still two sessions.
        assert.notStrictEqual(
          (yield* auth.issueSession(alice)).token,
          (yield* auth.issueSession(alice)).token
        )
      })
    )

    it.effect("accepts a token until 6 hours have passed, then refuses it as expired", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(start)
        const auth = yield* AuthProvider
        const { token } = yield* auth.issueSession(alice)
        yield* TestClock.adjust(Duration.subtract(Duration.hours(6), Duration.seconds(1)))
        assert.deepStrictEqual((yield* auth.verifySession(token)).principal, alice)
        yield* TestClock.adjust(Duration.seconds(1))
        const error = yield* refused(token)
        assert.strictEqual(error.reason, "expired-token")
        yield* TestClock.adjust(Duration.days(30))
        assert.strictEqual((yield* refused(token)).reason, "expired-token")
      })
    )

    it.effect("refuses a token whose payload was changed (e.g. to claim admin)", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(start)
        const auth = yield* AuthProvider
        const { token } = yield* auth.issueSession(alice)
        const { header, payload, signature } = segments(token)
        const claims = JSON.parse(Buffer.from(payload, "base64url").toString())
        const forged = Buffer.from(JSON.stringify({ ...claims, adm: true })).toString("base64url")
        const error: AuthenticationError = yield* refused(`${header}.${forged}.${signature}`)
        assert.strictEqual(error.reason, "invalid-token")
      })
    )

    it.effect("refuses a bad signature, another secret, alg none, a foreign subject and garbage", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(start)
        const auth = yield* AuthProvider
        const { token } = yield* auth.issueSession(alice)
        const { header, payload, signature } = segments(token)
        const flipped = `${signature.slice(0, 10)}${signature[10] === "A" ? "B" : "A"}${signature.slice(11)}`
        assert.strictEqual((yield* refused(`${header}.${payload}.${flipped}`)).reason, "invalid-token")
        assert.strictEqual((yield* refused(`${header}.${payload}.`)).reason, "invalid-token")

        const other = yield* PasswordAuth.make({
          secret: Redacted.make("another-secret-of-32-bytes-or-more!!")
        })
        const stranger = yield* other.issueSession(alice)
        assert.strictEqual((yield* refused(stranger.token)).reason, "invalid-token")

        const none = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")
        assert.strictEqual((yield* refused(`${none}.${payload}.`)).reason, "invalid-token")

        // Correctly signed, but not our claims: a subject that is not a user id, or no admin flag.
        const key = new TextEncoder().encode(Redacted.value(secret))
        const signed = (claims: Record<string, unknown>) =>
          Effect.promise(() =>
            new SignJWT(claims)
              .setProtectedHeader({ alg: "HS256" })
              .setIssuedAt(start / 1000)
              .setExpirationTime(start / 1000 + 60)
              .sign(key)
          )
        assert.strictEqual(
          (yield* refused(yield* signed({ sub: "alice", adm: false }))).reason,
          "invalid-token"
        )
        assert.strictEqual((yield* refused(yield* signed({ sub: alice.userId }))).reason, "invalid-token")
        assert.deepStrictEqual(
          (yield* auth.verifySession(yield* signed({ sub: alice.userId, adm: false }))).principal,
          alice
        )

        // HS512 with the same secret is still not the algorithm we issue.
        const hs512 = yield* Effect.promise(() =>
          new SignJWT({ sub: alice.userId, adm: true })
            .setProtectedHeader({ alg: "HS512" })
            .setExpirationTime(start / 1000 + 60)
            .sign(key)
        )
        assert.strictEqual((yield* refused(hs512)).reason, "invalid-token")

        for (const garbage of ["", "abc", "a.b.c", `${header}.${payload}`]) {
          assert.strictEqual((yield* refused(garbage)).reason, "invalid-token")
        }
      })
    )

    it.effect("reports a forged token as invalid even once it would have expired", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(start)
        const auth = yield* AuthProvider
        const { token } = yield* auth.issueSession(alice)
        const { header, payload } = segments(token)
        // An HMAC with the wrong key, so only the signature is wrong.
        const wrong = createHmac("sha256", "not the secret")
          .update(`${header}.${payload}`)
          .digest("base64url")
        yield* TestClock.adjust(Duration.hours(7))
        assert.strictEqual((yield* refused(`${header}.${payload}.${wrong}`)).reason, "invalid-token")
        assert.strictEqual((yield* refused(token)).reason, "expired-token")
      })
    )
  })
})

describe("PasswordAuth options", () => {
  it.effect("sessionTtl sets the lifetime", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(start)
      const auth = yield* PasswordAuth.make({ secret, sessionTtl: "15 minutes" })
      const session = yield* auth.issueSession(alice)
      assert.strictEqual(session.expiresAt.getTime(), start + 15 * 60_000)
      yield* TestClock.adjust("14 minutes")
      assert.deepStrictEqual((yield* auth.verifySession(session.token)).principal, alice)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* Effect.flip(auth.verifySession(session.token))).reason, "expired-token")
    })
  )

  it.effect("refuses a secret under 32 bytes, a lifetime under a second and an unusable argon2 cost", () =>
    Effect.gen(function* () {
      const short = yield* Effect.flip(PasswordAuth.make({ secret: Redacted.make("x".repeat(31)) }))
      assert.strictEqual(short._tag, "ValidationError")
      assert.strictEqual(short.field, "secret")
      yield* PasswordAuth.make({ secret: Redacted.make("x".repeat(32)) })
      const ttl = yield* Effect.flip(PasswordAuth.make({ secret, sessionTtl: Duration.zero }))
      assert.strictEqual(ttl.field, "sessionTtl")
      const infinite = yield* Effect.flip(PasswordAuth.make({ secret, sessionTtl: Duration.infinity }))
      assert.strictEqual(infinite.field, "sessionTtl")
      const argon2 = yield* Effect.flip(
        PasswordAuth.make({ secret, argon2: { memoryCost: 4, timeCost: 1, parallelism: 1 } })
      )
      assert.strictEqual(argon2.field, "argon2")
    })
  )
})
