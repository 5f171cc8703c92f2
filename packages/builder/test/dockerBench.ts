// Figures for the Docker builder (not a test; prints numbers, asserts nothing). Needs an engine:
//   node --conditions=source --import tsx packages/builder/test/dockerBench.ts
// - a cached rebuild of a tiny FROM scratch busybox site through the builder (unpack, pack the
//   context, the engine's build with every layer cached, tag), over RUNS builds of one project;
// - the first build of that project, for comparison (its COPY of the page is new).
// Everything it builds is pruned at the end.
import { randomUUID } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { ProjectId } from "@paas/core/Project"
import * as Effect from "effect/Effect"
import * as DockerBuilder from "../src/DockerBuilder.js"
import { request, siteFiles } from "./dockerSupport.js"

const RUNS = 11

const stats = (samples: ReadonlyArray<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  const median = sorted[Math.floor(sorted.length / 2)]!
  return `p50 ${median.toFixed(0)} ms (min ${sorted[0]!.toFixed(0)}, max ${sorted.at(-1)!.toFixed(0)}, n=${sorted.length})`
}

const main = Effect.gen(function* () {
  const workDir = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "paas-docker-bench-"))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )
  const builder = yield* DockerBuilder.make({
    imagePrefix: `paas-bench-${randomUUID().slice(0, 8)}`,
    workDir
  })
  const projectId = randomUUID() as ProjectId
  yield* Effect.addFinalizer(() => builder.prune(projectId, []))
  const files = siteFiles(`<h1>bench ${projectId}</h1>\n`)
  const quiet = () => Effect.void
  const timed = Effect.gen(function* () {
    const req = yield* request(files, { projectId })
    const started = performance.now()
    yield* builder.build(req, quiet)
    return performance.now() - started
  })
  const first = yield* timed
  const cached: Array<number> = []
  for (let i = 0; i < RUNS; i++) cached.push(yield* timed)
  console.log(`first build of a tiny busybox site (new COPY layer): ${first.toFixed(0)} ms`)
  console.log(`cached rebuild of the same site through DockerBuilder: ${stats(cached)}`)
})

Effect.runPromise(Effect.scoped(main)).catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
