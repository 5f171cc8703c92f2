/**
 * End to end, as a user: `paas-server` started as a child process on free ports with a fresh data
 * directory (embedded PGlite) and a real SMTP server; accounts, keys and projects over HTTP; a
 * restart on the same data directory keeps everything; SIGTERM exits 0; bad configuration exits 2
 * with one line.
 */
import { spawnSync } from "node:child_process"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { api, scratchDir, smtpServer, startServer, tokenIn } from "./support/server.js"

const password = "Sup3r-secret!"
// An ed25519 public key line: the type, then a 32-byte key, in the SSH wire format.
const keyLine = `ssh-ed25519 ${Buffer.concat([
  Buffer.from([0, 0, 0, 11]),
  Buffer.from("ssh-ed25519"),
  Buffer.from([0, 0, 0, 32]),
  Buffer.alloc(32, 7)
]).toString("base64")} e2e@test`

describe("paas-server end to end: accounts and projects", () => {
  it.scopedLive(
    "register, confirm by mail, log in, add a key, create and delete projects; a restart keeps the data",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* scratchDir
        const smtp = yield* smtpServer
        const env = { PAAS_SMTP_URL: smtp.url, PAAS_ADMIN_EMAIL: "root@example.com" }
        const server = yield* startServer({ dataDir, env })
        assert.include(server.output(), `API         ${server.api}`)
        assert.include(server.output(), `ssh://git@127.0.0.1:${server.sshPort}/<project-id>`)

        assert.strictEqual((yield* api(server, "GET", "/healthz")).status, 200)
        const registered = yield* api(server, "POST", "/auth/register", {
          body: { username: "grace", email: "grace@example.com", password }
        })
        assert.strictEqual(registered.status, 201)
        const mail = yield* smtp.waitFor("grace@example.com")
        assert.include(mail.raw, "/auth/confirm/")
        const token = tokenIn(mail.raw)
        assert.strictEqual((yield* api(server, "POST", `/auth/confirm/${token}`)).status, 201)

        const login = yield* api(server, "POST", "/auth/login", {
          body: { email: "grace@example.com", password }
        })
        assert.strictEqual(login.status, 201)
        const accessToken: string = login.body.content.accessToken
        const setCookie = login.headers.get("set-cookie") ?? ""
        assert.match(setCookie, /^access=/)
        assert.notMatch(setCookie, /Secure/) // PAAS_DEV_MODE=true
        const cookie = setCookie.split(";")[0]!
        assert.strictEqual(
          (yield* api(server, "GET", "/users/my", { token: accessToken })).body.content.username,
          "grace"
        )
        assert.strictEqual(
          (yield* api(server, "GET", "/users/my", { cookie })).body.content.username,
          "grace"
        )

        const key = yield* api(server, "POST", "/sshkeys/my", {
          token: accessToken,
          body: { value: keyLine }
        })
        assert.strictEqual(key.status, 201, JSON.stringify(key.body))
        const kept = yield* api(server, "POST", "/projects", { token: accessToken, body: { name: "kept" } })
        const gone = yield* api(server, "POST", "/projects", { token: accessToken, body: { name: "gone" } })
        assert.strictEqual(kept.status, 201)
        const listed = yield* api(server, "GET", "/projects/my", { cookie })
        assert.sameMembers(
          listed.body.content.map((p: { name: string }) => p.name),
          ["kept", "gone"]
        )
        assert.strictEqual(
          (yield* api(server, "DELETE", `/projects/${gone.body.content.id}`, { token: accessToken })).status,
          200
        )

        // A clean stop: SIGTERM, exit code 0.
        assert.strictEqual(yield* server.stop("SIGTERM"), 0)

        // The same data directory after a restart: the account, its key and its project are there,
        // and the session token signed before still works (the secret is kept in the data dir).
        const again = yield* startServer({ dataDir, env })
        const projects = yield* api(again, "GET", "/projects/my", { token: accessToken })
        assert.strictEqual(projects.status, 200)
        assert.deepStrictEqual(
          projects.body.content.map((p: { name: string }) => p.name),
          ["kept"]
        )
        const keys = yield* api(again, "GET", "/sshkeys/my", { token: accessToken })
        assert.strictEqual(keys.body.content.length, 1)
        const relogin = yield* api(again, "POST", "/auth/login", {
          body: { email: "grace@example.com", password }
        })
        assert.strictEqual(relogin.status, 201)
      }),
    120_000
  )

  it.live("bad configuration: one line naming the variable, exit code 2", () =>
    Effect.sync(() => {
      const tsx = createRequire(import.meta.url).resolve("tsx")
      const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
      for (const [name, value] of [
        ["PAAS_HTTP_PORT", "eighty"],
        ["PAAS_RUNTIME", "kubernetes"],
        ["DATABASE_URL", "mysql://localhost/paas"],
        ["PAAS_SMTP_URL", "http://mail"]
      ] as const) {
        const result = spawnSync(process.execPath, ["--conditions=source", "--import", tsx, bin], {
          env: { PATH: process.env.PATH ?? "", PAAS_DATA_DIR: "/nonexistent/never-created", [name]: value },
          encoding: "utf8",
          timeout: 30_000
        })
        assert.strictEqual(result.status, 2, `${name}: ${result.stderr}`)
        const lines = result.stderr.trim().split("\n")
        assert.strictEqual(lines.length, 1, result.stderr)
        assert.include(lines[0], name)
      }
    })
  )
})
