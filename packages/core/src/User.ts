/**
 * Accounts: who can sign in, and the input rules for registering.
 */
import * as Schema from "effect/Schema"

/** The id of an account (a UUID). */
export const UserId = Schema.UUID.pipe(Schema.brand("UserId"))
/** The id of an account (a UUID). */
export type UserId = typeof UserId.Type

/** 3–30 characters, starts with a letter, ends with a letter or digit; letters, digits, `-`, `_` between. */
export const Username = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z](?:[A-Za-z0-9_-]{1,28}[A-Za-z0-9])$/, {
    message: () =>
      "username must be 3 to 30 characters, start with a letter, end with a letter or digit, and use only letters, digits, '-' and '_'"
  })
)

/** An email address of at most 100 characters. */
export const Email = Schema.String.pipe(
  Schema.maxLength(100, { message: () => "email must be at most 100 characters" }),
  Schema.pattern(/^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+$/, {
    message: () => "email must be a valid email address"
  })
)

const utf8Length = (s: string) => Buffer.byteLength(s, "utf8")

/** 8–72 bytes (argon2 and bcrypt-era clients agree on 72) with a lower, an upper, a digit and a special character. */
export const Password = Schema.String.pipe(
  Schema.filter((s) => (utf8Length(s) >= 8 && utf8Length(s) <= 72) || "password must be 8 to 72 bytes long"),
  Schema.filter(
    (s) =>
      (/[a-z]/.test(s) && /[A-Z]/.test(s) && /[0-9]/.test(s) && /[^A-Za-z0-9]/.test(s)) ||
      "password must contain a lowercase letter, an uppercase letter, a digit and a special character"
  )
)

/** An account as every reader sees it: never the password hash or the email tokens. */
export class User extends Schema.Class<User>("@paas/core/User")({
  id: UserId,
  username: Schema.String,
  email: Schema.String,
  isAdmin: Schema.Boolean,
  emailConfirmed: Schema.Boolean,
  createdAt: Schema.DateFromSelf,
  updatedAt: Schema.DateFromSelf
}) {}

/** Who is asking: the subject of every authorisation decision. */
export class Principal extends Schema.Class<Principal>("@paas/core/Principal")({
  userId: UserId,
  isAdmin: Schema.Boolean
}) {}

/** The fields of a registration, as validated at the edge. */
export const Registration = Schema.Struct({ username: Username, email: Email, password: Password })
/** The fields of a registration, as validated at the edge. */
export type Registration = typeof Registration.Type
