// How long one reconcile pass takes for 100, 1,000 and 10,000 apps on the in-memory drivers.
// Goal: ≤ 200 ms for 10,000 apps when converged, and linear growth.
// Run: node --conditions=source --import tsx bench/reconcile/run.ts (or npm run bench:reconcile)
import { randomUUID } from "node:crypto"
import { performance } from "node:perf_hooks"
import { CommitSha } from "@paas/core/Build"
import { Persistence } from "@paas/core/Persistence"
import { ProjectConfig, type ProjectId } from "@paas/core/Project"
import { Reconciler } from "@paas/core/Reconciler"
import { ReleaseId, RunSettings } from "@paas/core/Release"
import { InMemoryRuntime, TestPlatform } from "@paas/core/testing"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

const SIZES = [100, 1_000, 10_000]
const REPEATS = 5

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = performance.now()
    const result = yield* effect
    return { ms: performance.now() - start, result }
  })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const benchSize = (apps: number) =>
  Effect.gen(function* () {
    const store = yield* Persistence
    const reconciler = yield* Reconciler
    const runtime = yield* InMemoryRuntime.RuntimeControls
    const at = new Date()
    for (let i = 0; i < apps; i++) {
      const projectId = randomUUID() as ProjectId
      const release = yield* store.releases.insert({
        id: ReleaseId.make(randomUUID()),
        projectId,
        image: `memory/${projectId}:1`,
        commit: CommitSha.make(i.toString(16).padStart(40, "0")),
        buildId: null,
        run: RunSettings.defaults,
        config: new ProjectConfig({ env: { INDEX: String(i) } }),
        description: "bench",
        createdAt: at
      })
      yield* store.deployments.setDesired(projectId, { releaseId: release.id, desired: "running" }, at)
    }
    const converge = yield* timed(reconciler.reconcileAll)
    const steady: Array<number> = []
    for (let i = 0; i < REPEATS; i++) {
      const pass = yield* timed(reconciler.reconcileAll)
      if (pass.result.converged.length !== 0) return yield* Effect.dieMessage("a converged pass found work")
      steady.push(pass.ms)
    }
    // Drift: kill 1% of the instances, and time the pass that heals them.
    const instances = yield* runtime.instances
    for (let i = 0; i < instances.length; i += 100) yield* runtime.kill(instances[i]!.id)
    const heal = yield* timed(reconciler.reconcileAll)
    return {
      apps,
      firstPassMs: converge.ms,
      started: converge.result.converged.length,
      steadyPassMs: median(steady),
      healPassMs: heal.ms,
      healed: heal.result.converged.length
    }
  }).pipe(Effect.provide(TestPlatform.layer({ config: { reconcileConcurrency: 16 } })))

const program = Effect.gen(function* () {
  // Warm the JIT on a small run first so the first size is not penalised.
  yield* benchSize(100)
  const rows = []
  for (const apps of SIZES) rows.push(yield* benchSize(apps))
  console.log("apps     first pass (starts all)   converged pass (median of 5)   pass healing 1% drift")
  for (const r of rows)
    console.log(
      `${String(r.apps).padStart(6)}   ${r.firstPassMs.toFixed(1).padStart(9)} ms (${r.started} started)   ${r.steadyPassMs
        .toFixed(1)
        .padStart(9)} ms   ${r.healPassMs.toFixed(1).padStart(9)} ms (${r.healed} healed)`
    )
  const [small, , large] = rows
  console.log(
    `converged pass per app: ${((small!.steadyPassMs / small!.apps) * 1000).toFixed(2)} µs at ${small!.apps}, ${(
      (large!.steadyPassMs / large!.apps) * 1000
    ).toFixed(2)} µs at ${large!.apps}`
  )
  console.log(
    `goal: converged pass for 10,000 apps ≤ 200 ms → ${large!.steadyPassMs <= 200 ? "met" : "NOT met"}`
  )
})

Effect.runPromise(program.pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning)))
