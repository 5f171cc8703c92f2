/**
 * Sessions ended before they expire: by logout, a digest of the token (never the token) and its
 * expiry, after which the row is useless and is deleted; by a new password, every session of the
 * account issued before `users.password_set_at`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

/** Creates `ended_sessions` and `users.password_set_at`. */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  yield* sql`
    CREATE TABLE ended_sessions (
      token_digest text PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      expires_at timestamptz NOT NULL
    )`

  yield* sql`CREATE INDEX ended_sessions_expires_at_idx ON ended_sessions (expires_at)`

  yield* sql`ALTER TABLE users ADD COLUMN password_set_at timestamptz`
})
