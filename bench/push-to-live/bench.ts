// The push-to-live benchmark (started by run.ts). It starts paas-server as a user would (a fresh
// data dir, a local SMTP server, free ports on 127.0.0.1), signs up, adds a key, creates a
// project, pushes once to warm up, then times each of N pushes from the moment `git push` starts
// until the router serves the new version, polling every 10 ms. Prints each time, p50 and p95.
import { copyFile, mkdir } from "node:fs/promises"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { gitUser } from "../../packages/server/test/support/git.js"
import { getApp } from "../../packages/server/test/support/router.js"
import {
  api,
  scratchDir,
  signUp,
  smtpServer,
  startServer
} from "../../packages/server/test/support/server.js"
import { dockerApp, nodeApp } from "./apps.js"

const argument = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback
}
const runtime = argument("runtime", "process")
if (runtime !== "process" && runtime !== "docker") throw new Error("--runtime is process or docker")
const pushes = Number(argument("pushes", runtime === "docker" ? "10" : "20"))
const goalMs = runtime === "docker" ? 1500 : 1000

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!

const main = Effect.gen(function* () {
  const dataDir = yield* scratchDir
  const home = yield* scratchDir
  const smtp = yield* smtpServer
  const server = yield* startServer({
    dataDir,
    env: { PAAS_SMTP_URL: smtp.url, PAAS_RUNTIME: runtime, PAAS_DEV_MODE: "false" }
  })
  const token = yield* signUp(server, smtp, "bencher")
  const user = yield* gitUser(home, server.sshPort)
  yield* api(server, "POST", "/sshkeys/my", { token, body: { value: user.publicKey } })
  const id: string = (yield* api(server, "POST", "/projects", { token, body: { name: "tiny" } })).body.content
    .id
  const host = `${id}.user-app.localhost`
  const files = runtime === "docker" ? dockerApp : nodeApp
  if (runtime === "docker") yield* Effect.promise(() => copyFile("/bin/busybox", join(user.work, "busybox")))
  yield* Effect.promise(() => mkdir(join(user.work, "www"), { recursive: true }))

  const pushAndWait = (version: number) =>
    Effect.gen(function* () {
      yield* user.commit(files(version), `v${version}`)
      const started = performance.now()
      const push = yield* Effect.fork(user.push(id))
      let served = false
      for (let i = 0; i < 6000 && !served; i++) {
        const reply = yield* getApp(server.routerPort, host)
        served = reply.status === 200 && reply.body.trim() === `v${version}`
        if (!served) yield* Effect.sleep("10 millis")
      }
      const elapsed = performance.now() - started
      const result = yield* Fiber.join(push)
      if (!served || result.code !== 0)
        return yield* Effect.dieMessage(
          `push v${version} was not served (git exit ${result.code}):\n${result.stderr}`
        )
      return elapsed
    })

  yield* pushAndWait(0) // warm-up: first build, cold caches
  const times: Array<number> = []
  for (let n = 1; n <= pushes; n++) {
    const ms = yield* pushAndWait(n)
    times.push(ms)
    console.log(`push ${String(n).padStart(2)}: ${ms.toFixed(0)} ms`)
  }
  const sorted = [...times].sort((a, b) => a - b)
  const p50 = percentile(sorted, 50)
  const p95 = percentile(sorted, 95)
  console.log(
    `\npush to live, ${runtime} runtime, ${pushes} pushes: p50 ${p50.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms, ` +
      `min ${sorted[0]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms (goal p50 ≤ ${goalMs} ms: ${p50 <= goalMs ? "met" : "NOT met"})`
  )
  // Deleting the project removes its app, images and repository (containers outlive the server).
  yield* api(server, "DELETE", `/projects/${id}`, { token })
  yield* server.stop("SIGTERM")
})

await Effect.runPromise(Effect.scoped(main))
