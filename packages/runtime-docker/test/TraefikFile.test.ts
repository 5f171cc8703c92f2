import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import type { ProjectId } from "@paas/core/Project"
import type { Route } from "@paas/core/Router"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as YAML from "yaml"
import * as TraefikFile from "../src/TraefikFile.js"

const scratch = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "paas-traefik-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

const appId = "3f1c2b9a-8d7e-4c6b-9a5f-1e2d3c4b5a69" as ProjectId
const route: Route = {
  appId,
  hosts: [`${appId}.user-app.example.org`, "shop.example.org"],
  instanceId: "c0ffee",
  target: { host: "127.0.0.1", port: 32768 }
}

describe("TraefikFile", () => {
  it.scoped("writes one file per app: the router's rule and a service at the target", () =>
    Effect.gen(function* () {
      const dir = yield* scratch
      const router = yield* TraefikFile.make({ directory: join(dir, "dynamic") })
      yield* router.set(route)
      const file = router.fileOf(appId)
      assert.strictEqual(file, join(dir, "dynamic", `paas-${appId}.yml`))
      const text = yield* Effect.promise(() => readFile(file, "utf8"))
      const name = `paas-${appId}`
      assert.deepStrictEqual(YAML.parse(text), {
        http: {
          routers: {
            [name]: {
              rule: `Host(\`${appId}.user-app.example.org\`) || Host(\`shop.example.org\`)`,
              entryPoints: ["web"],
              service: name
            }
          },
          services: { [name]: { loadBalancer: { servers: [{ url: "http://127.0.0.1:32768" }] } } }
        }
      })
      assert.strictEqual(((yield* Effect.promise(() => stat(file))).mode & 0o777).toString(8), "644")
      assert.deepStrictEqual(yield* router.list(), [route])
      assert.deepStrictEqual(yield* router.list(appId), [route])
      // Nothing but the file: the temporary one was renamed into place.
      assert.deepStrictEqual(yield* Effect.promise(() => readdir(join(dir, "dynamic"))), [
        `paas-${appId}.yml`
      ])
    })
  )

  it.scoped("TLS with a certificate resolver, another entrypoint, and an upstream host of its own", () =>
    Effect.gen(function* () {
      const dir = yield* scratch
      const router = yield* TraefikFile.make({
        directory: dir,
        entrypoint: "websecure",
        certResolver: "le",
        namePrefix: "acme",
        upstreamHost: "host.docker.internal"
      })
      yield* router.set(route)
      const doc = YAML.parse(yield* Effect.promise(() => readFile(router.fileOf(appId), "utf8")))
      const name = `acme-${appId}`
      assert.deepStrictEqual(doc.http.routers[name].entryPoints, ["websecure"])
      assert.deepStrictEqual(doc.http.routers[name].tls, { certResolver: "le" })
      assert.deepStrictEqual(doc.http.services[name].loadBalancer.servers, [
        { url: "http://host.docker.internal:32768" }
      ])
      // The route reads back as the platform set it, not as rewritten for Traefik.
      assert.deepStrictEqual(yield* router.list(), [route])
    })
  )

  it.scoped("replaces a route in place, skips identical rewrites, removes idempotently", () =>
    Effect.gen(function* () {
      const dir = yield* scratch
      const router = yield* TraefikFile.make({ directory: dir })
      yield* router.set(route)
      const next: Route = { ...route, instanceId: "beef", target: { host: "127.0.0.1", port: 40000 } }
      yield* router.set(next)
      assert.deepStrictEqual(yield* router.list(), [next])
      const before = yield* Effect.promise(() => stat(router.fileOf(appId)))
      yield* router.set(next)
      assert.strictEqual((yield* Effect.promise(() => stat(router.fileOf(appId)))).ino, before.ino)
      yield* router.remove(appId)
      assert.deepStrictEqual(yield* router.list(), [])
      yield* router.remove(appId)
      assert.deepStrictEqual(yield* Effect.promise(() => readdir(dir)), [])
    })
  )

  it.scoped("refuses host names that could change the rule, and ignores files that are not its own", () =>
    Effect.gen(function* () {
      const dir = yield* scratch
      const router = yield* TraefikFile.make({ directory: dir })
      for (const host of ["evil`) || PathPrefix(`/", "a b", "", "x/y"]) {
        const error = yield* Effect.flip(router.set({ ...route, hosts: [host] }))
        assert.strictEqual(error._tag, "RouterError")
      }
      yield* Effect.promise(() => writeFile(join(dir, "traefik.yml"), "http: {}\n"))
      yield* Effect.promise(() => writeFile(join(dir, `paas-${appId}.yml`), "http: {}\n"))
      const other = "11111111-2222-4333-8444-555555555555"
      yield* Effect.promise(() => writeFile(join(dir, `paas-${other}.yml`), TraefikFile.render(route)))
      assert.deepStrictEqual(yield* router.list(), [])
      assert.isTrue(Option.isSome(TraefikFile.parse(TraefikFile.render(route))))
      assert.isTrue(Option.isNone(TraefikFile.parse("http: {}\n")))
    })
  )
})
