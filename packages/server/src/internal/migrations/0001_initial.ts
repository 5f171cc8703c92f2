/**
 * The first schema: accounts, tokens, keys, projects, builds, releases and deployments.
 *
 * Everything hangs off `users` and `projects` with ON DELETE CASCADE, so deleting an account or a
 * project is one statement and cannot leave orphans behind.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

/** Creates the tables of the first release. */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  yield* sql`
    CREATE TABLE users (
      id uuid PRIMARY KEY,
      username text NOT NULL,
      email text NOT NULL,
      password_hash text NOT NULL,
      is_admin boolean NOT NULL,
      email_confirmed boolean NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      CONSTRAINT users_username_key UNIQUE (username)
    )`
  // Emails compare case-insensitively; the index name is what a duplicate reports.
  yield* sql`CREATE UNIQUE INDEX users_email_key ON users (lower(email))`

  // Only a SHA-256 of each token is kept: a copy of the database does not let anyone confirm an
  // email or reset a password. One token per user and kind; a new one replaces the old.
  yield* sql`
    CREATE TABLE user_tokens (
      token_hash text PRIMARY KEY,
      kind text NOT NULL CHECK (kind IN ('email-confirmation', 'password-reset')),
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      expires_at timestamptz NOT NULL,
      CONSTRAINT user_tokens_user_kind_key UNIQUE (user_id, kind)
    )`

  yield* sql`
    CREATE TABLE ssh_keys (
      id uuid PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      name text NOT NULL,
      value text NOT NULL,
      fingerprint text NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      CONSTRAINT ssh_keys_fingerprint_key UNIQUE (fingerprint)
    )`
  yield* sql`CREATE INDEX ssh_keys_user_id_idx ON ssh_keys (user_id, created_at)`

  // `last_release_number` is the per-project counter that numbers releases: incrementing it locks
  // the project row, so concurrent inserts are serialised and get distinct numbers.
  yield* sql`
    CREATE TABLE projects (
      id uuid PRIMARY KEY,
      owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      name text NOT NULL,
      config jsonb NOT NULL,
      last_release_number integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      CONSTRAINT projects_owner_name_key UNIQUE (owner_id, name)
    )`

  // `seq` breaks ties between builds created in the same millisecond, so "newest first" is stable.
  yield* sql`
    CREATE TABLE builds (
      id uuid PRIMARY KEY,
      seq bigint GENERATED ALWAYS AS IDENTITY,
      project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
      commit_sha text NOT NULL,
      ref text NOT NULL,
      status text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
      image text,
      error text,
      created_at timestamptz NOT NULL,
      started_at timestamptz,
      finished_at timestamptz
    )`
  yield* sql`CREATE INDEX builds_project_idx ON builds (project_id, created_at DESC, seq DESC)`
  yield* sql`CREATE INDEX builds_status_idx ON builds (status, created_at)`

  // The log is kept as appended chunks rather than one growing text column: appending a line is
  // then an insert, not a rewrite of the whole (TOASTed) log, which made long builds quadratic.
  yield* sql`
    CREATE TABLE build_log_chunks (
      build_id uuid NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
      seq bigint GENERATED ALWAYS AS IDENTITY,
      chunk text NOT NULL,
      PRIMARY KEY (build_id, seq)
    )`

  yield* sql`
    CREATE TABLE releases (
      id uuid PRIMARY KEY,
      project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
      number integer NOT NULL CHECK (number > 0),
      image text NOT NULL,
      commit_sha text NOT NULL,
      build_id uuid REFERENCES builds (id) ON DELETE SET NULL,
      config jsonb NOT NULL,
      run jsonb NOT NULL,
      description text NOT NULL,
      created_at timestamptz NOT NULL,
      CONSTRAINT releases_project_number_key UNIQUE (project_id, number),
      CONSTRAINT releases_project_id_key UNIQUE (project_id, id)
    )`

  // The composite key makes the desired release belong to the same project. It is NO ACTION
  // (checked at the end of the statement), so deleting a project cascades through both tables.
  yield* sql`
    CREATE TABLE deployments (
      project_id uuid PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
      release_id uuid,
      desired text NOT NULL CHECK (desired IN ('running', 'stopped')),
      status text NOT NULL
        CHECK (status IN ('unknown', 'starting', 'running', 'stopping', 'stopped', 'failed')),
      message text,
      failed_spec text,
      updated_at timestamptz NOT NULL,
      CONSTRAINT deployments_release_fkey FOREIGN KEY (project_id, release_id)
        REFERENCES releases (project_id, id)
    )`
})
