/**
 * Logs and statistics of containers on a real engine: the multiplexed log stream demultiplexed,
 * merged across instances, tailed and followed; CPU and memory from the engine's samples.
 */
import { assert, describe, layer } from "@effect/vitest"
import { RuntimeDriver } from "@paas/core/RuntimeDriver"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as Support from "./support.js"
import { elapsed, eventually, newApp, report, specFor, TestDocker } from "./support.js"

Support.warnIfNoDocker("the Docker logs and statistics tests")

describe.skipIf(!Support.dockerAvailable)("DockerRuntime logs and statistics", () => {
  layer(Support.layer(), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.scoped("logs: stdout and stderr demultiplexed, tail, and follow across a new instance", () =>
      Effect.gen(function* () {
        const runtime = yield* RuntimeDriver
        const { image } = yield* TestDocker
        const appId = yield* newApp
        const chatty = (greeting: string) => [
          "/bin/sh",
          "-c",
          // Apart in time, so that the merge by timestamp has one right order.
          `echo ${greeting}; sleep 0.3; echo oops >&2; sleep 0.3; echo out-2; ` +
            '(i=0; while [ $i -lt 600 ]; do echo "tick $i"; i=$((i+1)); sleep 0.1; done) & ' +
            'exec httpd -f -p "$PORT" -h /www'
        ]
        yield* runtime.start(specFor(appId, image, { run: { command: chatty("v1-hello") } }))

        const all = Chunk.toArray(yield* Stream.runCollect(runtime.logs(appId)))
        assert.deepStrictEqual(
          all.slice(0, 3).map((l) => [l.stream, l.line]),
          [
            ["stdout", "v1-hello"],
            ["stderr", "oops"],
            ["stdout", "out-2"]
          ]
        )
        assert.isTrue(all.every((l) => l.at instanceof Date && !Number.isNaN(l.at.getTime())))

        // Enough ticks for a tail to have something to cut.
        yield* eventually(
          Effect.filterOrFail(Stream.runCollect(runtime.logs(appId)), (c) => Chunk.size(c) >= 6)
        )
        const tail = Chunk.toArray(yield* Stream.runCollect(runtime.logs(appId, { tail: 2 })))
        assert.lengthOf(tail, 2)
        assert.match(tail[1]!.line, /^tick \d+$/)

        // Following: the last line, then new ones in order, then the lines of an instance started later.
        const followed = yield* runtime.logs(appId, { tail: 1, follow: true }).pipe(
          Stream.takeUntil((l) => l.line === "v2-hello"),
          Stream.runCollect,
          Effect.timeout("30 seconds"),
          Effect.fork
        )
        yield* Effect.sleep("1500 millis")
        yield* runtime.start(
          specFor(appId, image, { releaseNumber: 2, run: { command: chatty("v2-hello") } })
        )
        const lines = Chunk.toArray(yield* Fiber.join(followed))
        assert.isAtLeast(lines.length, 3)
        const ticks = lines.filter((l) => /^tick \d+$/.test(l.line)).map((l) => Number(l.line.slice(5)))
        assert.isAtLeast(ticks.length, 2)
        assert.deepStrictEqual(ticks.slice(0, 2), [ticks[0]!, ticks[0]! + 1])
        assert.strictEqual(lines.at(-1)?.line, "v2-hello")
      })
    )

    it.scoped("statistics: cpu from two samples, memory used and its limit", () =>
      Effect.gen(function* () {
        const runtime = yield* RuntimeDriver
        const { image } = yield* TestDocker
        const appId = yield* newApp
        yield* runtime.start(specFor(appId, image, { run: { memoryBytes: 48 * 1024 * 1024 } }))
        const [stats, ms] = yield* elapsed(runtime.stats(appId))
        yield* report("stats", ms)
        assert.isTrue(Number.isFinite(stats.cpuPercent) && stats.cpuPercent >= 0)
        assert.isAbove(stats.memoryBytes, 0)
        assert.isBelow(stats.memoryBytes, 48 * 1024 * 1024)
        assert.strictEqual(stats.memoryLimitBytes, 48 * 1024 * 1024)
        const error = yield* Effect.flip(runtime.stats(yield* newApp))
        assert.strictEqual(error._tag, "RuntimeError")
      })
    )
  })
})
