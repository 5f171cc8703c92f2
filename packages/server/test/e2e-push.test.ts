/**
 * End to end on the embedded defaults, as a user: `paas-server` (PGlite, the local builder, apps as
 * processes behind the in-process router) started as a child process; register through a real
 * SMTP server, add a key, create a project, `git push` a small Node.js app over SSH, watch the
 * build as `remote:` lines, reach the app through the router by its host name, push a change,
 * deploy env vars through the API, read logs, statistics and status, redeploy under load with no
 * failed request, stop, delete.
 */
import { existsSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { remoteLines } from "./support/git.js"
import { getApp, loadDuring, waitForApp } from "./support/router.js"
import { api, serverWithProject } from "./support/server.js"

// A tiny app: it answers with its version and the GREETING env var, and says hello in its log.
const app = (version: string) => ({
  "package.json": JSON.stringify({ name: "hello", version: "1.0.0", scripts: { start: "node server.js" } }),
  "server.js": `const http = require("node:http")
console.log("hello from ${version}")
http
  .createServer((req, res) => {
    res.setHeader("content-type", "application/json")
    res.end(JSON.stringify({ version: "${version}", greeting: process.env.GREETING ?? null, path: req.url }))
  })
  .listen(Number(process.env.PORT), "127.0.0.1")
`
})

const isProcessAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("paas-server end to end: git push to a running app (embedded defaults)", () => {
  it.scopedLive(
    "push, serve, push again, deploy env, logs/statistics/status, redeploy under load, stop, delete",
    () =>
      Effect.gen(function* () {
        const { server, dataDir, token, user, id, host } = yield* serverWithProject({ username: "pusher" })

        // First push: built, released, started, routed; the output ends with the URL.
        yield* user.commit(app("v1"), "v1")
        const first = yield* user.push(id)
        assert.strictEqual(first.code, 0, first.stderr)
        const lines = remoteLines(first.stderr)
        assert.isTrue(
          lines.some((l) => l.startsWith("Building ")),
          first.stderr
        )
        assert.isTrue(
          lines.some((l) => l === "Start command: node server.js"),
          first.stderr
        )
        assert.include(lines.at(-1) ?? "", `http://${host}:${server.routerPort}`)
        const v1 = yield* getApp(server.routerPort, host)
        assert.strictEqual(v1.status, 200)
        assert.strictEqual(JSON.parse(v1.body).version, "v1")
        // The host with the router's port in it, as a browser sends it, works as well.
        assert.strictEqual((yield* getApp(server.routerPort, `${host}:${server.routerPort}`)).status, 200)
        // An unknown host is the router's 404 page.
        assert.strictEqual((yield* getApp(server.routerPort, "nobody.user-app.localhost")).status, 404)

        // Second push: the new release replaces the old one.
        yield* user.commit(app("v2"), "v2")
        const second = yield* user.push(id)
        assert.strictEqual(second.code, 0, second.stderr)
        assert.strictEqual(JSON.parse((yield* getApp(server.routerPort, host)).body).version, "v2")

        // Env vars through the API reach the app.
        const deploy = yield* api(server, "PATCH", `/projects/${id}/deploy`, {
          token,
          body: { env_vars: { GREETING: "hi there" } }
        })
        assert.strictEqual(deploy.status, 200, JSON.stringify(deploy.body))
        assert.strictEqual(deploy.body.content.status, "STATUS_RUNNING")
        assert.strictEqual(JSON.parse((yield* getApp(server.routerPort, host)).body).greeting, "hi there")

        // A custom domain: the app answers there too, with its env kept.
        const domains = yield* api(server, "PUT", `/projects/${id}/domains`, {
          token,
          body: { domains: ["Shop.Example.com"] }
        })
        assert.strictEqual(domains.status, 200, JSON.stringify(domains.body))
        assert.deepStrictEqual(domains.body.content.config.domains, ["shop.example.com"])
        const shop = yield* getApp(server.routerPort, "shop.example.com")
        assert.strictEqual(shop.status, 200)
        assert.strictEqual(JSON.parse(shop.body).greeting, "hi there")
        assert.strictEqual((yield* getApp(server.routerPort, host)).status, 200)

        // Logs, statistics, status.
        const logs = yield* api(server, "GET", `/projects/${id}/logs`, { token })
        assert.include(logs.body.content.logs, "hello from v2")
        const stats = yield* api(server, "GET", `/projects/${id}/statistics`, { token })
        assert.strictEqual(stats.status, 200, JSON.stringify(stats.body))
        assert.isAbove(stats.body.content.memory_usage, 0)
        assert.isAbove(stats.body.content.memory_limit, 0)
        const status = yield* api(server, "POST", "/projects/status", {
          token,
          body: { container_names: [id] }
        })
        assert.deepStrictEqual(status.body.content.container_statuses, [
          { container_name: id, container_status: "STATUS_RUNNING" }
        ])

        // Five redeploys while a load of requests runs: not one fails.
        const { ok, failures } = yield* loadDuring(
          server.routerPort,
          host,
          8,
          Effect.forEach([1, 2, 3, 4, 5], (n) =>
            Effect.map(
              api(server, "PATCH", `/projects/${id}/deploy`, {
                token,
                body: { env_vars: { GREETING: `round ${n}` } }
              }),
              (redeploy) => assert.strictEqual(redeploy.status, 200, JSON.stringify(redeploy.body))
            )
          )
        )
        console.log(`e2e: ${ok} requests during 5 redeploys, ${failures.length} failed`)
        assert.deepStrictEqual(failures, [])
        assert.isAbove(ok, 50)
        assert.strictEqual(JSON.parse((yield* getApp(server.routerPort, host)).body).greeting, "round 5")

        // Stop: the app is gone from the router.
        const state = yield* Effect.promise(() => readFile(join(dataDir, "apps", "state.json"), "utf8"))
        const pids = (JSON.parse(state) as { processes: Array<{ pid: number }> }).processes.map((p) => p.pid)
        assert.isAbove(pids.length, 0, state)
        assert.strictEqual((yield* api(server, "POST", `/projects/${id}/stop`, { token })).status, 200)
        const stopped = yield* getApp(server.routerPort, host)
        assert.include([404, 502], stopped.status)
        const afterStop = yield* api(server, "POST", "/projects/status", {
          token,
          body: { container_names: [id] }
        })
        assert.strictEqual(afterStop.body.content.container_statuses[0].container_status, "STATUS_STOPPED")

        // Deploy again, then delete: process, repository and route are gone.
        assert.strictEqual(
          (yield* api(server, "PATCH", `/projects/${id}/deploy`, {
            token,
            body: { env_vars: { GREETING: "back" } }
          })).status,
          200
        )
        assert.strictEqual((yield* waitForApp(server.routerPort, host, (r) => r.status === 200)).status, 200)
        assert.isTrue(existsSync(join(dataDir, "repos", id)))
        assert.strictEqual((yield* api(server, "DELETE", `/projects/${id}`, { token })).status, 200)
        assert.strictEqual((yield* getApp(server.routerPort, host)).status, 404)
        assert.isFalse(existsSync(join(dataDir, "repos", id)))
        for (const pid of pids) assert.isFalse(isProcessAlive(pid), `process ${pid} still runs`)
        assert.strictEqual(yield* server.stop("SIGTERM"), 0)
      }),
    240_000
  )
})
