/**
 * The persistence suite on a real PostgreSQL, in a database of this file's own that is dropped at
 * the end. It needs a server: `PAAS_TEST_DATABASE_URL` (`.ci/postgres.sh` starts a throwaway one).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Database from "../src/Database.js"
import * as SqlPersistence from "../src/SqlPersistence.js"
import { persistenceSuite } from "./persistence-suite.js"
import { scratchDatabase, testDatabaseUrl } from "./support/postgres.js"

// Without a server these tests cannot run, and a developer's `npx vitest` should not need one;
// CI sets the variable (through .ci/postgres.sh), so there they always run. Say so loudly rather
// than pass in silence.
if (testDatabaseUrl === undefined) {
  console.warn(
    "PAAS_TEST_DATABASE_URL is not set: SKIPPING the PostgreSQL persistence tests. " +
      "Run them with `.ci/postgres.sh npx vitest run packages/server/test/persistence`."
  )
}

describe.skipIf(testDatabaseUrl === undefined)("PostgreSQL", () => {
  const store = Layer.unwrapScoped(
    Effect.map(scratchDatabase(testDatabaseUrl ?? ""), (url) =>
      SqlPersistence.layer.pipe(Layer.provide(Database.layerPostgres(url)))
    )
  )
  persistenceSuite("SqlPersistence on PostgreSQL", store, { timeout: "60 seconds" })
})

describe("Database.layerPostgres", () => {
  it.live("fails with one clear DatabaseError, without the password, when the server is unreachable", () =>
    Effect.gen(function* () {
      const url = Redacted.make("postgres://paas:s3cret@127.0.0.1:1/paas")
      const error = yield* Effect.flip(Layer.build(Database.layerPostgres(url)))
      assert.strictEqual(error._tag, "DatabaseError")
      assert.match(error.message, /^cannot connect to PostgreSQL at 127\.0\.0\.1:1\/paas: /)
      assert.notInclude(error.message, "s3cret")
    }).pipe(Effect.scoped)
  )
})
