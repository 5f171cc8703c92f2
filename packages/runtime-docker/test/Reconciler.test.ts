/**
 * The core Reconciler over the Docker runtime, with in-memory persistence and router: containers
 * killed or removed behind its back converge back, an orphan it owns goes, and a container it does
 * not own is left alone.
 */
import { randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import type { CommitSha } from "@paas/core/Build"
import { Persistence } from "@paas/core/Persistence"
import * as PlatformConfig from "@paas/core/PlatformConfig"
import { ProjectConfig, type ProjectId } from "@paas/core/Project"
import * as Reconciler from "@paas/core/Reconciler"
import { type ReleaseId, RunSettings } from "@paas/core/Release"
import { Router } from "@paas/core/Router"
import { RuntimeDriver } from "@paas/core/RuntimeDriver"
import { InMemoryPersistence, InMemoryRouter } from "@paas/core/testing"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Support from "./support.js"
import { dockerCli, httpGet, newApp, specFor, TestDocker } from "./support.js"

Support.warnIfNoDocker("the reconciler-over-Docker tests")

const TestLayer = Reconciler.layer.pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      // A drain grace long enough for a request read from the old route to finish on a busy machine.
      Support.layer({ drainGrace: Duration.seconds(1) }),
      InMemoryPersistence.layer,
      InMemoryRouter.layer,
      PlatformConfig.layer()
    )
  )
)

/** Records a release of the test image for `appId` and makes it the desired one. */
const desire = (appId: ProjectId, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const store = yield* Persistence
    const { image } = yield* TestDocker
    const release = yield* store.releases.insert({
      id: randomUUID() as ReleaseId,
      projectId: appId,
      image,
      commit: "a".repeat(40) as CommitSha,
      buildId: null,
      config: new ProjectConfig({ env }),
      run: new RunSettings({ ...RunSettings.defaults, healthcheckTimeoutMs: 20_000 }),
      description: "test release",
      createdAt: new Date()
    })
    yield* store.deployments.setDesired(appId, { releaseId: release.id, desired: "running" }, new Date())
    return release
  })

/** The app answers through the address its route points at. */
const answersThroughRoute = (appId: ProjectId) =>
  Effect.gen(function* () {
    const router = yield* Router
    const [route] = yield* router.list(appId)
    assert.isDefined(route)
    const runtime = yield* RuntimeDriver
    const instances = yield* runtime.list(appId)
    assert.deepStrictEqual(
      instances.map((i) => [i.id, i.status]),
      [[route!.instanceId, "running"]]
    )
    assert.strictEqual((yield* httpGet(route!.target.port, "/")).status, 200)
    return route!
  })

describe.skipIf(!Support.dockerAvailable)("Reconciler over DockerRuntime", () => {
  layer(TestLayer, { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.scoped(
      "heals a killed and a removed container, removes an owned orphan, leaves a foreign container alone",
      () =>
        Effect.gen(function* () {
          const reconciler = yield* Reconciler.Reconciler
          const runtime = yield* RuntimeDriver
          const settings = yield* PlatformConfig.PlatformConfig
          const { docker, image, options, suffix } = yield* TestDocker
          const killed = yield* newApp
          const removed = yield* newApp
          yield* desire(killed, { WHO: "killed" })
          yield* desire(removed, { WHO: "removed" })

          const first = yield* reconciler.reconcileAll
          assert.sameMembers(
            first.converged.map((o) => [o.appId, o.status].join(" ")),
            [`${killed} running`, `${removed} running`]
          )
          const killedRoute = yield* answersThroughRoute(killed)
          const removedRoute = yield* answersThroughRoute(removed)
          assert.lengthOf((yield* reconciler.reconcileAll).converged, 0)

          // Drift behind the reconciler's back.
          assert.strictEqual((yield* dockerCli(["kill", killedRoute.instanceId])).code, 0)
          assert.strictEqual((yield* dockerCli(["rm", "-f", removedRoute.instanceId])).code, 0)
          // An instance this installation owns, of an app nobody wants.
          const orphanApp = yield* newApp
          const orphan = yield* runtime.start(
            specFor(orphanApp, image, { hosts: PlatformConfig.appHosts(settings, orphanApp) })
          )
          // A container that is not ours, labelled as if it belonged to a wanted app.
          const foreignName = `paas-test-foreign-${suffix}`
          yield* Effect.addFinalizer(() => dockerCli(["rm", "-f", foreignName]))
          const foreign = yield* dockerCli([
            "run",
            "-d",
            "--init",
            "--name",
            foreignName,
            "--network",
            options.appsNetwork!,
            "--label",
            `paas.project=${killed}`,
            "--label",
            "paas.managed-by=someone-else",
            image
          ])
          assert.strictEqual(foreign.code, 0, foreign.stderr)

          const second = yield* reconciler.reconcileAll
          assert.sameMembers(
            second.converged.map((o) => [o.appId, o.status].join(" ")),
            [`${killed} running`, `${removed} running`, `${orphanApp} unknown`]
          )
          const healedKilled = yield* answersThroughRoute(killed)
          const healedRemoved = yield* answersThroughRoute(removed)
          assert.notStrictEqual(healedKilled.instanceId, killedRoute.instanceId)
          assert.notStrictEqual(healedRemoved.instanceId, removedRoute.instanceId)
          const env = (yield* httpGet(healedKilled.target.port, "/cgi-bin/env")).body
          assert.include(env.split("\n"), "WHO=killed")
          // The killed container was replaced, not left beside the new one.
          assert.isEmpty(
            yield* Effect.promise(() =>
              docker.listContainers({ all: true, filters: { id: [killedRoute.instanceId] } })
            )
          )
          assert.isEmpty(yield* runtime.list(orphanApp))
          const orphanGone = yield* Effect.promise(() =>
            docker.listContainers({ all: true, filters: { id: [orphan.id] } })
          )
          assert.isEmpty(orphanGone)
          const stillThere = yield* Effect.promise(() => docker.getContainer(foreign.stdout.trim()).inspect())
          assert.isTrue(stillThere.State.Running)

          assert.lengthOf((yield* reconciler.reconcileAll).converged, 0)
        })
    )

    it.scoped("a new release replaces the instance with no failed request through the route", () =>
      Effect.gen(function* () {
        const reconciler = yield* Reconciler.Reconciler
        const router = yield* Router
        const appId = yield* newApp
        yield* desire(appId, { VERSION: "1" })
        yield* reconciler.reconcileApp(appId)
        const before = yield* answersThroughRoute(appId)

        // A client that, like a proxy, looks the route up for every request.
        let done = false
        const outcomes = { ok: 0, failed: [] as Array<string> }
        const load = yield* Effect.fork(
          Effect.gen(function* () {
            for (let i = 0; i < 20_000 && !done; i++) {
              const [route] = yield* router.list(appId)
              const answer = yield* Effect.either(httpGet(route!.target.port, "/"))
              if (answer._tag === "Right" && answer.right.status === 200) outcomes.ok++
              else
                outcomes.failed.push(answer._tag === "Left" ? answer.left.message : `${answer.right.status}`)
            }
          })
        )
        yield* desire(appId, { VERSION: "2" })
        const outcome = yield* reconciler.reconcileApp(appId)
        done = true
        yield* Fiber.join(load)
        yield* Effect.sync(() =>
          console.log(
            `[runtime-docker] requests during the replacement: ${outcomes.ok} ok, ${outcomes.failed.length} failed`
          )
        )
        assert.deepStrictEqual([outcome.status, outcome.changed], ["running", true])
        assert.deepStrictEqual(outcomes.failed, [])
        assert.isAbove(outcomes.ok, 0)
        const after = yield* answersThroughRoute(appId)
        assert.notStrictEqual(after.instanceId, before.instanceId)
        assert.include((yield* httpGet(after.target.port, "/cgi-bin/env")).body.split("\n"), "VERSION=2")
      })
    )
  })
})
