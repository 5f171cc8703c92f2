import { readFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { buildPath } from "../src/internal/localBuilder.js"
import { LineSplitter, run } from "../src/internal/process.js"
import { collect, isGone, scratch } from "./support.js"

describe("build commands", () => {
  it("splits output into lines on \\n and \\r\\n, across chunks and multi-byte characters", () => {
    const splitter = new LineSplitter()
    const euro = Buffer.from("€")
    assert.deepStrictEqual(splitter.push(Buffer.from("one\r\ntw")), ["one"])
    assert.deepStrictEqual(splitter.push(Buffer.concat([Buffer.from("o "), euro.subarray(0, 1)])), [])
    assert.deepStrictEqual(splitter.push(Buffer.concat([euro.subarray(1), Buffer.from("\n\nlast")])), [
      "two €",
      ""
    ])
    assert.deepStrictEqual(splitter.end(), ["last"])
    assert.deepStrictEqual(splitter.end(), [])
    const long = new LineSplitter()
    const pieces = long.push(Buffer.from("x".repeat(150 * 1024)))
    assert.deepStrictEqual(
      pieces.map((p) => p.length),
      [64 * 1024, 64 * 1024]
    )
    assert.deepStrictEqual(long.end(), ["x".repeat(22 * 1024)])
  })

  it.scoped("kills what a finished command left running in the background", () =>
    Effect.gen(function* () {
      const dir = yield* scratch()
      const marker = "PAAS_BUILD_ID=test-stragglers"
      const { lines, log } = collect()
      const script = `
        const { spawn } = require("node:child_process")
        const inGroup = spawn("sleep", ["600"], { stdio: "ignore" })
        const escaped = spawn("sleep", ["600"], { stdio: "ignore", detached: true })
        inGroup.unref(); escaped.unref()
        require("node:fs").writeFileSync("pids.json", JSON.stringify([inGroup.pid, escaped.pid]))
        console.log("leaving")
      `
      const outcome = yield* run(["node", "-e", script], {
        cwd: dir,
        env: { PATH: buildPath(), PAAS_BUILD_ID: "test-stragglers" },
        log,
        marker
      })
      assert.deepStrictEqual(outcome, { _tag: "Exited", code: 0 })
      assert.deepStrictEqual(lines, ["leaving"])
      const pids = JSON.parse(readFileSync(join(dir, "pids.json"), "utf8")) as Array<number>
      for (const pid of pids) assert.isTrue(isGone(pid), `background process ${pid} survived`)
    })
  )

  it.scoped("reports exit codes, signals and commands that cannot start", () =>
    Effect.gen(function* () {
      const dir = yield* scratch()
      const options = {
        cwd: dir,
        env: { PATH: buildPath() },
        log: () => Effect.void,
        marker: "PAAS_BUILD_ID=x"
      }
      assert.deepStrictEqual(yield* run(["node", "-e", "process.exit(7)"], options), {
        _tag: "Exited",
        code: 7
      })
      assert.deepStrictEqual(yield* run(["node", "-e", "process.kill(process.pid, 'SIGKILL')"], options), {
        _tag: "Signalled",
        signal: "SIGKILL"
      })
      const missing = yield* run(["definitely-not-a-command"], options)
      assert.strictEqual(missing._tag, "NotStarted")
      const nul = yield* run(["node", "a\0b"], options)
      assert.strictEqual(nul._tag, "NotStarted")
    })
  )
})
