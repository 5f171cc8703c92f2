// Figures for the local builder (not a test; prints numbers, asserts nothing):
//   node --conditions=source --import tsx packages/builder/test/bench.ts
// - building a tiny Node app with no dependencies (unpack, npm install, npm run build);
// - how long an app takes to answer its first request when started with `npm start` and with `node`;
// - how long interrupting a running build takes until every process is gone.
import { spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { buildPath } from "../src/internal/localBuilder.js"
import * as LocalBuilder from "../src/LocalBuilder.js"
import { freePort, request, tarball } from "./support.js"

const RUNS = 5

const stats = (samples: ReadonlyArray<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  const median = sorted[Math.floor(sorted.length / 2)]!
  return `median ${median.toFixed(0)} ms (min ${sorted[0]!.toFixed(0)}, max ${sorted.at(-1)!.toFixed(0)}, n=${sorted.length})`
}

const app = {
  "package.json": JSON.stringify({
    name: "tiny",
    version: "1.0.0",
    scripts: { build: "node -e \"console.log('built')\"", start: "node server.js" }
  }),
  "server.js":
    'require("node:http").createServer((q, s) => s.end("ok")).listen(Number(process.env.PORT), "127.0.0.1")'
}

const firstResponse = (image: string, argv: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const port = await Effect.runPromise(freePort)
    const started = performance.now()
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: image,
      env: { PATH: buildPath(), PORT: String(port), HOME: image },
      stdio: "ignore",
      detached: true
    })
    const deadline = Date.now() + 30_000
    for (;;) {
      try {
        await (await fetch(`http://127.0.0.1:${port}/`)).text()
        break
      } catch {
        if (Date.now() > deadline) throw new Error("no answer")
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }
    const elapsed = performance.now() - started
    process.kill(-child.pid!, "SIGKILL")
    await new Promise((resolve) => child.once("exit", resolve))
    return elapsed
  })

const program = Effect.gen(function* () {
  const root = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "paas-bench-"))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )
  const builder = yield* LocalBuilder.make({ root })
  const archive = yield* tarball(app)

  // The first build also fills npm's cache; it is reported on its own.
  const builds: Array<number> = []
  let image = ""
  for (let i = 0; i <= RUNS; i++) {
    const started = performance.now()
    image = (yield* builder.build(request(archive), () => Effect.void)).image
    builds.push(performance.now() - started)
  }
  console.log(`build, first:          ${builds[0]!.toFixed(0)} ms`)
  console.log(`build, tiny Node app:  ${stats(builds.slice(1))}`)

  const viaNpm: Array<number> = []
  const viaNode: Array<number> = []
  for (let i = 0; i < RUNS; i++) {
    viaNpm.push(yield* firstResponse(image, ["npm", "start"]))
    viaNode.push(yield* firstResponse(image, ["node", "server.js"]))
  }
  console.log(`first response, npm start:      ${stats(viaNpm)}`)
  console.log(`first response, node server.js: ${stats(viaNode)}`)

  const long = yield* tarball({
    "package.json": JSON.stringify({ name: "long", version: "1.0.0", scripts: { build: "node long.js" } }),
    "long.js": 'console.log("started"); setInterval(() => {}, 1000)',
    "index.html": "x"
  })
  const interrupts: Array<number> = []
  for (let i = 0; i < RUNS; i++) {
    const started = yield* Deferred.make<void>()
    const fiber = yield* Effect.fork(
      builder.build(request(long), (line) =>
        line === "started" ? Deferred.succeed(started, undefined) : Effect.void
      )
    )
    yield* Deferred.await(started)
    const t0 = performance.now()
    yield* Fiber.interrupt(fiber)
    interrupts.push(performance.now() - t0)
  }
  console.log(`interrupting a build (npm run build → sh → node): ${stats(interrupts)}`)
})

Effect.runPromise(Effect.scoped(program)).catch((e) => {
  console.error(e)
  process.exit(1)
})
