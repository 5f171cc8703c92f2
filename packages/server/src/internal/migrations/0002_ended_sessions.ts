/**
 * Sessions ended by logout before they expire: a digest of the token (never the token) and its
 * expiry, after which the row is useless and is deleted.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

/** Creates `ended_sessions`. */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  yield* sql`
    CREATE TABLE ended_sessions (
      token_digest text PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      expires_at timestamptz NOT NULL
    )`

  yield* sql`CREATE INDEX ended_sessions_expires_at_idx ON ended_sessions (expires_at)`
})
