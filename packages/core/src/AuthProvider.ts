/**
 * AuthProvider: the credential mechanics every account flow relies on. The flows themselves
 * (register, confirm, log in, reset, add a key) live in the Platform so that every provider gets
 * the same rules; a provider decides how passwords are hashed, how sessions are signed and how
 * public keys are parsed.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type { AuthenticationError, ValidationError } from "./Errors.js"
import type { ParsedPublicKey } from "./SshKey.js"
import type { Principal } from "./User.js"

/** A signed session: the token a client sends back, and when it stops being valid. */
export interface Session {
  readonly token: string
  readonly expiresAt: Date
}

/** A session token that checked out: whose it is, and until when it is valid. */
export interface VerifiedSession {
  readonly principal: Principal
  readonly issuedAt: Date
  readonly expiresAt: Date
}

/** Hashes and checks passwords, signs and checks sessions, parses SSH public keys. */
export class AuthProvider extends Context.Tag("@paas/core/AuthProvider")<
  AuthProvider,
  {
    readonly hashPassword: (password: Redacted.Redacted<string>) => Effect.Effect<string>
    readonly verifyPassword: (hash: string, password: Redacted.Redacted<string>) => Effect.Effect<boolean>
    /** Signs a new session; two sessions are never the same token, even issued in the same instant. */
    readonly issueSession: (principal: Principal) => Effect.Effect<Session>
    /**
     * Checks the signature and expiry; the Platform then checks that the account still exists and
     * that the session was not ended (logout).
     */
    readonly verifySession: (token: string) => Effect.Effect<VerifiedSession, AuthenticationError>
    /** Parses an OpenSSH public key line; fails on a private key, a bad blob or a type mismatch. */
    readonly parsePublicKey: (line: string) => Effect.Effect<ParsedPublicKey, ValidationError>
  }
>() {}
