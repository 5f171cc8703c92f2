/**
 * The label router over real containers: the labels Traefik's docker provider reads, and the
 * routes read back from them.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { ProjectId } from "@paas/core/Project"
import { Router } from "@paas/core/Router"
import { RuntimeDriver } from "@paas/core/RuntimeDriver"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TraefikLabels from "../src/TraefikLabels.js"
import * as Support from "./support.js"
import { newApp, specFor, TestDocker } from "./support.js"

Support.warnIfNoDocker("the Traefik label router tests")

describe.skipIf(!Support.dockerAvailable)("TraefikLabels over DockerRuntime", () => {
  layer(
    Layer.provideMerge(
      TraefikLabels.layer,
      Support.layer({ traefik: { entrypoint: "websecure", certResolver: "le" } })
    ),
    { excludeTestServices: true, timeout: "120 seconds" }
  )((it) => {
    it.scoped("routes what the containers carry; set checks and records, list reads the containers", () =>
      Effect.gen(function* () {
        const runtime = yield* RuntimeDriver
        const router = yield* Router
        const { docker, image } = yield* TestDocker
        const appId = yield* newApp
        const hosts = [`${appId}.user-app.example.org`, "www.example.org"]
        const first = yield* runtime.start(specFor(appId, image, { hosts }))
        const info = yield* Effect.promise(() => docker.getContainer(first.id).inspect())
        const name = `paas-${appId}`
        assert.strictEqual(
          info.Config.Labels[`traefik.http.routers.${name}.rule`],
          `Host(\`${appId}.user-app.example.org\`) || Host(\`www.example.org\`)`
        )
        assert.strictEqual(info.Config.Labels[`traefik.http.routers.${name}.entrypoints`], "websecure")
        assert.strictEqual(info.Config.Labels[`traefik.http.routers.${name}.tls.certresolver`], "le")

        // With nothing recorded, the running container is the route.
        assert.deepStrictEqual(yield* router.list(appId), [
          { appId, hosts, instanceId: first.id, target: first.address! }
        ])
        const wrongHosts = yield* Effect.flip(
          router.set({ appId, hosts: ["other.example.org"], instanceId: first.id, target: first.address! })
        )
        assert.match(wrongHosts.message, /labels are fixed/)
        const noSuch = yield* Effect.flip(
          router.set({ appId, hosts, instanceId: "f".repeat(64), target: first.address! })
        )
        assert.strictEqual(noSuch._tag, "RouterError")

        // Two instances (a deploy in flight): the recorded one is the route until the switch.
        yield* router.set({ appId, hosts, instanceId: first.id, target: first.address! })
        const second = yield* runtime.start(specFor(appId, image, { hosts, releaseNumber: 2 }))
        assert.strictEqual((yield* router.list(appId))[0]?.instanceId, first.id)
        yield* router.set({ appId, hosts, instanceId: second.id, target: second.address! })
        assert.strictEqual((yield* router.list(appId))[0]?.instanceId, second.id)
        yield* runtime.remove(first.id)
        assert.deepStrictEqual(
          (yield* router.list()).filter((r) => r.appId === appId),
          [{ appId, hosts, instanceId: second.id, target: second.address! }]
        )
        yield* router.remove(appId)
        yield* runtime.remove(second.id)
        assert.isEmpty(yield* router.list(appId))
      })
    )
  })
})

describe("TraefikLabels", () => {
  it("labels name one router and one service per app, whatever the instance", () => {
    const appId = "3f1c2b9a-8d7e-4c6b-9a5f-1e2d3c4b5a69" as ProjectId
    const hosts = [`${appId}.user-app.example.org`, "shop.example.org"]
    const settings = { entrypoint: "web", certResolver: undefined, namePrefix: "paas" }
    const labels = TraefikLabels.containerLabels(settings, {
      appId,
      hosts,
      port: 3000,
      network: "paas-apps"
    })
    assert.deepStrictEqual(labels, {
      "traefik.enable": "true",
      [`traefik.http.routers.paas-${appId}.rule`]: TraefikLabels.hostRule(hosts),
      [`traefik.http.routers.paas-${appId}.entrypoints`]: "web",
      [`traefik.http.services.paas-${appId}.loadbalancer.server.port`]: "3000",
      "traefik.docker.network": "paas-apps"
    })
    assert.strictEqual(TraefikLabels.routerName(settings, appId), `paas-${appId}`)
  })
})
