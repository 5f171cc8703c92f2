import { chmod, readdir, readFile, stat, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { AuthProvider } from "@paas/core/AuthProvider"
import { Principal, UserId } from "@paas/core/User"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as PasswordAuth from "../src/PasswordAuth.js"
import * as SessionSecret from "../src/SessionSecret.js"
import { captureLogs, scratchDir } from "./support.js"

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("SessionSecret", () => {
  it.scoped("generates 32 random bytes once, into a file only its owner can read", () =>
    Effect.gen(function* () {
      const dataDir = join(yield* scratchDir, "data", "nested")
      const { result: first, lines } = yield* captureLogs(SessionSecret.loadOrCreate(dataDir))
      assert.isTrue(lines.some((line) => line.includes("generated a new session secret")))
      const file = join(dataDir, SessionSecret.fileName)
      const info = yield* Effect.promise(() => stat(file))
      assert.strictEqual(info.mode & 0o777, 0o600)
      const stored = yield* Effect.promise(() => readFile(file, "utf8"))
      assert.strictEqual(stored.trim(), Redacted.value(first))
      assert.strictEqual(Buffer.from(stored.trim(), "base64url").length, 32)
      const again = yield* SessionSecret.loadOrCreate(dataDir)
      assert.strictEqual(Redacted.value(again), Redacted.value(first))
      // No temporary files are left behind.
      assert.deepStrictEqual(yield* Effect.promise(() => readdir(dataDir)), [SessionSecret.fileName])
      // Never printed by accident.
      assert.notInclude(String(first), Redacted.value(first))
    })
  )

  it.scoped("gives every process starting at once the same secret", () =>
    Effect.gen(function* () {
      const dataDir = yield* scratchDir
      const secrets = yield* Effect.all(
        Array.from({ length: 8 }, () => SessionSecret.loadOrCreate(dataDir)),
        {
          concurrency: "unbounded"
        }
      )
      assert.strictEqual(new Set(secrets.map(Redacted.value)).size, 1)
      assert.deepStrictEqual(yield* Effect.promise(() => readdir(dataDir)), [SessionSecret.fileName])
    })
  )

  it.scoped("refuses a file that holds too short a secret, and warns about loose permissions", () =>
    Effect.gen(function* () {
      const dataDir = yield* scratchDir
      const file = join(dataDir, SessionSecret.fileName)
      yield* Effect.promise(() => writeFile(file, "short\n", { mode: 0o600 }))
      const error = yield* Effect.flip(SessionSecret.loadOrCreate(dataDir))
      assert.strictEqual(error._op, "InvalidData")
      assert.include(String(error), "PAAS_JWT_SECRET")

      yield* Effect.promise(() => writeFile(file, `${"k".repeat(40)}\n`))
      yield* Effect.promise(() => chmod(file, 0o644))
      const { result, lines } = yield* captureLogs(SessionSecret.loadOrCreate(dataDir))
      assert.strictEqual(Redacted.value(result), "k".repeat(40))
      assert.isTrue(lines.some((line) => line.startsWith("WARN") && line.includes("chmod 600")))
    })
  )

  it.scoped("fails with a ConfigError when the data directory cannot be created", () =>
    Effect.gen(function* () {
      const dir = yield* scratchDir
      const blocker = join(dir, "a-file")
      yield* Effect.promise(() => writeFile(blocker, ""))
      const error = yield* Effect.flip(SessionSecret.loadOrCreate(join(blocker, "data")))
      assert.strictEqual(error._op, "SourceUnavailable")
      assert.include(String(error), "PAAS_JWT_SECRET")
    })
  )

  it.scoped("prefers PAAS_JWT_SECRET and then writes no file", () =>
    Effect.gen(function* () {
      const dataDir = yield* scratchDir
      const configured = "an-operator-chosen-secret-of-enough-bytes"
      const secret = yield* SessionSecret.fromConfig(dataDir).pipe(withEnv({ PAAS_JWT_SECRET: configured }))
      assert.strictEqual(Redacted.value(secret), configured)
      assert.deepStrictEqual(yield* Effect.promise(() => readdir(dataDir)), [])

      const short = yield* Effect.flip(
        SessionSecret.fromConfig(dataDir).pipe(withEnv({ PAAS_JWT_SECRET: "short" }))
      )
      assert.strictEqual(short._op, "InvalidData")
      assert.include(String(short), "PAAS_JWT_SECRET")

      // Unset or empty: generated into the data directory.
      const empty = yield* SessionSecret.fromConfig(dataDir).pipe(withEnv({ PAAS_JWT_SECRET: "" }))
      const unset = yield* SessionSecret.fromConfig(dataDir).pipe(withEnv({}))
      assert.strictEqual(Redacted.value(empty), Redacted.value(unset))
      assert.deepStrictEqual(yield* Effect.promise(() => readdir(dataDir)), [SessionSecret.fileName])
    })
  )

  it.scoped("PasswordAuth.layerConfig signs with the data directory's secret across restarts", () =>
    Effect.gen(function* () {
      const dataDir = yield* scratchDir
      const principal = new Principal({
        userId: UserId.make("6f1c2a34-8d2b-4c1e-9a57-3b2f0e9d4c11"),
        isAdmin: true
      })
      const layer = PasswordAuth.layerConfig({ dataDir })
      const session = yield* Effect.flatMap(AuthProvider, (auth) => auth.issueSession(principal)).pipe(
        Effect.provide(layer),
        withEnv({})
      )
      // A second build of the layer (a restart) reads the same secret, so old sessions stay valid.
      const verified = yield* Effect.flatMap(AuthProvider, (auth) => auth.verifySession(session.token)).pipe(
        Effect.provide(layer),
        withEnv({})
      )
      assert.deepStrictEqual(verified.principal, principal)
    })
  )
})
