import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as ProcessRuntime from "../src/ProcessRuntime.js"
import { alive, appDir, eventually, get, scratch, specOf } from "./support.js"

const runtime = (options: Partial<ProcessRuntime.ProcessRuntimeOptions> = {}) =>
  Effect.gen(function* () {
    const root = yield* scratch()
    return yield* ProcessRuntime.make({
      root,
      stopGrace: "3 seconds",
      restartDelay: "100 millis",
      ...options
    })
  })

const logLines = (rt: ProcessRuntime.ProcessRuntime["Type"], appId: Parameters<typeof rt.logs>[0]) =>
  Effect.map(Stream.runCollect(rt.logs(appId)), (c) => Chunk.toArray(c).map((l) => l.line))

const startedProcesses = (lines: ReadonlyArray<string>) =>
  lines.flatMap((l) => {
    const m = /^\[paas\] started process (\d+) on port (\d+)$/.exec(l)
    return m ? [{ pid: Number(m[1]), port: Number(m[2]) }] : []
  })

describe("ProcessRuntime supervision", () => {
  it.scopedLive("restarts a crashed instance on the same port, reporting it failed then running", () =>
    Effect.gen(function* () {
      const rt = yield* runtime({ restartDelay: "300 millis" })
      const spec = specOf(yield* appDir, { env: { VERSION: "1" } })
      const instance = yield* rt.start(spec)
      const port = instance.address!.port
      const before = Number((yield* get(port, "/pid")).body)
      yield* get(port, "/crash")
      // Down for the backoff delay: failed (or already starting again), never running meanwhile.
      yield* eventually(
        Effect.map(rt.list(spec.appId), (l) => l[0]?.status === "failed"),
        "the crash to be seen",
        5_000
      )
      yield* eventually(
        Effect.map(rt.list(spec.appId), (l) => l[0]?.status === "running"),
        "the restart",
        15_000
      )
      const after = Number((yield* get(port, "/pid")).body)
      assert.notStrictEqual(after, before)
      assert.isFalse(alive(before))
      assert.strictEqual((yield* get(port, "/")).body, "release 1")
      const [listed] = yield* rt.list(spec.appId)
      assert.strictEqual(listed?.id, instance.id)
      const lines = yield* logLines(rt, spec.appId)
      assert.isTrue(lines.some((l) => /^\[paas\] process exited with code 1 after [\d.]+ s$/.test(l)))
      assert.include(lines, "[paas] restarting in 0.3 s")
      assert.include(lines, `[paas] instance ${instance.id} is healthy again`)
      assert.deepStrictEqual(
        startedProcesses(lines).map((p) => p.port),
        [port, port]
      )
    })
  )

  it.scopedLive("backs off exponentially and gives up after too many fast crashes", () =>
    Effect.gen(function* () {
      const rt = yield* runtime({ maxFastCrashes: 2, stableAfter: "20 seconds" })
      const spec = specOf(yield* appDir, { env: { MODE: "crash-after", CRASH_AFTER_MS: "1500" } })
      const instance = yield* rt.start(spec)
      yield* eventually(
        Effect.map(logLines(rt, spec.appId), (l) => l.some((x) => x.includes("not restarting it again"))),
        "the runtime to give up",
        30_000
      )
      const lines = yield* logLines(rt, spec.appId)
      const delays = lines.filter((l) => l.startsWith("[paas] restarting in"))
      assert.deepStrictEqual(delays, ["[paas] restarting in 0.1 s", "[paas] restarting in 0.2 s"])
      assert.include(lines, "[paas] crashed 3 times in a row; not restarting it again until it is redeployed")
      const started = startedProcesses(lines)
      assert.lengthOf(started, 3)
      assert.isTrue(started.every((p) => p.port === instance.address!.port))
      for (const { pid } of started) assert.isFalse(alive(pid))
      // It stays listed, as failed, until the reconciler removes it.
      assert.deepStrictEqual(
        (yield* rt.list(spec.appId)).map((i) => [i.id, i.status]),
        [[instance.id, "failed"]]
      )
      assert.strictEqual(yield* rt.status(spec.appId), "failed")
      const error = yield* Effect.flip(rt.stats(spec.appId))
      assert.include(error.message, "has no running process")
      yield* rt.remove(instance.id)
      assert.lengthOf(yield* rt.list(), 0)
    })
  )

  it.scopedLive("restarts an instance that stays above its memory limit", () =>
    Effect.gen(function* () {
      const rt = yield* runtime({ memoryCheckInterval: "100 millis" })
      const limit = 150 * 1024 * 1024
      const spec = specOf(yield* appDir, { run: { memoryBytes: limit } })
      const instance = yield* rt.start(spec)
      const port = instance.address!.port
      const before = Number((yield* get(port, "/pid")).body)
      assert.isBelow((yield* rt.stats(spec.appId)).memoryBytes, limit)
      yield* get(port, "/hog")
      yield* eventually(
        Effect.map(logLines(rt, spec.appId), (l) => l.some((x) => /above its limit of 150 MiB/.test(x))),
        "the memory check",
        10_000
      )
      yield* eventually(
        Effect.map(logLines(rt, spec.appId), (l) =>
          l.includes(`[paas] instance ${instance.id} is healthy again`)
        ),
        "the restart",
        15_000
      )
      assert.isFalse(alive(before))
      assert.strictEqual((yield* rt.list(spec.appId))[0]?.status, "running")
      assert.notStrictEqual(Number((yield* get(port, "/pid")).body), before)
    })
  )
})
