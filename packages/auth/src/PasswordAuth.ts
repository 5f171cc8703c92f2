/**
 * PasswordAuth: the AuthProvider for accounts with a password. Passwords are hashed with argon2id,
 * sessions are HS256 JWTs (`sub` = user id, `adm` = admin flag) and public keys are checked by
 * `SshPublicKey`. Token expiry is judged by Effect's Clock, so tests move time with TestClock.
 */
import { randomUUID } from "node:crypto"
import { type Options as Argon2Options, hash, verify } from "@node-rs/argon2"
import { AuthProvider, type Session, type VerifiedSession } from "@paas/core/AuthProvider"
import { AuthenticationError, ValidationError } from "@paas/core/Errors"
import { Principal, UserId } from "@paas/core/User"
import * as Clock from "effect/Clock"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { errors, jwtVerify, SignJWT } from "jose"
import * as SessionSecret from "./SessionSecret.js"
import * as SshPublicKey from "./SshPublicKey.js"

/** The cost of an argon2id hash: memory in KiB, passes, lanes. */
export interface Argon2Params {
  readonly memoryCost: number
  readonly timeCost: number
  readonly parallelism: number
}

/**
 * OWASP's first argon2id recommendation: 19 MiB, 2 passes, 1 lane. Measured on the 2-core dev box
 * (Node 20, @node-rs/argon2 2.2.1, 100 hashes): 19-20 ms of CPU per hash; wall time 15 ms at best,
 * 25-30 ms median with the machine busy (load ~4). A verify costs the same, and every login pays
 * one, found account or not. It runs on libuv's pool, so it never blocks the event loop.
 */
export const defaultArgon2: Argon2Params = { memoryCost: 19_456, timeCost: 2, parallelism: 1 }

/** How long a session lasts unless told otherwise: 6 hours, as PaaSTech clients expect. */
export const defaultSessionTtl: Duration.Duration = Duration.hours(6)

/** What the provider needs: the signing secret (at least 32 bytes) and optional tuning. */
export interface Options {
  readonly secret: Redacted.Redacted<string>
  /** How long a session token stays valid; 6 hours by default. */
  readonly sessionTtl?: Duration.DurationInput
  /** argon2id cost; `defaultArgon2` by default. Existing hashes keep verifying after a change. */
  readonly argon2?: Argon2Params
}

// How many verified tokens are remembered (a few MB at most).
const VERIFIED_TOKENS = 10_000

const Claims = Schema.Struct({ sub: UserId, adm: Schema.Boolean })
const decodeClaims = Schema.decodeUnknown(Claims)

/** The claims of a verified token, times in seconds as in the token. */
interface VerifiedClaims {
  readonly sub: UserId
  readonly adm: boolean
  readonly iat: number
  readonly exp: number
}

const toSession = (claims: VerifiedClaims): VerifiedSession => ({
  principal: new Principal({ userId: claims.sub, isAdmin: claims.adm }, true),
  issuedAt: new Date(claims.iat * 1000),
  expiresAt: new Date(claims.exp * 1000)
})

const invalidToken = new AuthenticationError({
  reason: "invalid-token",
  message: "the session token is invalid"
})
const expiredToken = new AuthenticationError({
  reason: "expired-token",
  message: "the session has expired: log in again"
})

/** Builds the provider; fails when the secret is under 32 bytes, or the lifetime or argon2 cost is unusable. */
export const make = (options: Options): Effect.Effect<AuthProvider["Type"], ValidationError> =>
  Effect.gen(function* () {
    if (!SessionSecret.isStrongEnough(options.secret))
      return yield* new ValidationError({
        field: "secret",
        message: `the session secret must be at least ${SessionSecret.minBytes} bytes long`
      })
    const ttl = Duration.decode(options.sessionTtl ?? defaultSessionTtl)
    const ttlMillis = Duration.toMillis(ttl)
    if (!Number.isFinite(ttlMillis) || ttlMillis < 1000)
      return yield* new ValidationError({
        field: "sessionTtl",
        message: "the session lifetime must be at least one second and finite"
      })
    const cost = options.argon2 ?? defaultArgon2
    // argon2 itself would only refuse these at the first hash, as a defect.
    if (
      !Number.isInteger(cost.memoryCost) ||
      !Number.isInteger(cost.timeCost) ||
      !Number.isInteger(cost.parallelism) ||
      cost.timeCost < 1 ||
      cost.parallelism < 1 ||
      cost.parallelism > 255 ||
      cost.memoryCost < 8 * cost.parallelism
    )
      return yield* new ValidationError({
        field: "argon2",
        message: "argon2 needs integer costs: timeCost >= 1, parallelism 1-255, memoryCost >= 8 KiB per lane"
      })
    const key = new TextEncoder().encode(Redacted.value(options.secret))
    const argon2: Argon2Options = { algorithm: 2 /* Argon2id */, ...cost }
    // Imported once: jose would otherwise import the raw secret on every verification.
    const verifyKey = yield* Effect.promise(() =>
      crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["verify"])
    )
    // Tokens already verified, with their claims: a client sends the same token with every
    // request, and its signature cannot become valid or invalid later. Expiry is still checked
    // against the clock each time. Bounded, oldest first out.
    const verified = new Map<string, VerifiedClaims>()
    const remember = (token: string, claims: VerifiedClaims) => {
      if (verified.size >= VERIFIED_TOKENS) verified.delete(verified.keys().next().value!)
      verified.set(token, claims)
    }

    return AuthProvider.of({
      hashPassword: (password) =>
        Effect.tryPromise({
          try: (signal) => hash(Redacted.value(password), argon2, signal),
          catch: (cause) => new Error("argon2 could not hash a password", { cause })
        }).pipe(Effect.orDie),

      // A hash that is not argon2 (corrupt, or from another provider) matches no password.
      verifyPassword: (hashed, password) =>
        Effect.tryPromise({
          try: (signal) => verify(hashed, Redacted.value(password), null, signal),
          catch: (cause) => cause
        }).pipe(
          Effect.catchAll((cause) =>
            Effect.as(Effect.logWarning("a stored password hash is not a valid argon2 hash", cause), false)
          )
        ),

      issueSession: (principal) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const issuedAt = Math.floor(now / 1000)
          const expiresAt = Math.floor((now + ttlMillis) / 1000)
          return Effect.tryPromise({
            try: () =>
              new SignJWT({ adm: principal.isAdmin })
                .setProtectedHeader({ alg: "HS256", typ: "JWT" })
                .setSubject(principal.userId)
                // Two logins in the same second must not share a token: ending one ends only it.
                .setJti(randomUUID())
                .setIssuedAt(issuedAt)
                .setExpirationTime(expiresAt)
                .sign(key),
            catch: (cause) => new Error("jose could not sign a session token", { cause })
          }).pipe(
            Effect.orDie,
            Effect.map((token): Session => ({ token, expiresAt: new Date(expiresAt * 1000) }))
          )
        }),

      // jose checks the signature before the claims, so a forged token is "invalid", never
      // "expired": expiry is only reported for tokens we really issued.
      verifySession: (token) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const known = verified.get(token)
          if (known !== undefined)
            return known.exp * 1000 > now
              ? Effect.succeed(toSession(known))
              : Effect.zipRight(
                  Effect.sync(() => verified.delete(token)),
                  Effect.fail(expiredToken)
                )
          return Effect.tryPromise({
            try: () =>
              jwtVerify(token, verifyKey, {
                algorithms: ["HS256"],
                currentDate: new Date(now),
                requiredClaims: ["sub", "exp"]
              }),
            catch: (cause) => cause
          }).pipe(
            Effect.flatMap(({ payload }) =>
              Effect.map(decodeClaims(payload), (claims) => {
                // Tokens from before `iat` was required count as issued at the epoch.
                const known = { sub: claims.sub, adm: claims.adm, iat: payload.iat ?? 0, exp: payload.exp! }
                remember(token, known)
                return toSession(known)
              })
            ),
            Effect.catchAll((cause) =>
              Effect.zipRight(
                Effect.logDebug("session token refused", (cause as { code?: string }).code ?? String(cause)),
                Effect.fail(cause instanceof errors.JWTExpired ? expiredToken : invalidToken)
              )
            )
          )
        }),

      parsePublicKey: SshPublicKey.parse
    })
  })

/** The provider as a layer. */
export const layer = (options: Options): Layer.Layer<AuthProvider, ValidationError> =>
  Layer.effect(AuthProvider, make(options))

/**
 * The provider with its secret from `PAAS_JWT_SECRET`, or generated once into `dataDir` when that
 * is unset (see `SessionSecret.fromConfig`).
 */
export const layerConfig = (
  options: Omit<Options, "secret"> & { readonly dataDir: string }
): Layer.Layer<AuthProvider, ConfigError.ConfigError | ValidationError> =>
  Layer.effect(
    AuthProvider,
    Effect.flatMap(SessionSecret.fromConfig(options.dataDir), (secret) => make({ ...options, secret }))
  )
