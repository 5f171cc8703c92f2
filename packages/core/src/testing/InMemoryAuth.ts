/**
 * AuthProvider in memory: salted SHA-256 passwords and HMAC-signed session tokens. Fast, and
 * honest about expiry (it reads Effect's Clock, so TestClock controls it); not for production.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AuthProvider } from "../AuthProvider.js"
import { AuthenticationError } from "../Errors.js"
import * as SshKeyLine from "../internal/sshKeyLine.js"
import { Principal, UserId } from "../User.js"

const Claims = Schema.parseJson(
  Schema.Struct({
    sub: UserId,
    adm: Schema.Boolean,
    iat: Schema.Number,
    exp: Schema.Number,
    jti: Schema.String
  })
)
const decodeClaims = Schema.decodeUnknownOption(Claims)

const digest = (salt: string, password: string) =>
  createHash("sha256").update(salt).update(password).digest("hex")

const invalidToken = new AuthenticationError({
  reason: "invalid-token",
  message: "the session token is invalid"
})

/** An in-memory provider whose sessions last `sessionTtl` (default 6 hours). */
export const make = (options: { readonly sessionTtl?: Duration.DurationInput } = {}) =>
  Effect.sync(() => {
    const secret = randomBytes(32)
    const ttl = Duration.toMillis(options.sessionTtl ?? Duration.hours(6))
    const sign = (payload: string) => createHmac("sha256", secret).update(payload).digest("base64url")
    return AuthProvider.of({
      hashPassword: (password) =>
        Effect.sync(() => {
          const salt = randomBytes(16).toString("hex")
          return `memory$${salt}$${digest(salt, Redacted.value(password))}`
        }),
      verifyPassword: (hash, password) =>
        Effect.sync(() => {
          const [scheme, salt, expected] = hash.split("$")
          if (scheme !== "memory" || !salt || !expected) return false
          const actual = Buffer.from(digest(salt, Redacted.value(password)), "hex")
          const wanted = Buffer.from(expected, "hex")
          return actual.length === wanted.length && timingSafeEqual(actual, wanted)
        }),
      issueSession: (principal) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const exp = now + ttl
          const payload = Buffer.from(
            JSON.stringify({
              sub: principal.userId,
              adm: principal.isAdmin,
              iat: now,
              exp,
              jti: randomBytes(9).toString("base64url")
            })
          ).toString("base64url")
          return { token: `${payload}.${sign(payload)}`, expiresAt: new Date(exp) }
        }),
      verifySession: (token) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const [payload, signature] = token.split(".")
          if (!payload || !signature) return Effect.fail(invalidToken)
          const expected = Buffer.from(sign(payload))
          const given = Buffer.from(signature)
          if (expected.length !== given.length || !timingSafeEqual(expected, given))
            return Effect.fail(invalidToken)
          const claims = decodeClaims(Buffer.from(payload, "base64url").toString("utf8"))
          if (claims._tag === "None") return Effect.fail(invalidToken)
          if (claims.value.exp <= now)
            return Effect.fail(
              new AuthenticationError({ reason: "expired-token", message: "the session has expired" })
            )
          return Effect.succeed({
            principal: new Principal({ userId: claims.value.sub, isAdmin: claims.value.adm }),
            issuedAt: new Date(claims.value.iat),
            expiresAt: new Date(claims.value.exp)
          })
        }),
      parsePublicKey: SshKeyLine.parse
    })
  })

/** The in-memory provider as a layer. */
export const layer = (
  options: { readonly sessionTtl?: Duration.DurationInput } = {}
): Layer.Layer<AuthProvider> => Layer.effect(AuthProvider, make(options))
