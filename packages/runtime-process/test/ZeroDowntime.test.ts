import { randomUUID } from "node:crypto"
import { Agent, request } from "node:http"
import { assert, describe, it } from "@effect/vitest"
import type { CommitSha } from "@paas/core/Build"
import { Persistence } from "@paas/core/Persistence"
import * as PlatformConfig from "@paas/core/PlatformConfig"
import { Project, ProjectConfig, type ProjectId } from "@paas/core/Project"
import * as Reconciler from "@paas/core/Reconciler"
import { type ReleaseId, RunSettings } from "@paas/core/Release"
import { InMemoryPersistence } from "@paas/core/testing"
import type { UserId } from "@paas/core/User"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as ProcessPlatform from "../src/ProcessPlatform.js"
import * as ProcessRuntime from "../src/ProcessRuntime.js"
import * as ProxyRouter from "../src/ProxyRouter.js"
import { alive, appDir, eventually, get, scratch, specOf } from "./support.js"

const platform = (root: string) =>
  Reconciler.layer.pipe(
    Layer.provideMerge(ProcessPlatform.layer({ root, stopGrace: "5 seconds", router: { port: 0 } })),
    Layer.provideMerge(InMemoryPersistence.layer),
    Layer.provideMerge(PlatformConfig.layer({ baseDomain: "localhost" }))
  )

/** One request through the router on a keep-alive connection; resolves with the status and body. */
const send = (agent: Agent, port: number, host: string, path: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, agent, headers: { host }, timeout: 20_000 },
      (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (c: string) => (body += c))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
        res.on("error", reject)
      }
    )
    req.on("timeout", () => req.destroy(new Error("timed out")))
    req.on("error", reject)
    req.end()
  })

describe("zero-downtime redeploys", () => {
  it.scopedLive(
    "five redeploys under load: no failed request, and traffic moves to each new release",
    () =>
      Effect.gen(function* () {
        const root = yield* scratch()
        const dir = yield* appDir
        yield* Effect.gen(function* () {
          const store = yield* Persistence
          const reconciler = yield* Reconciler.Reconciler
          const router = yield* ProxyRouter.ProxyRouter
          const runtime = yield* ProcessRuntime.ProcessRuntime
          const projectId = randomUUID() as ProjectId
          const now = new Date()
          yield* store.projects.insert(
            new Project({
              id: projectId,
              ownerId: randomUUID() as UserId,
              name: "zero-downtime",
              config: new ProjectConfig({ env: {} }),
              createdAt: now,
              updatedAt: now
            })
          )
          const deploy = (version: number, env: Record<string, string> = {}) =>
            Effect.gen(function* () {
              const release = yield* store.releases.insert({
                id: randomUUID() as ReleaseId,
                projectId,
                image: dir,
                commit: "a".repeat(40) as CommitSha,
                buildId: null,
                config: new ProjectConfig({ env: { VERSION: String(version), ...env } }),
                run: new RunSettings({
                  ...RunSettings.defaults,
                  command: [process.execPath, "server.mjs"],
                  healthcheckPath: "/health",
                  healthcheckTimeoutMs: 20_000
                }),
                description: `v${version}`,
                createdAt: new Date()
              })
              yield* store.deployments.setDesired(
                projectId,
                { releaseId: release.id, desired: "running" },
                new Date()
              )
              return yield* reconciler.reconcileApp(projectId)
            })

          const first = yield* deploy(1)
          assert.strictEqual(first.status, "running")
          const host = `${projectId}.user-app.localhost`

          // The load: 16 clients on keep-alive connections, one in twenty requests slow enough
          // to be in flight when the route flips. Bounded by count and by the `done` flag.
          const agent = new Agent({ keepAlive: true, maxSockets: 16 })
          yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
          const MAX = 20_000
          let sent = 0
          let done = false
          const failures: Array<string> = []
          const versions: Array<string> = []
          const client = async () => {
            while (!done && sent < MAX) {
              const n = sent++
              try {
                const res = await send(agent, router.port, host, `/slow?ms=${n % 20 === 0 ? 150 : 0}`)
                if (res.status !== 200) failures.push(`${res.status} ${res.body.slice(0, 80)}`)
                else versions.push(res.body)
              } catch (error) {
                failures.push(String(error))
              }
            }
          }
          const started = Date.now()
          const load = Promise.all(Array.from({ length: 16 }, client))
          yield* eventually(
            Effect.sync(() => versions.length >= 200),
            "load on the first release"
          )

          const timings: Array<number> = []
          for (let v = 2; v <= 6; v++) {
            const t0 = Date.now()
            const outcome = yield* deploy(v)
            timings.push(Date.now() - t0)
            assert.strictEqual(outcome.status, "running", outcome.message ?? "")
            // Once the reconciler returns, new requests reach the new release only.
            assert.strictEqual(
              (yield* Effect.promise(() => send(agent, router.port, host, "/slow?ms=0"))).body,
              `slow ${v}`
            )
            const instances = yield* runtime.list(projectId)
            assert.lengthOf(instances, 1)
            const mark = versions.length
            yield* eventually(
              Effect.sync(() => versions.length >= mark + 400),
              "load on the new release"
            )
          }

          // A release that cannot start leaves the previous one serving, with the reason recorded.
          const broken = yield* deploy(7, { MODE: "exit" })
          assert.strictEqual(broken.status, "running")
          assert.include(
            broken.message ?? "",
            "release v7 exited with code 3 before passing its health check"
          )
          assert.include(broken.message ?? "", "boom: DATABASE_URL is not set")
          const mark = versions.length
          yield* eventually(
            Effect.sync(() => versions.length >= mark + 400),
            "load after the failed deploy"
          )

          done = true
          yield* Effect.promise(() => load)
          const seconds = (Date.now() - started) / 1000
          console.log(
            `zero-downtime: ${versions.length + failures.length} requests in ${seconds.toFixed(1)} s ` +
              `(${Math.round(versions.length / seconds)}/s), ${failures.length} failed; ` +
              `redeploys took ${timings.join(", ")} ms`
          )
          assert.deepStrictEqual(failures.slice(0, 5), [])
          assert.isAtLeast(versions.length, 1_000)
          for (let v = 1; v <= 6; v++) assert.include(versions, `slow ${v}`)
          assert.strictEqual(versions[versions.length - 1], "slow 6")
          assert.notInclude(versions, "slow 7")

          // Only the last good release still runs; the state file agrees.
          const [last] = yield* runtime.list(projectId)
          assert.strictEqual(last?.status, "running")
          assert.strictEqual((yield* router.list(projectId))[0]?.instanceId, last?.id)
          const lines = Chunk.toArray(yield* Stream.runCollect(runtime.logs(projectId))).map((l) => l.line)
          const pids = lines.flatMap((l) => {
            const m = /^\[paas\] started process (\d+)/.exec(l)
            return m ? [Number(m[1])] : []
          })
          assert.lengthOf(pids, 7)
          assert.deepStrictEqual(
            pids.map((pid) => alive(pid)),
            [false, false, false, false, false, true, false]
          )
        }).pipe(Effect.provide(platform(root)))
      }),
    60_000
  )

  it.scopedLive("removing an instance with requests in flight lets them finish first", () =>
    Effect.gen(function* () {
      const root = yield* scratch()
      const dir = yield* appDir
      yield* Effect.gen(function* () {
        const runtime = yield* ProcessRuntime.ProcessRuntime
        const router = yield* ProxyRouter.ProxyRouter
        const spec = specOf(dir, { env: { VERSION: "1" } })
        const instance = yield* runtime.start(spec)
        const pid = Number((yield* get(instance.address!.port, "/pid")).body)
        const host = `${spec.appId}.user-app.localhost`
        yield* router.set({
          appId: spec.appId,
          hosts: [host],
          instanceId: instance.id,
          target: instance.address!
        })
        const agent = new Agent({ keepAlive: true })
        yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
        const slow = Array.from({ length: 5 }, () => send(agent, router.port, host, "/slow?ms=1000"))
        yield* eventually(
          Effect.map(router.inFlight(instance.address!), (n) => n === 5),
          "requests in flight"
        )
        yield* router.remove(spec.appId)
        // The app does not handle SIGTERM: only the drain keeps these requests alive.
        yield* runtime.remove(instance.id)
        const results = yield* Effect.promise(() => Promise.all(slow))
        assert.deepStrictEqual(
          results.map((r) => `${r.status} ${r.body}`),
          Array.from({ length: 5 }, () => "200 slow 1")
        )
        assert.isFalse(alive(pid))
      }).pipe(Effect.provide(ProcessPlatform.layer({ root, stopGrace: "5 seconds", router: { port: 0 } })))
    })
  )
})
