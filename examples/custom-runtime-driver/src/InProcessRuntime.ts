// A RuntimeDriver of the user's own: each app instance is an HTTP server inside this process that
// answers with the image name and its env. Plugging it in is one Layer; nothing else changes.
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { RuntimeError } from "@paas/core/Errors"
import type { ProjectId } from "@paas/core/Project"
import { type Instance, type LogLine, RuntimeDriver } from "@paas/core/RuntimeDriver"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"

interface Running {
  readonly instance: Instance
  readonly server: Server
}

const listen = (server: Server) =>
  Effect.async<number, RuntimeError>((resume) => {
    server.once("error", (cause) =>
      resume(Effect.fail(new RuntimeError({ message: "could not listen", cause })))
    )
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
  })

const close = (server: Server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))

/** Apps as in-process HTTP servers on 127.0.0.1. */
export const layer = Layer.scoped(
  RuntimeDriver,
  Effect.gen(function* () {
    const running = new Map<string, Running>()
    const logs = new Map<ProjectId, Array<LogLine>>()
    const log = (appId: ProjectId, line: string) =>
      void (logs.get(appId) ?? logs.set(appId, []).get(appId)!).push({
        at: new Date(),
        stream: "stdout",
        line
      })
    yield* Effect.addFinalizer(() =>
      Effect.forEach([...running.values()], (r) => close(r.server), { discard: true })
    )
    let next = 0

    return RuntimeDriver.of({
      start: (spec) =>
        Effect.gen(function* () {
          const server = createServer((req, res) => {
            log(spec.appId, `${req.method} ${req.url}`)
            res.setHeader("content-type", "application/json")
            res.end(JSON.stringify({ image: spec.image, env: spec.env }))
          })
          const port = yield* listen(server)
          const health = yield* Effect.tryPromise({
            try: () => fetch(`http://127.0.0.1:${port}${spec.run.healthcheckPath}`),
            catch: (cause) => new RuntimeError({ message: "health check failed", cause })
          }).pipe(Effect.tapError(() => close(server)))
          if (!health.ok) {
            yield* close(server)
            return yield* new RuntimeError({ message: `health check answered ${health.status}` })
          }
          const instance: Instance = {
            id: `inproc-${++next}`,
            appId: spec.appId,
            releaseId: spec.releaseId,
            specHash: spec.specHash,
            status: "running",
            address: { host: "127.0.0.1", port },
            startedAt: new Date()
          }
          running.set(instance.id, { instance, server })
          log(spec.appId, `release v${spec.releaseNumber} listening on ${port}`)
          return instance
        }),
      remove: (id) =>
        Effect.suspend(() => {
          const r = running.get(id)
          running.delete(id)
          return r ? close(r.server) : Effect.void
        }),
      list: (appId) =>
        Effect.sync(() =>
          [...running.values()].map((r) => r.instance).filter((i) => appId === undefined || i.appId === appId)
        ),
      logs: (appId, options = {}) =>
        Stream.suspend(() => Stream.fromIterable((logs.get(appId) ?? []).slice(-(options.tail ?? 0)))),
      stats: () =>
        Effect.sync(() => ({
          cpuPercent: 0,
          memoryBytes: process.memoryUsage().rss,
          memoryLimitBytes: process.constrainedMemory?.() ?? 0
        }))
    })
  })
)
