import { spawn } from "node:child_process"
import { readFile } from "node:fs/promises"
import { totalmem } from "node:os"
import { dirname, join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { readAllStats, readStat } from "../src/internal/procfs.js"
import { readState, writeState } from "../src/internal/state.js"
import * as ProcessRuntime from "../src/ProcessRuntime.js"
import { alive, appDir, eventually, get, newAppId, scratch, specOf } from "./support.js"

/** A runtime on a scratch root, stopped with the test's scope. */
const runtime = (options: Partial<ProcessRuntime.ProcessRuntimeOptions> = {}) =>
  Effect.gen(function* () {
    const root = yield* scratch()
    const rt = yield* ProcessRuntime.make({ root, stopGrace: "3 seconds", ...options })
    return { root, rt }
  })

const logLines = (rt: ProcessRuntime.ProcessRuntime["Type"], appId: Parameters<typeof rt.logs>[0]) =>
  Effect.map(Stream.runCollect(rt.logs(appId)), (c) => Chunk.toArray(c).map((l) => l.line))

/** The pids named in the app's output by the fixture ("grandchild N") or the runtime. */
const pidsIn = (lines: ReadonlyArray<string>, pattern: RegExp) =>
  lines.flatMap((l) => {
    const m = pattern.exec(l)
    return m ? [Number(m[1])] : []
  })

describe("ProcessRuntime", () => {
  it.scopedLive("starts an app that becomes healthy and answers on its address", () =>
    Effect.gen(function* () {
      const { rt } = yield* runtime()
      const spec = specOf(yield* appDir, { env: { VERSION: "1" } })
      const instance = yield* rt.start(spec)
      assert.strictEqual(instance.status, "running")
      assert.strictEqual(instance.appId, spec.appId)
      assert.strictEqual(instance.specHash, spec.specHash)
      assert.strictEqual(instance.address?.host, "127.0.0.1")
      const res = yield* get(instance.address!.port, "/")
      assert.strictEqual(res.status, 200)
      assert.strictEqual(res.body, "release 1")
      assert.deepStrictEqual(
        (yield* rt.list(spec.appId)).map((i) => [i.id, i.status]),
        [[instance.id, "running"]]
      )
      assert.lengthOf(yield* rt.list(newAppId()), 0)
      assert.strictEqual(yield* rt.status(spec.appId), "running")
      assert.strictEqual(yield* rt.status(newAppId()), "unknown")
      // The state file records the process, for the clean-up after a crash of the server.
      const pid = Number(yield* Effect.map(get(instance.address!.port, "/pid"), (r) => r.body))
      assert.deepStrictEqual(
        readState(rt.root)?.processes.map((p) => [p.instanceId, p.pid]),
        [[instance.id, pid]]
      )
    })
  )

  // `it.scoped` runs on a test clock that only moves when told to; the runtime waits on real time.
  it.scoped("works under a test clock too", () =>
    Effect.gen(function* () {
      const { rt } = yield* runtime()
      const spec = specOf(yield* appDir, { env: { MODE: "family" } })
      const instance = yield* rt.start(spec)
      assert.strictEqual((yield* get(instance.address!.port, "/")).status, 200)
      assert.isAbove((yield* rt.stats(spec.appId)).memoryBytes, 0)
      yield* rt.remove(instance.id)
      const failed = yield* Effect.flip(rt.start(specOf(spec.image, { env: { MODE: "exit" } })))
      assert.include(failed.message, "exited with code 3")
    })
  )

  it.scopedLive("passes the app's env, PORT, a minimal PATH and HOME, and nothing of the server's env", () =>
    Effect.gen(function* () {
      const previous = process.env.PAAS_TEST_SERVER_SECRET
      process.env.PAAS_TEST_SERVER_SECRET = "hunter2"
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (previous === undefined) delete process.env.PAAS_TEST_SERVER_SECRET
          else process.env.PAAS_TEST_SERVER_SECRET = previous
        })
      )
      const { rt } = yield* runtime()
      const dir = yield* appDir
      const instance = yield* rt.start(specOf(dir, { env: { VERSION: "2", GREETING: "hello world" } }))
      const env = JSON.parse((yield* get(instance.address!.port, "/env")).body) as Record<string, string>
      assert.strictEqual(env.GREETING, "hello world")
      assert.strictEqual(env.PORT, String(instance.address!.port))
      assert.strictEqual(env.HOME, dir)
      assert.strictEqual(env.PATH, `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`)
      assert.isUndefined(env.PAAS_TEST_SERVER_SECRET)
      assert.sameMembers(Object.keys(env), ["PATH", "HOME", "PORT", "VERSION", "GREETING"])

      // A fixed port in the run settings is used as is.
      const fixed = instance.address!.port + 1
      const pinned = yield* rt.start(specOf(dir, { run: { port: fixed } }))
      assert.strictEqual(pinned.address?.port, fixed)
      assert.strictEqual(JSON.parse((yield* get(fixed, "/env")).body).PORT, String(fixed))
    })
  )

  it.scopedLive("an app that exits at start fails `start` with its exit code and last output", () =>
    Effect.gen(function* () {
      const { rt } = yield* runtime()
      const spec = specOf(yield* appDir, { env: { MODE: "exit" } })
      const error = yield* Effect.flip(rt.start(spec))
      assert.strictEqual(error._tag, "RuntimeError")
      assert.include(error.message, "release v1 exited with code 3 before passing its health check")
      assert.include(error.message, "boom: DATABASE_URL is not set")
      assert.lengthOf(yield* rt.list(), 0)
      assert.lengthOf(readState(rt.root)?.processes ?? [], 0)
    })
  )

  it.scopedLive(
    "an app that never answers fails `start` after its timeout and leaves no process behind",
    () =>
      Effect.gen(function* () {
        const { rt } = yield* runtime()
        const spec = specOf(yield* appDir, { env: { MODE: "silent" }, run: { healthcheckTimeoutMs: 1_500 } })
        const error = yield* Effect.flip(rt.start(spec))
        assert.include(error.message, "did not pass its health check (GET /health on port")
        assert.include(error.message, "within 1500 ms; last attempt: ECONNREFUSED")
        assert.include(error.message, "app starting in mode silent")
        const lines = yield* logLines(rt, spec.appId)
        const pids = [
          ...pidsIn(lines, /^grandchild (\d+)$/),
          ...pidsIn(lines, /^\[paas\] started process (\d+)/)
        ]
        assert.lengthOf(pids, 2)
        for (const pid of pids) assert.isFalse(alive(pid), `process ${pid} is still running`)
        assert.lengthOf(yield* rt.list(), 0)
      })
  )

  it.scopedLive("refuses a spec without a command or without its directory, with a clear reason", () =>
    Effect.gen(function* () {
      const { rt } = yield* runtime()
      const dir = yield* appDir
      const noCommand = yield* Effect.flip(rt.start(specOf(dir, { run: { command: null } })))
      assert.include(noCommand.message, "no start command")
      const missing = yield* Effect.flip(rt.start(specOf(join(dir, "nope"))))
      assert.include(missing.message, `the app directory ${join(dir, "nope")} does not exist`)
      const relative = yield* Effect.flip(rt.start(specOf("some/dir")))
      assert.include(relative.message, "absolute path")
      const badProgram = yield* Effect.flip(
        rt.start(specOf(dir, { run: { command: ["./no-such-program"] } }))
      )
      assert.include(badProgram.message, "could not be started: ENOENT")
      assert.lengthOf(yield* rt.list(), 0)
    })
  )

  it.scopedLive("remove stops the whole process group, forgets the instance, and is idempotent", () =>
    Effect.gen(function* () {
      const { rt } = yield* runtime()
      const spec = specOf(yield* appDir, { env: { MODE: "family" } })
      const instance = yield* rt.start(spec)
      const pid = Number((yield* get(instance.address!.port, "/pid")).body)
      yield* eventually(
        Effect.map(logLines(rt, spec.appId), (l) => pidsIn(l, /^grandchild (\d+)$/).length === 1),
        "the grandchild"
      )
      const [grandchild] = pidsIn(yield* logLines(rt, spec.appId), /^grandchild (\d+)$/)
      assert.isTrue(alive(pid) && alive(grandchild!))
      yield* Effect.all([rt.remove(instance.id), rt.remove(instance.id)], { concurrency: 2 })
      assert.isFalse(alive(pid))
      assert.isFalse(alive(grandchild!))
      assert.lengthOf(yield* rt.list(), 0)
      yield* rt.remove(instance.id)
      yield* rt.remove("no-such-instance")
      assert.lengthOf(readState(rt.root)?.processes ?? [], 0)
      assert.include(yield* logLines(rt, spec.appId), `[paas] stopped instance ${instance.id}`)
    })
  )

  it.scopedLive("giving up on a start (interruption) removes the instance", () =>
    Effect.gen(function* () {
      const { rt } = yield* runtime()
      const spec = specOf(yield* appDir, { env: { MODE: "silent" } })
      const result = yield* Effect.either(Effect.timeout(rt.start(spec), "1500 millis"))
      assert.strictEqual(result._tag, "Left")
      assert.lengthOf(yield* rt.list(), 0)
      const lines = yield* logLines(rt, spec.appId)
      for (const pid of pidsIn(lines, /^\[paas\] started process (\d+)/)) assert.isFalse(alive(pid))
    })
  )

  it.scopedLive("closing the runtime's scope stops every app", () =>
    Effect.gen(function* () {
      const root = yield* scratch()
      const dir = yield* appDir
      const pids = yield* Effect.scoped(
        Effect.gen(function* () {
          const rt = yield* ProcessRuntime.make({ root, stopGrace: "3 seconds" })
          const a = yield* rt.start(specOf(dir))
          const b = yield* rt.start(specOf(dir))
          return yield* Effect.forEach([a, b], (i) =>
            Effect.map(get(i.address!.port, "/pid"), (r) => Number(r.body))
          )
        })
      )
      for (const pid of pids) assert.isFalse(alive(pid))
      assert.lengthOf(readState(root)?.processes ?? [], 0)
    })
  )

  it.scopedLive("kills the leftovers of a previous run recorded in the state file, and nothing else", () =>
    Effect.gen(function* () {
      const root = yield* scratch()
      const sleeper = ["-e", "setInterval(() => {}, 1000)"]
      // A "previous run": a detached app (leading its group) that started a child of its own.
      const leftover = spawn(
        process.execPath,
        [
          "-e",
          `require("child_process").spawn(process.execPath, ${JSON.stringify(sleeper)}, { stdio: "ignore" }); setInterval(() => {}, 1000)`
        ],
        { detached: true, stdio: "ignore" }
      )
      // An unrelated process whose pid the state file names, with another start time (pid reuse).
      const unrelated = spawn(process.execPath, sleeper, { detached: true, stdio: "ignore" })
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const p of [leftover, unrelated])
            if (p.pid !== undefined && alive(p.pid)) process.kill(-p.pid, "SIGKILL")
        })
      )
      const leftoverPid = leftover.pid!
      yield* eventually(
        Effect.sync(() => readStat(leftoverPid) !== undefined && readStat(unrelated.pid!) !== undefined),
        "the processes to start"
      )
      const members = () =>
        readAllStats()
          .filter((p) => p.pgrp === leftoverPid && p.state !== "Z")
          .map((p) => p.pid)
      yield* eventually(
        Effect.sync(() => members().length === 2),
        "the leftover's child"
      )
      const childPid = members().find((p) => p !== leftoverPid)!
      writeState(root, [
        {
          instanceId: "old-1",
          appId: newAppId(),
          pid: leftoverPid,
          startTime: readStat(leftoverPid)!.startTime,
          argv: [process.execPath]
        },
        {
          instanceId: "old-2",
          appId: newAppId(),
          pid: unrelated.pid!,
          startTime: String(Number(readStat(unrelated.pid!)!.startTime) - 1),
          argv: [process.execPath]
        },
        { instanceId: "old-3", appId: newAppId(), pid: 4_000_000, startTime: "1", argv: [] }
      ])
      yield* ProcessRuntime.make({ root, stopGrace: "3 seconds" })
      assert.isFalse(alive(leftoverPid))
      assert.isFalse(alive(childPid))
      assert.isTrue(alive(unrelated.pid!))
      assert.lengthOf(readState(root)?.processes ?? [], 0)
    })
  )

  it.scopedLive("keeps one log per app across instances, in memory and in a file", () =>
    Effect.gen(function* () {
      const { rt } = yield* runtime()
      const dir = yield* appDir
      const spec = specOf(dir)
      const first = yield* rt.start(spec)
      yield* get(first.address!.port, "/log?line=hello-1")
      yield* eventually(
        Effect.map(logLines(rt, spec.appId), (l) => l.includes("err:hello-1")),
        "the first lines"
      )
      yield* rt.remove(first.id)
      const second = yield* rt.start({ ...spec, releaseNumber: 2 })
      yield* get(second.address!.port, "/log?line=hello-2")
      yield* eventually(
        Effect.map(logLines(rt, spec.appId), (l) => l.includes("hello-2") && l.includes("err:hello-2")),
        "the second lines"
      )
      const all = yield* logLines(rt, spec.appId)
      assert.isTrue(all.indexOf("hello-1") < all.indexOf(`[paas] stopped instance ${first.id}`))
      assert.isTrue(all.indexOf(`[paas] stopped instance ${first.id}`) < all.indexOf("hello-2"))
      const tail = Chunk.toArray(yield* Stream.runCollect(rt.logs(spec.appId, { tail: 2 })))
      assert.sameMembers(
        tail.map((l) => `${l.stream} ${l.line}`),
        ["stdout hello-2", "stderr err:hello-2"]
      )

      // Following: the last past line, then new lines as the app writes them.
      const follower = yield* Effect.fork(
        rt.logs(spec.appId, { tail: 1, follow: true }).pipe(
          Stream.takeUntil((l) => l.line === "err:hello-3"),
          Stream.runCollect,
          Effect.timeout("15 seconds")
        )
      )
      yield* Effect.sleep("100 millis")
      yield* get(second.address!.port, "/log?line=hello-3")
      const followed = Chunk.toArray(yield* follower).map((l) => l.line)
      assert.include(["hello-2", "err:hello-2"], followed[0])
      assert.includeMembers(followed, ["hello-3", "err:hello-3"])

      const file = yield* Effect.promise(() => readFile(rt.logFile(spec.appId), "utf8"))
      assert.match(file, /^\d{4}-\d\d-\d\dT\S+Z stdout hello-1$/m)
      assert.match(file, /^\S+ stderr err:hello-3$/m)
    })
  )

  it.scopedLive("rotates the log file at its size limit, and reads the log back after a restart", () =>
    Effect.gen(function* () {
      const root = yield* scratch()
      const dir = yield* appDir
      const spec = specOf(dir)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const rt = yield* ProcessRuntime.make({ root, stopGrace: "3 seconds", logFileBytes: 2_000 })
          const instance = yield* rt.start(spec)
          for (let i = 0; i < 30; i++) yield* get(instance.address!.port, `/log?line=line-${i}`)
          yield* eventually(
            Effect.map(logLines(rt, spec.appId), (l) => l.includes("err:line-29")),
            "the lines"
          )
        })
      )
      const path = join(root, "logs", `${spec.appId}.log`)
      const rotated = yield* Effect.promise(() => readFile(`${path}.1`, "utf8"))
      assert.isAtLeast(Buffer.byteLength(rotated), 2_000)
      assert.isBelow(Buffer.byteLength(rotated), 2_300)
      const rt = yield* ProcessRuntime.make({ root, stopGrace: "3 seconds" })
      const lines = yield* logLines(rt, spec.appId)
      assert.include(lines, "err:line-29")
      assert.match(lines[lines.length - 1]!, /^\[paas\] stopped instance \S+: the runtime is shutting down$/)
    })
  )

  it.scopedLive("statistics: cpu over the process tree, rss, and the limit", () =>
    Effect.gen(function* () {
      const { rt } = yield* runtime()
      const dir = yield* appDir
      const busy = specOf(dir, { env: { MODE: "busy" }, run: { memoryBytes: 512 * 1024 * 1024 } })
      yield* rt.start(busy)
      const first = yield* rt.stats(busy.appId)
      yield* Effect.sleep("300 millis")
      const second = yield* rt.stats(busy.appId)
      console.log("stats of a busy app:", first, second)
      // The spinning child does the work; its parent alone would be near 0 %.
      assert.isAbove(first.cpuPercent, 10)
      assert.isAbove(second.cpuPercent, 10)
      assert.isAbove(first.memoryBytes, 10 * 1024 * 1024)
      assert.strictEqual(first.memoryLimitBytes, 512 * 1024 * 1024)

      const idle = specOf(dir)
      yield* rt.start(idle)
      const stats = yield* rt.stats(idle.appId)
      assert.isBelow(stats.cpuPercent, 50)
      assert.strictEqual(stats.memoryLimitBytes, totalmem())
      const missing = yield* Effect.flip(rt.stats(newAppId()))
      assert.include(missing.message, "has no running process")
    })
  )
})
