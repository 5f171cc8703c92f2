/**
 * The reference server's database: a PostgreSQL server when `DATABASE_URL` is set, otherwise an
 * embedded PGlite kept in `<dataDir>/pgdata`. Both are reached through the same `@effect/sql-pg`
 * client and the same migrations, so SqlPersistence has one code path.
 *
 * PGlite is served to the client over `@electric-sql/pglite-socket` on 127.0.0.1. PGlite is one
 * backend session: the socket server runs one protocol message at a time, and an open
 * transaction holds every other connection. The client pool therefore has ONE connection: a
 * second connection would add no throughput, and its messages could interleave with another
 * connection's Parse/Bind in the shared session (it works today only because a whole query
 * arrives in one socket read). The socket server accepts one connection more than the pool, so a
 * connection the pool replaces is not refused ("Too many connections") while the old one closes.
 *
 * PGlite cannot cancel a running query: interrupting one (a timeout) returns when it finishes.
 *
 * Measured on a loaded 2-core machine (Node 20 under tsx, PGlite 0.5.14; load average ~3, so
 * times vary by ±50 %), through `layerPglite`, migrations included:
 * - first start (new data dir: initdb + migrations): 5.2–8.8 s; RSS ~825 MB at the peak, ~420 MB
 *   after the next full GC (the initdb instance is garbage by then).
 * - reopen: 0.9–1.3 s to a ready client; RSS ~305 MB, ~380 MB after some queries. With PGlite's
 *   default shared_buffers (128 MB) instead of 16 MB, RSS is ~100 MB higher. 39 MB on disk.
 * - one query: straight into PGlite 0.4–0.6 ms (SELECT 1 costs as much as a primary-key lookup:
 *   PGlite's fixed cost per query dominates); through the socket, `pg` and @effect/sql 0.5–1.0 ms;
 *   `users.findById` with row decoding 0.8–1.2 ms. The socket and wire protocol add 0.1–0.4 ms,
 *   about as much as the query; 32 concurrent callers get the same per-query time (one backend).
 */

import * as fs from "node:fs"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as PgMigrator from "@effect/sql-pg/PgMigrator"
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { loader } from "./internal/migrations/index.js"

// One connection: see the module comment.
const POOL_SIZE = 1

/** The database could not be opened, reached or migrated; the message says which and where. */
export class DatabaseError extends Schema.TaggedError<DatabaseError>()("DatabaseError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** What the layers provide: the PostgreSQL client, also as the generic SqlClient. */
export type Database = PgClient.PgClient | SqlClient.SqlClient

/** Tuning of the embedded database. */
export interface PgliteOptions {
  /** PostgreSQL's `shared_buffers` inside PGlite's memory; default `16MB` (PGlite's own is 128MB). */
  readonly sharedBuffers?: string
}

/** Brings the schema up to date on the client it is given; part of every layer below. */
export const layerMigrations: Layer.Layer<never, DatabaseError, Database> = PgMigrator.layer({ loader }).pipe(
  Layer.provide(NodeContext.layer),
  // A failing migration is a defect inside the migrator; at start-up it is one clear error.
  Layer.catchAllCause((cause) =>
    Layer.fail(
      new DatabaseError({
        message: `could not migrate the database: ${describe(Cause.squash(cause))}`,
        cause
      })
    )
  )
)

/** A PostgreSQL server at `url`, migrated. */
export const layerPostgres = (url: Redacted.Redacted): Layer.Layer<Database, DatabaseError> =>
  layerMigrations.pipe(
    Layer.provideMerge(PgClient.layer({ url, applicationName: "paas-server" })),
    Layer.mapError((error) =>
      error._tag === "DatabaseError"
        ? error
        : new DatabaseError({
            message: `cannot connect to PostgreSQL at ${location(url)}: ${describe(error)}`,
            cause: error
          })
    )
  )

/**
 * The embedded PGlite in `<dataDir>/pgdata` (created on first use, kept across restarts), served
 * on a random port of 127.0.0.1 and migrated. Closing the layer's scope closes the client, stops
 * the socket server and closes PGlite, in that order.
 */
export const layerPglite = (
  dataDir: string,
  options: PgliteOptions = {}
): Layer.Layer<Database, DatabaseError> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const dir = path.resolve(dataDir, "pgdata")
      yield* Effect.try({
        try: () => fs.mkdirSync(path.dirname(dir), { recursive: true }),
        catch: (cause) =>
          new DatabaseError({ message: `cannot create ${path.dirname(dir)}: ${describe(cause)}`, cause })
      })
      yield* lockDirectory(dir)
      const db = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            PGlite.create({
              dataDir: dir,
              startParams: [
                ...PGlite.defaultStartParams,
                "-c",
                `shared_buffers=${options.sharedBuffers ?? "16MB"}`
              ]
            }),
          catch: (cause) =>
            new DatabaseError({
              message: `cannot open the embedded database in ${dir}: ${describe(cause)}`,
              cause
            })
        }),
        (db) => Effect.promise(() => db.close())
      )
      const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: POOL_SIZE + 1 })
      yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => server.start(),
          catch: (cause) =>
            new DatabaseError({ message: `cannot serve the embedded database: ${describe(cause)}`, cause })
        }),
        () => Effect.promise(() => server.stop())
      )
      const port = Number(server.getServerConn().split(":").pop())
      return layerMigrations.pipe(
        Layer.provideMerge(
          PgClient.layer({
            host: "127.0.0.1",
            port,
            username: "postgres",
            database: "postgres",
            applicationName: "paas-server",
            maxConnections: POOL_SIZE,
            // Keep the connection: PGlite has no cost per idle connection, and reconnecting races
            // the socket server's connection limit.
            idleTimeout: Duration.hours(24)
          })
        ),
        Layer.mapError((error) =>
          error._tag === "DatabaseError"
            ? error
            : new DatabaseError({
                message: `cannot connect to the embedded database: ${describe(error)}`,
                cause: error
              })
        )
      )
    })
  )

/** Where the database lives: PostgreSQL at `databaseUrl` when there is one, else PGlite in `dataDir`. */
export const layer = (options: {
  readonly databaseUrl: Option.Option<Redacted.Redacted>
  readonly dataDir: string
}): Layer.Layer<Database, DatabaseError> =>
  Option.match(options.databaseUrl, {
    onNone: () => layerPglite(options.dataDir),
    onSome: layerPostgres
  })

// host:port/database of a URL, for messages: never its password.
function location(url: Redacted.Redacted): string {
  try {
    const parsed = new URL(Redacted.value(url))
    return `${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}`
  } catch {
    return "an invalid URL"
  }
}

// The messages along a chain of causes ("Failed to connect: connect ECONNREFUSED 127.0.0.1:1").
function describe(error: unknown): string {
  const messages: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 5 && Predicate.hasProperty(current, "message"); depth++) {
    const message = String(current.message)
    if (message !== "" && !messages.includes(message)) messages.push(message)
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  return messages.length > 0 ? messages.join(": ") : String(error)
}

// Data directories held by this process. PGlite does not lock its directory itself, and two
// instances on one directory corrupt it.
const held = new Set<string>()

// Takes `<dir>.lock` for as long as the scope lasts: fails when a live process (or this one)
// already has the directory open; takes over a lock left by a process that died.
function lockDirectory(dir: string) {
  const file = `${dir}.lock`
  return Effect.acquireRelease(
    Effect.try({
      try: () => lockHolder(file),
      catch: (cause) => new DatabaseError({ message: `cannot lock ${file}: ${describe(cause)}`, cause })
    }).pipe(
      Effect.filterOrFail(
        (holder) => holder === undefined,
        (holder) =>
          new DatabaseError({
            message: `the embedded database in ${dir} is in use by ${holder === process.pid ? "this process" : `process ${holder}`}; stop it first`
          })
      ),
      Effect.tap(() => held.add(file))
    ),
    () =>
      Effect.sync(() => {
        held.delete(file)
        fs.rmSync(file, { force: true })
      })
  )
}

// Undefined once this process holds the lock; otherwise the pid of the live holder.
function lockHolder(file: string): number | undefined {
  if (held.has(file)) return process.pid
  try {
    fs.writeFileSync(file, `${process.pid}\n`, { flag: "wx" })
    return undefined
  } catch (error) {
    if (!Predicate.hasProperty(error, "code") || error.code !== "EEXIST") throw error
  }
  const pid = Number.parseInt(fs.readFileSync(file, "utf8"), 10)
  // Our own pid in a lock we do not hold is a restarted container reusing the pid: stale.
  if (pid > 0 && pid !== process.pid && isAlive(pid)) return pid
  fs.writeFileSync(file, `${process.pid}\n`)
  return undefined
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return Predicate.hasProperty(error, "code") && error.code === "EPERM"
  }
}
