/**
 * Scratch databases on a real PostgreSQL for integration tests: each test file gets its own,
 * created with a random name and dropped when its scope closes.
 */

import { randomBytes } from "node:crypto"
import type { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"

/** The server the PostgreSQL tests use, from `PAAS_TEST_DATABASE_URL` (see `.ci/postgres.sh`). */
export const testDatabaseUrl: string | undefined = process.env.PAAS_TEST_DATABASE_URL || undefined

// Runs one statement on the server's maintenance database, on a connection of its own.
const onServer = (url: string, statement: (sql: PgClient.PgClient) => Effect.Effect<unknown, SqlError>) =>
  Effect.flatMap(PgClient.PgClient, statement).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })),
    Effect.asVoid
  )

/** A new, empty database on the server at `url`, dropped (connections and all) with the scope. */
export const scratchDatabase = (url: string): Effect.Effect<Redacted.Redacted, SqlError, Scope.Scope> =>
  Effect.suspend(() => {
    const name = `paas_test_${randomBytes(6).toString("hex")}`
    const location = new URL(url)
    location.pathname = `/${name}`
    return Effect.acquireRelease(
      onServer(url, (sql) => sql`CREATE DATABASE ${sql(name)}`).pipe(Effect.as(Redacted.make(location.href))),
      () => onServer(url, (sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`).pipe(Effect.orDie)
    )
  })
