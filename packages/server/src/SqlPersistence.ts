/**
 * Persistence in SQL: the core `Persistence` contract on PostgreSQL (a server, or the embedded
 * PGlite of Database.ts), written against `@effect/sql`'s SqlClient and the schema of
 * `internal/migrations`.
 *
 * Each table has a row schema (its columns, decoded with the domain's own field schemas) and a
 * function to the domain class. Store failures, and rows that do not decode, are defects: the
 * contract's typed errors are only the ones a caller can act on (Conflict, NotFound).
 */

import { createHash } from "node:crypto"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Build, BuildId, BuildStatus, CommitSha } from "@paas/core/Build"
import { AppStatus, Deployment, DesiredState } from "@paas/core/Deployment"
import { Conflict, NotFound } from "@paas/core/Errors"
import { type BuildUpdate, type DesiredApp, Persistence, type UserWithSecret } from "@paas/core/Persistence"
import { Project, ProjectConfig, ProjectId } from "@paas/core/Project"
import { Release, ReleaseId, RunSettings } from "@paas/core/Release"
import { Fingerprint, SshKey, SshKeyId } from "@paas/core/SshKey"
import { User, UserId } from "@paas/core/User"
import * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { ParseError } from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

// --- rows ------------------------------------------------------------------------------------
// Rows are decoded (and so validated) by their row schema; the domain classes are then built with
// validation off (`new X(fields, true)`): validating again costs more than the query itself.

const UserRow = Schema.Struct({
  id: UserId,
  username: Schema.String,
  email: Schema.String,
  is_admin: Schema.Boolean,
  email_confirmed: Schema.Boolean,
  created_at: Schema.DateFromSelf,
  updated_at: Schema.DateFromSelf
})
const toUser = (row: typeof UserRow.Type): User =>
  new User(
    {
      id: row.id,
      username: row.username,
      email: row.email,
      isAdmin: row.is_admin,
      emailConfirmed: row.email_confirmed,
      createdAt: row.created_at,
      updatedAt: row.updated_at
    },
    true
  )

const UserWithSecretRow = Schema.Struct({ ...UserRow.fields, password_hash: Schema.String })
const toUserWithSecret = (row: typeof UserWithSecretRow.Type): UserWithSecret => ({
  user: toUser(row),
  passwordHash: row.password_hash
})

const TokenRow = Schema.Struct({ user_id: UserId, expires_at: Schema.DateFromSelf })

const SshKeyRow = Schema.Struct({
  id: SshKeyId,
  user_id: UserId,
  name: Schema.String,
  value: Schema.String,
  fingerprint: Fingerprint,
  created_at: Schema.DateFromSelf,
  updated_at: Schema.DateFromSelf
})
const toSshKey = (row: typeof SshKeyRow.Type): SshKey =>
  new SshKey(
    {
      id: row.id,
      userId: row.user_id,
      name: row.name,
      value: row.value,
      fingerprint: row.fingerprint,
      createdAt: row.created_at,
      updatedAt: row.updated_at
    },
    true
  )

// JSONB columns are decoded as plain structs (the classes' fields) and wrapped afterwards: a class
// inside a row schema would be constructed, and validated again, for every row.
const ConfigColumn = Schema.Struct(ProjectConfig.fields)
const RunColumn = Schema.Struct(RunSettings.fields)

const ProjectRow = Schema.Struct({
  id: ProjectId,
  owner_id: UserId,
  name: Schema.String,
  config: ConfigColumn,
  created_at: Schema.DateFromSelf,
  updated_at: Schema.DateFromSelf
})
const toProject = (row: typeof ProjectRow.Type): Project =>
  new Project(
    {
      id: row.id,
      ownerId: row.owner_id,
      name: row.name,
      config: new ProjectConfig(row.config, true),
      createdAt: row.created_at,
      updatedAt: row.updated_at
    },
    true
  )

// `log` is not a column: the queries assemble it from build_log_chunks (see `buildColumns`).
const BuildRow = Schema.Struct({
  id: BuildId,
  project_id: ProjectId,
  commit_sha: CommitSha,
  ref: Schema.String,
  status: BuildStatus,
  log: Schema.String,
  image: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  created_at: Schema.DateFromSelf,
  started_at: Schema.NullOr(Schema.DateFromSelf),
  finished_at: Schema.NullOr(Schema.DateFromSelf)
})
const toBuild = (row: typeof BuildRow.Type): Build =>
  new Build(
    {
      id: row.id,
      projectId: row.project_id,
      commit: row.commit_sha,
      ref: row.ref,
      status: row.status,
      log: row.log,
      image: row.image,
      error: row.error,
      createdAt: row.created_at,
      startedAt: row.started_at,
      finishedAt: row.finished_at
    },
    true
  )

const ReleaseRow = Schema.Struct({
  id: ReleaseId,
  project_id: ProjectId,
  number: Schema.Int,
  image: Schema.String,
  commit_sha: CommitSha,
  build_id: Schema.NullOr(BuildId),
  config: ConfigColumn,
  run: RunColumn,
  description: Schema.String,
  created_at: Schema.DateFromSelf
})
const toRelease = (row: typeof ReleaseRow.Type): Release =>
  new Release(
    {
      id: row.id,
      projectId: row.project_id,
      number: row.number,
      image: row.image,
      commit: row.commit_sha,
      buildId: row.build_id,
      config: new ProjectConfig(row.config, true),
      run: new RunSettings(row.run, true),
      description: row.description,
      createdAt: row.created_at
    },
    true
  )

const DeploymentRow = Schema.Struct({
  project_id: ProjectId,
  release_id: Schema.NullOr(ReleaseId),
  desired: DesiredState,
  status: AppStatus,
  message: Schema.NullOr(Schema.String),
  failed_spec: Schema.NullOr(Schema.String),
  updated_at: Schema.DateFromSelf
})
const toDeployment = (row: typeof DeploymentRow.Type): Deployment =>
  new Deployment(
    {
      projectId: row.project_id,
      releaseId: row.release_id,
      desired: row.desired,
      status: row.status,
      message: row.message,
      failedSpec: row.failed_spec,
      updatedAt: row.updated_at
    },
    true
  )

// A deployment joined with its release: the deployment's columns, then the release's (all null
// when it wants none). Both share `project_id`, which the composite foreign key guarantees.
const DesiredRow = Schema.Struct({
  deployment: DeploymentRow,
  release: Schema.NullOr(ReleaseRow)
})
const toDesiredApp = (row: typeof DesiredRow.Type): DesiredApp => ({
  deployment: toDeployment(row.deployment),
  release: row.release === null ? null : toRelease(row.release)
})
const splitDesired = (row: Readonly<Record<string, unknown>>) => ({
  deployment: row,
  release: row.id === null ? null : row
})

// --- helpers ---------------------------------------------------------------------------------

// One decoder per row schema, built on first use: the queries run on every request.
const decoders = new WeakMap<
  Schema.Schema.Any,
  (rows: unknown) => Effect.Effect<ReadonlyArray<unknown>, ParseError>
>()
const decoderOf = <A, I>(row: Schema.Schema<A, I>) => {
  let decode = decoders.get(row)
  if (decode === undefined) {
    decode = Schema.decodeUnknown(Schema.Array(row))
    decoders.set(row, decode)
  }
  return decode as (rows: unknown) => Effect.Effect<ReadonlyArray<A>, ParseError>
}

/** Decodes every row of a query into domain values. */
const all =
  <A, I, B>(row: Schema.Schema<A, I>, to: (row: A) => B) =>
  <E>(query: Effect.Effect<ReadonlyArray<unknown>, E>): Effect.Effect<ReadonlyArray<B>, E | ParseError> =>
    query.pipe(Effect.flatMap(decoderOf(row)), Effect.map(Arr.map(to)))

/** Decodes the first row of a query, if there is one. */
const first =
  <A, I, B>(row: Schema.Schema<A, I>, to: (row: A) => B) =>
  <E>(query: Effect.Effect<ReadonlyArray<unknown>, E>): Effect.Effect<Option.Option<B>, E | ParseError> =>
    Effect.map(all(row, to)(Effect.map(query, Arr.take(1))), Arr.head)

/** Fails with NotFound when a query that should have touched one row touched none. */
const orNotFound =
  (resource: NotFound["resource"], id: string) =>
  <A, E, R>(self: Effect.Effect<Option.Option<A>, E, R>): Effect.Effect<A, E | NotFound, R> =>
    Effect.flatMap(
      self,
      Option.match({
        onNone: () => Effect.fail(new NotFound({ resource, id })),
        onSome: Effect.succeed
      })
    )

/** The PostgreSQL error code behind a SqlError, and the constraint it names, if any. */
const pgError = (
  error: SqlError
): { readonly code: string | undefined; readonly constraint: string | undefined } => {
  const cause: unknown = error.cause
  return {
    code: Predicate.hasProperty(cause, "code") && typeof cause.code === "string" ? cause.code : undefined,
    constraint:
      Predicate.hasProperty(cause, "constraint") && typeof cause.constraint === "string"
        ? cause.constraint
        : undefined
  }
}

const UNIQUE_VIOLATION = "23505"
const FOREIGN_KEY_VIOLATION = "23503"

/**
 * Turns a unique violation of one of the named constraints into its Conflict; every other store
 * failure is a defect.
 */
const conflictsOn =
  (conflicts: Readonly<Record<string, Conflict>>) =>
  <A, R>(self: Effect.Effect<A, SqlError | ParseError, R>): Effect.Effect<A, Conflict, R> =>
    self.pipe(
      Effect.catchTags({
        ParseError: Effect.die,
        SqlError: (error) => {
          const { code, constraint } = pgError(error)
          const conflict =
            code === UNIQUE_VIOLATION && constraint !== undefined ? conflicts[constraint] : undefined
          return conflict === undefined ? Effect.die(error) : Effect.fail(conflict)
        }
      })
    )

// Tokens are stored hashed: the mail holds the only copy of the secret.
const hashToken = (token: string): string => createHash("sha256").update(token).digest("hex")

const encodeConfig = Schema.encodeSync(Schema.parseJson(ProjectConfig))
const encodeRun = Schema.encodeSync(Schema.parseJson(RunSettings))

// --- the store -------------------------------------------------------------------------------

/** The SQL store on the SqlClient in context (migrated by Database's layers). */
export const make: Effect.Effect<Persistence["Type"], never, SqlClient.SqlClient> = Effect.gen(function* () {
  // The row schemas name columns as the database does, whatever name transforms the client has.
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()

  const userColumns = sql.literal("id, username, email, is_admin, email_confirmed, created_at, updated_at")
  const keyColumns = sql.literal("id, user_id, name, value, fingerprint, created_at, updated_at")
  const projectColumns = sql.literal("id, owner_id, name, config, created_at, updated_at")
  // Selects from a relation aliased `b` (the table, or a CTE of changed rows).
  const buildColumns = sql.literal(
    `b.id, b.project_id, b.commit_sha, b.ref, b.status, b.image, b.error, b.created_at, b.started_at,
     b.finished_at,
     coalesce((SELECT string_agg(c.chunk, '' ORDER BY c.seq) FROM build_log_chunks c WHERE c.build_id = b.id), '')
       AS log`
  )
  const releaseColumns = sql.literal(
    "id, project_id, number, image, commit_sha, build_id, config, run, description, created_at"
  )
  const deploymentColumns = sql.literal(
    "project_id, release_id, desired, status, message, failed_spec, updated_at"
  )
  const desiredSelect = sql.literal(
    `SELECT d.project_id, d.release_id, d.desired, d.status, d.message, d.failed_spec, d.updated_at,
            r.id, r.number, r.image, r.commit_sha, r.build_id, r.config, r.run, r.description, r.created_at
     FROM deployments d LEFT JOIN releases r ON r.id = d.release_id`
  )
  const desiredApps = all(DesiredRow, toDesiredApp)

  const findBuild = (id: BuildId) =>
    sql`SELECT ${buildColumns} FROM builds b WHERE b.id = ${id}`.pipe(first(BuildRow, toBuild))

  return Persistence.of({
    users: {
      insert: (user, passwordHash) =>
        sql`
          INSERT INTO users (id, username, email, password_hash, is_admin, email_confirmed, created_at, updated_at)
          VALUES (${user.id}, ${user.username}, ${user.email}, ${passwordHash}, ${user.isAdmin},
                  ${user.emailConfirmed}, ${user.createdAt}, ${user.updatedAt})`.pipe(
          Effect.as(user),
          conflictsOn({
            users_username_key: new Conflict({ resource: "user", message: "username is already taken" }),
            users_email_key: new Conflict({ resource: "user", message: "email is already registered" })
          })
        ),
      findById: (id) =>
        sql`SELECT ${userColumns} FROM users WHERE id = ${id}`.pipe(first(UserRow, toUser), Effect.orDie),
      findByUsername: (username) =>
        sql`SELECT ${userColumns} FROM users WHERE username = ${username}`.pipe(
          first(UserRow, toUser),
          Effect.orDie
        ),
      findByEmail: (email) =>
        sql`SELECT ${userColumns}, password_hash FROM users WHERE lower(email) = lower(${email})`.pipe(
          first(UserWithSecretRow, toUserWithSecret),
          Effect.orDie
        ),
      list: () =>
        sql`SELECT ${userColumns} FROM users ORDER BY created_at, id`.pipe(
          all(UserRow, toUser),
          Effect.orDie
        ),
      confirmEmail: (id, at) =>
        sql`UPDATE users SET email_confirmed = true, updated_at = ${at} WHERE id = ${id} RETURNING id`.pipe(
          Effect.map(Arr.head),
          Effect.orDie,
          orNotFound("user", id),
          Effect.asVoid
        ),
      setPasswordHash: (id, hash, at) =>
        sql`
          UPDATE users SET password_hash = ${hash}, password_set_at = ${at}, updated_at = ${at}
          WHERE id = ${id} RETURNING id`.pipe(
          Effect.map(Arr.head),
          Effect.orDie,
          orNotFound("user", id),
          Effect.asVoid
        ),
      delete: (id) =>
        sql`DELETE FROM users WHERE id = ${id} RETURNING id`.pipe(
          Effect.map(Arr.head),
          Effect.orDie,
          orNotFound("user", id),
          Effect.asVoid
        )
    },

    tokens: {
      issue: (kind, userId, token, expiresAt) =>
        sql`
          INSERT INTO user_tokens (token_hash, kind, user_id, expires_at)
          VALUES (${hashToken(token)}, ${kind}, ${userId}, ${expiresAt})
          ON CONFLICT (user_id, kind)
            DO UPDATE SET token_hash = excluded.token_hash, expires_at = excluded.expires_at`.pipe(
          Effect.asVoid,
          Effect.orDie
        ),
      // Deleting and reading in one statement makes the token single-use under concurrency; an
      // expired token is spent too, so it cannot be tried again.
      consume: (kind, token, now) =>
        sql`
          DELETE FROM user_tokens WHERE token_hash = ${hashToken(token)} AND kind = ${kind}
          RETURNING user_id, expires_at`.pipe(
          first(TokenRow, (row) => row),
          Effect.map(
            Option.filterMap((row) => (row.expires_at > now ? Option.some(row.user_id) : Option.none()))
          ),
          Effect.orDie
        )
    },

    endedSessions: {
      // Expired rows are dropped as new ones come. A user deleted meanwhile has no sessions to
      // end: the insert then adds nothing.
      add: (digest, userId, expiresAt, now) =>
        Effect.zipRight(
          sql`DELETE FROM ended_sessions WHERE expires_at <= ${now}`,
          sql`
            INSERT INTO ended_sessions (token_digest, user_id, expires_at)
            SELECT ${digest}, id, ${expiresAt} FROM users WHERE id = ${userId} AND ${expiresAt} > ${now}
            ON CONFLICT (token_digest) DO NOTHING`
        ).pipe(Effect.asVoid, Effect.orDie),
      isEnded: ({ digest, userId, issuedAt }, now) =>
        sql`
          SELECT 1 FROM ended_sessions WHERE token_digest = ${digest} AND expires_at > ${now}
          UNION ALL
          SELECT 1 FROM users WHERE id = ${userId} AND date_trunc('second', password_set_at) > ${issuedAt}`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.orDie
        )
    },

    keys: {
      insert: (key) =>
        sql`
          INSERT INTO ssh_keys (id, user_id, name, value, fingerprint, created_at, updated_at)
          VALUES (${key.id}, ${key.userId}, ${key.name}, ${key.value}, ${key.fingerprint}, ${key.createdAt},
                  ${key.updatedAt})`.pipe(
          Effect.as(key),
          conflictsOn({
            ssh_keys_fingerprint_key: new Conflict({
              resource: "sshKey",
              message: "this key is already registered"
            })
          })
        ),
      findById: (id) =>
        sql`SELECT ${keyColumns} FROM ssh_keys WHERE id = ${id}`.pipe(
          first(SshKeyRow, toSshKey),
          Effect.orDie
        ),
      findByFingerprint: (fingerprint) =>
        sql`SELECT ${keyColumns} FROM ssh_keys WHERE fingerprint = ${fingerprint}`.pipe(
          first(SshKeyRow, toSshKey),
          Effect.orDie
        ),
      listByUser: (userId) =>
        sql`SELECT ${keyColumns} FROM ssh_keys WHERE user_id = ${userId} ORDER BY created_at, id`.pipe(
          all(SshKeyRow, toSshKey),
          Effect.orDie
        ),
      list: () =>
        sql`SELECT ${keyColumns} FROM ssh_keys ORDER BY created_at, id`.pipe(
          all(SshKeyRow, toSshKey),
          Effect.orDie
        ),
      delete: (id) =>
        sql`DELETE FROM ssh_keys WHERE id = ${id} RETURNING id`.pipe(
          Effect.map(Arr.head),
          Effect.orDie,
          orNotFound("sshKey", id),
          Effect.asVoid
        )
    },

    projects: {
      insert: (project) =>
        sql`
          INSERT INTO projects (id, owner_id, name, config, created_at, updated_at)
          VALUES (${project.id}, ${project.ownerId}, ${project.name}, ${encodeConfig(project.config)},
                  ${project.createdAt}, ${project.updatedAt})`.pipe(
          Effect.as(project),
          conflictsOn({
            projects_owner_name_key: new Conflict({
              resource: "project",
              message: "you already have a project with this name"
            })
          })
        ),
      findById: (id) =>
        sql`SELECT ${projectColumns} FROM projects WHERE id = ${id}`.pipe(
          first(ProjectRow, toProject),
          Effect.orDie
        ),
      listByOwner: (ownerId) =>
        sql`SELECT ${projectColumns} FROM projects WHERE owner_id = ${ownerId} ORDER BY created_at, id`.pipe(
          all(ProjectRow, toProject),
          Effect.orDie
        ),
      list: () =>
        sql`SELECT ${projectColumns} FROM projects ORDER BY created_at, id`.pipe(
          all(ProjectRow, toProject),
          Effect.orDie
        ),
      updateConfig: (id, config, at) =>
        sql`
          UPDATE projects SET config = ${encodeConfig(config)}, updated_at = ${at} WHERE id = ${id}
          RETURNING ${projectColumns}`.pipe(
          first(ProjectRow, toProject),
          Effect.orDie,
          orNotFound("project", id)
        ),
      delete: (id) =>
        sql`DELETE FROM projects WHERE id = ${id} RETURNING id`.pipe(
          Effect.map(Arr.head),
          Effect.orDie,
          orNotFound("project", id),
          Effect.asVoid
        )
    },

    builds: {
      insert: (build) =>
        sql
          .withTransaction(
            Effect.zipRight(
              sql`
                INSERT INTO builds (id, project_id, commit_sha, ref, status, image, error, created_at, started_at,
                                    finished_at)
                VALUES (${build.id}, ${build.projectId}, ${build.commit}, ${build.ref}, ${build.status},
                        ${build.image}, ${build.error}, ${build.createdAt}, ${build.startedAt}, ${build.finishedAt})`,
              build.log === ""
                ? Effect.void
                : sql`INSERT INTO build_log_chunks (build_id, chunk) VALUES (${build.id}, ${build.log})`
            )
          )
          .pipe(Effect.as(build), Effect.orDie),
      findById: (id) => findBuild(id).pipe(Effect.orDie),
      listByProject: (projectId, limit) =>
        sql`
          SELECT ${buildColumns} FROM builds b WHERE b.project_id = ${projectId}
          ORDER BY b.created_at DESC, b.seq DESC LIMIT ${Math.max(0, Math.floor(limit))}`.pipe(
          all(BuildRow, toBuild),
          Effect.orDie
        ),
      listByStatus: (statuses) =>
        statuses.length === 0
          ? Effect.succeed([])
          : sql`
              SELECT ${buildColumns} FROM builds b WHERE b.status IN ${sql.in(statuses)}
              ORDER BY b.created_at, b.seq`.pipe(all(BuildRow, toBuild), Effect.orDie),
      update: (id, update) => {
        const columns = buildChanges(update)
        const updated = Arr.isEmptyArray(Object.keys(columns))
          ? findBuild(id)
          : sql`
              WITH b AS (UPDATE builds SET ${sql.update(columns)} WHERE id = ${id} RETURNING *)
              SELECT ${buildColumns} FROM b`.pipe(first(BuildRow, toBuild))
        return updated.pipe(Effect.orDie, orNotFound("build", id))
      },
      // Appending to a build that is gone (its project was deleted meanwhile) does nothing.
      appendLog: (id, text) =>
        text === ""
          ? Effect.void
          : sql`INSERT INTO build_log_chunks (build_id, chunk) SELECT id, ${text}::text FROM builds WHERE id = ${id}`.pipe(
              Effect.asVoid,
              Effect.catchIf(
                (error) => pgError(error).code === FOREIGN_KEY_VIOLATION,
                () => Effect.void
              ),
              Effect.orDie
            )
    },

    releases: {
      // Incrementing the project's counter locks its row until the insert commits, so concurrent
      // inserts for one project are numbered one after the other. A missing project leaves the
      // number null, which the NOT NULL column turns into a defect.
      insert: (release) =>
        sql`
          WITH counter AS (
            UPDATE projects SET last_release_number = last_release_number + 1
            WHERE id = ${release.projectId}
            RETURNING last_release_number
          )
          INSERT INTO releases (id, project_id, number, image, commit_sha, build_id, config, run, description,
                                created_at)
          VALUES (${release.id}, ${release.projectId}, (SELECT last_release_number FROM counter), ${release.image},
                  ${release.commit}, ${release.buildId}, ${encodeConfig(release.config)}, ${encodeRun(release.run)},
                  ${release.description}, ${release.createdAt})
          RETURNING ${releaseColumns}`.pipe(
          first(ReleaseRow, toRelease),
          Effect.flatMap(
            Option.match({
              onNone: () => Effect.dieMessage(`release ${release.id} was not inserted`),
              onSome: Effect.succeed
            })
          ),
          Effect.orDie
        ),
      findById: (id) =>
        sql`SELECT ${releaseColumns} FROM releases WHERE id = ${id}`.pipe(
          first(ReleaseRow, toRelease),
          Effect.orDie
        ),
      findByNumber: (projectId, number) =>
        sql`SELECT ${releaseColumns} FROM releases WHERE project_id = ${projectId} AND number = ${number}`.pipe(
          first(ReleaseRow, toRelease),
          Effect.orDie
        ),
      listByProject: (projectId) =>
        sql`SELECT ${releaseColumns} FROM releases WHERE project_id = ${projectId} ORDER BY number DESC`.pipe(
          all(ReleaseRow, toRelease),
          Effect.orDie
        )
    },

    deployments: {
      find: (projectId) =>
        sql`SELECT ${deploymentColumns} FROM deployments WHERE project_id = ${projectId}`.pipe(
          first(DeploymentRow, toDeployment),
          Effect.orDie
        ),
      setDesired: (projectId, desired, at) =>
        sql`
          INSERT INTO deployments (project_id, release_id, desired, status, message, failed_spec, updated_at)
          VALUES (${projectId}, ${desired.releaseId}, ${desired.desired}, 'unknown', NULL, NULL, ${at})
          ON CONFLICT (project_id) DO UPDATE
            SET release_id = excluded.release_id, desired = excluded.desired, failed_spec = NULL,
                updated_at = excluded.updated_at
          RETURNING ${deploymentColumns}`.pipe(
          first(DeploymentRow, toDeployment),
          Effect.flatMap(
            Option.match({
              onNone: () => Effect.dieMessage(`deployment of ${projectId} was not written`),
              onSome: Effect.succeed
            })
          ),
          Effect.orDie
        ),
      setObserved: (projectId, observed, at) =>
        sql`
          UPDATE deployments
          SET status = ${observed.status}, message = ${observed.message}, failed_spec = ${observed.failedSpec},
              updated_at = ${at}
          WHERE project_id = ${projectId}`.pipe(Effect.asVoid, Effect.orDie),
      listDesired: () =>
        sql`${desiredSelect} ORDER BY d.project_id`.pipe(
          Effect.map(Arr.map(splitDesired)),
          desiredApps,
          Effect.orDie
        ),
      findDesired: (projectId) =>
        sql`${desiredSelect} WHERE d.project_id = ${projectId}`.pipe(
          Effect.map(Arr.map(splitDesired)),
          desiredApps,
          Effect.map(Arr.head),
          Effect.orDie
        )
    }
  })
})

/** The SQL store as a layer; provide a migrated client, e.g. `Database.layer`. */
export const layer: Layer.Layer<Persistence, never, SqlClient.SqlClient> = Layer.effect(Persistence, make)

// The columns a BuildUpdate changes: only the fields it has (null clears a field).
const buildChanges = (update: BuildUpdate): Record<string, unknown> => {
  const columns: Record<string, unknown> = {}
  if (update.status !== undefined) columns.status = update.status
  if (update.image !== undefined) columns.image = update.image
  if (update.error !== undefined) columns.error = update.error
  if (update.startedAt !== undefined) columns.started_at = update.startedAt
  if (update.finishedAt !== undefined) columns.finished_at = update.finishedAt
  return columns
}
