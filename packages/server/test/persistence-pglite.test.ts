/**
 * The persistence suite on the embedded PGlite, through the socket server and `@effect/sql-pg`,
 * exactly as the reference server runs it. One PGlite for the whole file: a first start takes
 * seconds (initdb), so tests share it and isolate themselves with fresh users and projects.
 */

import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as PgClient from "@effect/sql-pg/PgClient"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Persistence } from "@paas/core/Persistence"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Database from "../src/Database.js"
import * as SqlPersistence from "../src/SqlPersistence.js"
import { persistenceSuite } from "./persistence-suite.js"

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "paas-pglite-"))
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }))

const store = (dir: string) => SqlPersistence.layer.pipe(Layer.provideMerge(Database.layerPglite(dir)))

persistenceSuite("SqlPersistence on PGlite", store(dataDir), { timeout: "120 seconds" })

// Runs after the suite's block has closed its PGlite: vitest finishes a block, its afterAll
// included, before it starts the next one.
describe("the embedded database", () => {
  it.live(
    "keeps its data across a restart, migrates once, refuses a second opening, and stops its server",
    () =>
      Effect.gen(function* () {
        const port = yield* Effect.gen(function* () {
          const users = yield* Effect.flatMap(Persistence, (store) => store.users.list())
          assert.isAbove(users.length, 0)
          const sql = yield* PgClient.PgClient
          const migrations = yield* sql<{
            readonly migration_id: number
          }>`SELECT migration_id FROM effect_sql_migrations`
          assert.deepStrictEqual(
            migrations.map((m) => m.migration_id),
            [1, 2]
          )

          const second = yield* Effect.flip(Layer.build(Database.layerPglite(dataDir)))
          assert.strictEqual(second._tag, "DatabaseError")
          assert.include(second.message, "in use by this process")
          return sql.config.port ?? 0
        }).pipe(Effect.scoped, Effect.provide(store(dataDir)))

        // The scope is closed: the socket server no longer listens, and the lock is gone.
        const refused = yield* Effect.async<boolean>((resume) => {
          const socket = net.connect({ host: "127.0.0.1", port })
          socket.once("connect", () => {
            socket.destroy()
            resume(Effect.succeed(false))
          })
          socket.once("error", () => resume(Effect.succeed(true)))
        })
        assert.isTrue(refused)
        assert.isFalse(fs.existsSync(path.join(dataDir, "pgdata.lock")))
      }),
    60_000
  )
})
