/**
 * What must not happen on a real engine: a failed start touching the serving instance, or an app
 * reaching the platform's network.
 */
import { assert, describe, layer } from "@effect/vitest"
import { RuntimeDriver } from "@paas/core/RuntimeDriver"
import * as Effect from "effect/Effect"
import * as Support from "./support.js"
import { dockerCli, elapsed, httpGet, newApp, report, specFor, TestDocker } from "./support.js"

Support.warnIfNoDocker("the Docker failure and isolation tests")

describe.skipIf(!Support.dockerAvailable)("DockerRuntime failures and isolation", () => {
  layer(Support.layer(), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.scoped("a failing start leaves the serving instance alone and removes the new one", () =>
      Effect.gen(function* () {
        const runtime = yield* RuntimeDriver
        const { docker, image, options } = yield* TestDocker
        const appId = yield* newApp
        const old = yield* runtime.start(specFor(appId, image))

        const unhealthy = yield* Effect.flip(
          runtime.start(
            specFor(appId, image, {
              releaseNumber: 2,
              run: { healthcheckPath: "/cgi-bin/fail", healthcheckTimeoutMs: 2_000 }
            })
          )
        )
        assert.strictEqual(unhealthy._tag, "RuntimeError")
        assert.match(unhealthy.message, /release v2 failed to start: .*HTTP 500/)

        const [crashing, ms] = yield* elapsed(
          Effect.flip(
            runtime.start(
              specFor(appId, image, {
                releaseNumber: 3,
                run: { command: ["/bin/sh", "-c", "echo bye; exit 3"] }
              })
            )
          )
        )
        yield* report("a crashing start fails after", ms)
        assert.match(crashing.message, /release v3 failed to start: the container exited with code 3/)
        assert.match(crashing.message, /last output: bye/)

        const missing = yield* Effect.flip(runtime.start(specFor(appId, "paas-test-no-such-image:nope")))
        assert.match(missing.message, /not on the Docker engine/)

        const all = yield* Effect.promise(() =>
          docker.listContainers({
            all: true,
            filters: { label: [`paas.managed-by=${options.installationId}`, `paas.project=${appId}`] }
          })
        )
        assert.deepStrictEqual(
          all.map((c) => c.Id),
          [old.id]
        )
        assert.strictEqual((yield* httpGet(old.address!.port, "/")).status, 200)
      })
    )

    it.scoped("apps join only the apps network and cannot reach a container on the platform network", () =>
      Effect.gen(function* () {
        const runtime = yield* RuntimeDriver
        const { docker, image, options, suffix } = yield* TestDocker
        yield* Effect.promise(() =>
          docker.createNetwork({ Name: options.platformNetwork!, Driver: "bridge", CheckDuplicate: true })
        )
        const dbName = `paas-test-platform-db-${suffix}`
        yield* Effect.addFinalizer(() => dockerCli(["rm", "-f", dbName]))
        const db = yield* dockerCli([
          "run",
          "-d",
          "--init",
          "--name",
          dbName,
          "--network",
          options.platformNetwork!,
          image
        ])
        assert.strictEqual(db.code, 0, db.stderr)
        const ipOn = (id: string, network: string) =>
          Effect.map(
            Effect.promise(() => docker.getContainer(id).inspect()),
            (i) => i.NetworkSettings.Networks[network]!.IPAddress
          )
        const dbIp = yield* ipOn(db.stdout.trim(), options.platformNetwork!)
        const one = yield* runtime.start(specFor(yield* newApp, image))
        const two = yield* runtime.start(specFor(yield* newApp, image))
        const oneIp = yield* ipOn(one.id, options.appsNetwork!)
        const fetch = (from: string, ip: string) =>
          dockerCli(["exec", from, "sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${ip} 8080`])
        // The probe works (app to app on the apps network)...
        const reachable = yield* fetch(two.id, oneIp)
        assert.match(reachable.stdout, /hello from busybox/)
        // ...and finds nothing on the platform network.
        const blocked = yield* fetch(two.id, dbIp)
        assert.notMatch(blocked.stdout, /hello from busybox/)
        assert.notStrictEqual(blocked.code, 0)
      })
    )
  })
})
