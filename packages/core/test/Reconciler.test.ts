import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Build, type BuildId } from "../src/Build.js"
import { Persistence } from "../src/Persistence.js"
import { Platform } from "../src/Platform.js"
import { PlatformConfig } from "../src/PlatformConfig.js"
import * as Reconciler from "../src/Reconciler.js"
import { Release } from "../src/Release.js"
import { Router } from "../src/Router.js"
import { RuntimeDriver } from "../src/RuntimeDriver.js"
import { InMemoryRouter, InMemoryRuntime, TestPlatform } from "../src/testing.js"
import { push, signUp } from "./support.js"

/** A user with `n` deployed apps. */
const deployed = (n: number) =>
  Effect.gen(function* () {
    const platform = yield* Platform
    const { principal } = yield* signUp("owner")
    const projects = []
    for (let i = 0; i < n; i++) {
      const project = yield* platform.createProject(principal, { name: `app-${i}` })
      yield* push(principal, project.id, { "index.js": `${i}` })
      projects.push(project)
    }
    return { principal, projects }
  })

const run = <A, E>(effect: Effect.Effect<A, E, TestPlatform.Services>) =>
  Effect.provide(effect, TestPlatform.layer())

describe("Reconciler", () => {
  it.scoped("a pass on a converged system changes nothing", () =>
    run(
      Effect.gen(function* () {
        yield* deployed(3)
        const reconciler = yield* Reconciler.Reconciler
        const runtime = yield* InMemoryRuntime.RuntimeControls
        const routes = yield* InMemoryRouter.Routes
        const before = [yield* runtime.operations, yield* routes.changes]
        const report = yield* reconciler.reconcileAll
        assert.strictEqual(report.apps, 3)
        assert.lengthOf(report.converged, 0)
        assert.deepStrictEqual([yield* runtime.operations, yield* routes.changes], before)
      })
    )
  )

  it.scoped(
    "drift converges in one pass: a killed app, a vanished app, wrong env, an orphan, a stray route",
    () =>
      run(
        Effect.gen(function* () {
          const { projects } = yield* deployed(4)
          const reconciler = yield* Reconciler.Reconciler
          const runtime = yield* InMemoryRuntime.RuntimeControls
          const driver = yield* RuntimeDriver
          const router = yield* Router
          const store = yield* Persistence
          const settings = yield* PlatformConfig
          const [a, b, c, d] = projects
          const instanceOf = (id: string) => Effect.map(driver.list(id as never), (l) => l[0]!)

          // a: killed behind our back
          yield* runtime.kill((yield* instanceOf(a!.id)).id)
          // b: removed behind our back
          yield* runtime.forget((yield* instanceOf(b!.id)).id)
          // c: replaced by one running with the wrong env
          const cInstance = yield* instanceOf(c!.id)
          const cSpec = (yield* runtime.specOf(cInstance.id))!
          yield* runtime.forget(cInstance.id)
          yield* driver.start({ ...cSpec, env: { WRONG: "1" }, specHash: "0000000000000000" })
          // an orphan: an instance of an app nobody wants, with a route
          const ghostRelease = new Release({
            ...Option.getOrThrow(yield* store.releases.findByNumber(d!.id, 1)),
            projectId: "00000000-0000-4000-8000-000000000000" as never
          })
          const ghost = yield* driver.start(Reconciler.specOf(settings, ghostRelease.projectId, ghostRelease))
          yield* router.set({
            appId: ghost.appId,
            hosts: ["ghost.localhost"],
            instanceId: ghost.id,
            target: ghost.address!
          })

          const report = yield* reconciler.reconcileAll
          assert.sameMembers(
            report.converged.map((o) => o.appId),
            [a!.id, b!.id, c!.id, ghost.appId]
          )
          const instances = yield* runtime.instances
          assert.lengthOf(instances, 4)
          assert.isTrue(instances.every((i) => i.status === "running"))
          assert.notInclude(
            instances.map((i) => i.appId),
            ghost.appId
          )
          const cNow = yield* instanceOf(c!.id)
          assert.deepStrictEqual((yield* runtime.specOf(cNow.id))?.env, {})
          const routes = yield* router.list()
          assert.lengthOf(routes, 4)
          for (const route of routes) assert.isTrue(instances.some((i) => i.id === route.instanceId))

          // and the next pass finds nothing to do
          assert.lengthOf((yield* reconciler.reconcileAll).converged, 0)
        })
      )
  )

  it.scoped("a crash between starting the new instance and switching the route heals on the next pass", () =>
    run(
      Effect.gen(function* () {
        const { principal, projects } = yield* deployed(1)
        const project = projects[0]!
        const platform = yield* Platform
        const reconciler = yield* Reconciler.Reconciler
        const routes = yield* InMemoryRouter.Routes
        const runtime = yield* InMemoryRuntime.RuntimeControls
        const [old] = yield* runtime.instances
        // The route change fails, as if the process died right after the new instance started.
        yield* routes.failNext("crash")
        const result = yield* platform.deploy(principal, project.id, { V: "2" })
        assert.isTrue(result._tag === "Deployed" && result.status === "failed")
        assert.lengthOf(yield* runtime.instances, 2)
        assert.strictEqual((yield* routes.lookup(`${project.id}.user-app.localhost`))?.instanceId, old!.id)

        const report = yield* reconciler.reconcileAll
        assert.lengthOf(report.converged, 1)
        const instances = yield* runtime.instances
        assert.lengthOf(instances, 1)
        assert.notStrictEqual(instances[0]!.id, old!.id)
        assert.strictEqual(
          (yield* routes.lookup(`${project.id}.user-app.localhost`))?.instanceId,
          instances[0]!.id
        )
        assert.strictEqual((yield* platform.status(principal, [project.id]))[0]!.status, "running")
        assert.lengthOf((yield* reconciler.reconcileAll).converged, 0)
      })
    )
  )

  it.scoped("a build left running by a crashed process is marked failed", () =>
    run(
      Effect.gen(function* () {
        const { projects } = yield* deployed(1)
        const store = yield* Persistence
        const reconciler = yield* Reconciler.Reconciler
        const [done] = yield* store.builds.listByProject(projects[0]!.id, 1)
        const stale = yield* store.builds.insert(
          new Build({
            ...done!,
            id: "11111111-1111-4111-8111-111111111111" as BuildId,
            status: "running",
            image: null,
            finishedAt: null
          })
        )
        const report = yield* reconciler.reconcileAll
        assert.strictEqual(report.abandonedBuilds, 1)
        const after = Option.getOrThrow(yield* store.builds.findById(stale.id))
        assert.strictEqual(after.status, "failed")
        assert.include(after.log, "server stopped")
        assert.strictEqual(Option.getOrThrow(yield* store.builds.findById(done!.id)).status, "succeeded")
      })
    )
  )

  it.scopedLive("the loop runs passes on its own and on a trigger", () =>
    Effect.gen(function* () {
      const runtime = yield* InMemoryRuntime.RuntimeControls
      const reconciler = yield* Reconciler.Reconciler
      const { projects } = yield* deployed(1)
      const [instance] = yield* runtime.instances
      yield* runtime.kill(instance!.id)
      yield* reconciler.trigger
      // bounded wait for the background pass
      for (let i = 0; i < 100; i++) {
        const now = yield* runtime.instances
        if (now.length === 1 && now[0]!.status === "running" && now[0]!.id !== instance!.id) break
        yield* Effect.sleep("10 millis")
      }
      const [replaced] = yield* runtime.instances
      assert.strictEqual(replaced?.appId, projects[0]!.id)
      assert.strictEqual(replaced?.status, "running")
      assert.notStrictEqual(replaced?.id, instance!.id)
    }).pipe(
      Effect.provide(
        Layer.provideMerge(
          Reconciler.layerLoop,
          TestPlatform.layer({ config: { reconcileInterval: Duration.hours(1) } })
        )
      )
    )
  )
})
