/**
 * End to end, what goes wrong: a build that fails, an app that exits at start, a health check that
 * never passes, an invalid `paas.yaml`. Each push still succeeds (the branch is updated), says why
 * in its `remote:` output, is visible through the API, and leaves the previous release answering.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { remoteLines } from "./support/git.js"
import { getApp } from "./support/router.js"
import { api, serverWithProject } from "./support/server.js"

const good = {
  "package.json": JSON.stringify({ name: "steady", version: "1.0.0", scripts: { start: "node server.js" } }),
  "server.js": `require("node:http").createServer((_, res) => res.end("good")).listen(Number(process.env.PORT), "127.0.0.1")\n`
}

describe("paas-server end to end: failed pushes keep the previous release", () => {
  it.scopedLive(
    "failing build, crashing app, failing health check, invalid paas.yaml",
    () =>
      Effect.gen(function* () {
        const { server, token, user, id, host } = yield* serverWithProject({ username: "steady" })
        yield* user.commit(good, "good")
        assert.strictEqual((yield* user.push(id)).code, 0)
        assert.strictEqual((yield* getApp(server.routerPort, host)).body, "good")

        const cases: Array<{ name: string; files: Record<string, string>; expect: RegExp }> = [
          {
            name: "a build script that fails",
            files: {
              "package.json": JSON.stringify({
                name: "steady",
                version: "1.0.0",
                scripts: {
                  build: "node -e \"console.error('syntax error in app.ts'); process.exit(3)\"",
                  start: "node server.js"
                }
              })
            },
            expect: /build failed: .*exited with code 3/
          },
          {
            name: "an app that exits at start",
            files: {
              ...good,
              "server.js": `console.error("cannot connect to the database"); process.exit(1)\n`
            },
            expect: /did not start: .*(exited|code 1)/
          },
          {
            name: "a health check that never passes",
            files: {
              ...good,
              "paas.yaml": "run:\n  healthcheck:\n    path: /\n    timeout: 3s\n",
              "server.js": "setInterval(() => {}, 1000)\n"
            },
            expect: /did not start: .*(health|answer)/i
          },
          {
            name: "an invalid paas.yaml",
            files: { ...good, "paas.yaml": "run:\n  port: http\n" },
            expect: /paas\.yaml line 2: run\.port/
          }
        ]
        for (const failing of cases) {
          yield* user.commit(failing.files, failing.name)
          const push = yield* user.push(id)
          assert.strictEqual(push.code, 0, `${failing.name}: the push itself succeeds\n${push.stderr}`)
          const lines = remoteLines(push.stderr)
          assert.match(lines.join("\n"), failing.expect, `${failing.name}:\n${push.stderr}`)
          // The previous release keeps answering.
          const reply = yield* getApp(server.routerPort, host)
          assert.strictEqual(reply.status, 200, failing.name)
          assert.strictEqual(reply.body, "good", failing.name)
          const status = yield* api(server, "POST", "/projects/status", {
            token,
            body: { container_names: [id] }
          })
          assert.strictEqual(status.body.content.container_statuses[0].container_status, "STATUS_RUNNING")
          // Put the good version back for the next case (a failed build changes nothing to undo,
          // but the working copy must not carry the broken files forward).
          yield* user.commit(good, `restore after ${failing.name}`)
          if (failing.files["paas.yaml"] !== undefined)
            yield* user.commit({ "paas.yaml": "{}\n" }, "neutral paas.yaml")
        }
        // The API tells the same story: the failed builds carry their reason.
        const builds = yield* api(server, "GET", `/projects/${id}/builds`, { token })
        const failed = builds.body.content.filter((b: { status: string }) => b.status === "failed")
        assert.isAtLeast(failed.length, 2)
        assert.isTrue(failed.some((b: { error: string }) => /paas\.yaml line 2/.test(b.error)))
      }),
    300_000
  )
})
