/**
 * The Docker runtime on a real engine: containers started from a busybox image built FROM scratch,
 * checked over HTTP on their 127.0.0.1 ports and through `docker inspect`. Every container,
 * network and image is this file's own and goes when the layer closes.
 */
import { assert, describe, layer } from "@effect/vitest"
import { RunSettings } from "@paas/core/Release"
import { RuntimeDriver } from "@paas/core/RuntimeDriver"
import * as Effect from "effect/Effect"
import { DockerClient } from "../src/DockerClient.js"
import * as DockerRuntime from "../src/DockerRuntime.js"
import * as Support from "./support.js"
import { dockerCli, elapsed, envOf, httpGet, newApp, report, specFor, TestDocker } from "./support.js"

Support.warnIfNoDocker("the Docker runtime tests")

describe.skipIf(!Support.dockerAvailable)("DockerRuntime", () => {
  layer(Support.layer(), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.scoped(
      "starts a container reachable on 127.0.0.1, with env, limits, labels and nothing privileged",
      () =>
        Effect.gen(function* () {
          const runtime = yield* DockerRuntime.DockerRuntime
          const { docker, image, options } = yield* TestDocker
          const appId = yield* newApp
          const spec = specFor(appId, image, {
            env: { GREETING: "hello there", PORT: "1" },
            run: { memoryBytes: 64 * 1024 * 1024, cpus: 0.5 }
          })
          const [instance, ms] = yield* elapsed(runtime.start(spec))
          yield* report("start → healthy", ms)
          assert.strictEqual(instance.status, "running")
          assert.strictEqual(instance.address?.host, "127.0.0.1")
          const port = instance.address!.port
          assert.strictEqual((yield* httpGet(port, "/")).body, "hello from busybox\n")
          const env = envOf((yield* httpGet(port, "/cgi-bin/env")).body)
          assert.strictEqual(env.GREETING, "hello there")
          // PORT is always the port the runtime chose, whatever the app's env says.
          assert.strictEqual(env.PORT, "8080")

          const info = yield* Effect.promise(() => docker.getContainer(instance.id).inspect())
          const labels = info.Config.Labels
          const traefik = Object.fromEntries(Object.entries(labels).filter(([k]) => k.startsWith("traefik.")))
          const name = `paas-${appId}`
          assert.deepStrictEqual(traefik, {
            "traefik.enable": "true",
            [`traefik.http.routers.${name}.rule`]: `Host(\`${appId}.user-app.localhost\`)`,
            [`traefik.http.routers.${name}.entrypoints`]: "web",
            [`traefik.http.services.${name}.loadbalancer.server.port`]: "8080",
            "traefik.docker.network": options.appsNetwork!
          })
          assert.strictEqual(labels["paas.managed-by"], options.installationId)
          assert.strictEqual(labels["paas.project"], appId)
          assert.strictEqual(labels["paas.release"], spec.releaseId)
          assert.strictEqual(labels["paas.spec-hash"], spec.specHash)
          assert.strictEqual(labels["paas.instance"], info.Name.replace(/^\//, ""))

          const host = info.HostConfig
          assert.isTrue(host.Init)
          assert.strictEqual(host.RestartPolicy?.Name, "unless-stopped")
          assert.isFalse(host.Privileged)
          assert.isEmpty(host.CapAdd ?? [])
          assert.isEmpty(host.Binds ?? [])
          assert.isEmpty(info.Mounts)
          assert.isEmpty(host.Devices ?? [])
          assert.include(host.SecurityOpt ?? [], "no-new-privileges:true")
          assert.isFalse(host.ReadonlyRootfs)
          assert.strictEqual(host.Memory, 64 * 1024 * 1024)
          assert.strictEqual(host.NanoCpus, 500_000_000)
          assert.deepStrictEqual(host.PortBindings, { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] })
          assert.deepStrictEqual(Object.keys(info.NetworkSettings.Networks), [options.appsNetwork!])
          assert.deepStrictEqual(
            info.NetworkSettings.Ports["8080/tcp"]?.map((b) => b.HostIp),
            ["127.0.0.1"]
          )

          const listed = yield* runtime.list(appId)
          assert.deepStrictEqual(
            listed.map((i) => [i.id, i.status, i.specHash, i.releaseId, i.address?.port]),
            [[instance.id, "running", spec.specHash, spec.releaseId, port]]
          )
          assert.strictEqual(yield* runtime.status(appId), "running")
        })
    )

    it.scoped("picks the port: run.port, else the image's single exposed port, else 8080", () =>
      Effect.gen(function* () {
        const runtime = yield* RuntimeDriver
        const { docker, suffix } = yield* TestDocker
        const exposed = `paas-runtime-docker-test-${suffix}:exposes-7070`
        const bare = `paas-runtime-docker-test-${suffix}:exposes-nothing`
        for (const [tag, expose] of [
          [exposed, 7070],
          [bare, null]
        ] as const) {
          yield* Effect.acquireRelease(Support.buildImage(docker, tag, Support.appFiles(expose)), () =>
            Support.removeImage(docker, tag)
          )
        }
        const cases = [
          { image: exposed, port: null, expected: 7070 },
          { image: bare, port: null, expected: 8080 },
          { image: bare, port: 9090, expected: 9090 }
        ]
        for (const c of cases) {
          const appId = yield* newApp
          const instance = yield* runtime.start(specFor(appId, c.image, { run: { port: c.port } }))
          const env = envOf((yield* httpGet(instance.address!.port, "/cgi-bin/env")).body)
          assert.strictEqual(env.PORT, String(c.expected))
          const info = yield* Effect.promise(() => docker.getContainer(instance.id).inspect())
          assert.deepStrictEqual(Object.keys(info.NetworkSettings.Ports), [`${c.expected}/tcp`])
        }
      })
    )

    it.scoped("a read-only root filesystem when asked, with a writable /tmp", () =>
      Effect.gen(function* () {
        const { docker, image, options } = yield* TestDocker
        const client = yield* DockerClient
        // The option, for every app of a runtime...
        const readOnly = yield* Effect.provideService(
          DockerRuntime.make({ ...options, readOnlyRootFilesystem: true }),
          DockerClient,
          client
        )
        // ...and the app's own run settings, once core carries the field.
        const shared = yield* DockerRuntime.DockerRuntime
        const viaOption = yield* readOnly.start(specFor(yield* newApp, image))
        const viaSpec = yield* shared.start({
          ...specFor(yield* newApp, image),
          run: { ...RunSettings.defaults, readOnlyRootFilesystem: true } as unknown as RunSettings
        })
        for (const instance of [viaOption, viaSpec]) {
          const info = yield* Effect.promise(() => docker.getContainer(instance.id).inspect())
          assert.isTrue(info.HostConfig.ReadonlyRootfs)
          assert.deepStrictEqual(Object.keys(info.HostConfig.Tmpfs ?? {}), ["/tmp"])
          const body = (yield* httpGet(instance.address!.port, "/cgi-bin/write")).body
          assert.deepStrictEqual(body.trim().split("\n"), ["read-only", "tmp-writable"])
        }
        const writable = yield* shared.start(specFor(yield* newApp, image))
        assert.strictEqual(
          (yield* httpGet(writable.address!.port, "/cgi-bin/write")).body.split("\n")[0],
          "writable"
        )
      })
    )

    it.scoped("status follows the container: running, then failed once killed behind our back", () =>
      Effect.gen(function* () {
        const runtime = yield* DockerRuntime.DockerRuntime
        const { image } = yield* TestDocker
        const appId = yield* newApp
        assert.strictEqual(yield* runtime.status(appId), "stopped")
        const instance = yield* runtime.start(specFor(appId, image))
        assert.strictEqual(yield* runtime.status(appId), "running")
        assert.strictEqual((yield* dockerCli(["kill", instance.id])).code, 0)
        // `docker kill` counts as a manual stop: unless-stopped does not bring it back.
        const [killed] = yield* runtime.list(appId)
        assert.strictEqual(killed?.status, "failed")
        assert.isNull(killed?.address)
        assert.strictEqual(yield* runtime.status(appId), "failed")
      })
    )

    it.scoped(
      "remove drains, stops and removes; it is idempotent and refuses containers it does not own",
      () =>
        Effect.gen(function* () {
          const runtime = yield* RuntimeDriver
          const { docker, image, options, suffix } = yield* TestDocker
          const appId = yield* newApp
          const instance = yield* runtime.start(specFor(appId, image))
          const [, ms] = yield* elapsed(runtime.remove(instance.id))
          yield* report("remove (100 ms drain grace included)", ms)
          const gone = yield* Effect.promise(() =>
            docker
              .getContainer(instance.id)
              .inspect()
              .then(
                () => false,
                (e: { statusCode?: number }) => e.statusCode === 404
              )
          )
          assert.isTrue(gone)
          assert.isEmpty(yield* runtime.list(appId))
          yield* runtime.remove(instance.id)
          yield* runtime.remove("0".repeat(64))
          assert.strictEqual((yield* Effect.flip(runtime.remove("../../images/json")))._tag, "RuntimeError")

          // A container without our ownership label, on our very network, with our project label.
          const foreignName = `paas-test-foreign-${suffix}`
          yield* Effect.addFinalizer(() => dockerCli(["rm", "-f", foreignName]))
          const created = yield* dockerCli([
            "run",
            "-d",
            "--name",
            foreignName,
            "--network",
            options.appsNetwork!,
            "--label",
            `paas.project=${appId}`,
            image
          ])
          assert.strictEqual(created.code, 0, created.stderr)
          const foreignId = created.stdout.trim()
          const refused = yield* Effect.flip(runtime.remove(foreignId))
          assert.match(refused.message, /not managed by this installation/)
          assert.isEmpty(yield* runtime.list(appId))
          assert.isEmpty((yield* runtime.list()).filter((i) => i.id === foreignId))
          const still = yield* Effect.promise(() => docker.getContainer(foreignId).inspect())
          assert.isTrue(still.State.Running)
        })
    )

    it.scoped("removes a project's images but those kept, and nothing else", () =>
      Effect.gen(function* () {
        const runtime = yield* DockerRuntime.DockerRuntime
        const { docker, image, suffix } = yield* TestDocker
        const appId = yield* newApp
        const repo = `paas-test-${suffix}/${appId}`
        const foreign = `paas-test-${suffix}/someone-else`
        for (const [r, tag] of [
          [repo, "v1"],
          [repo, "v2"],
          [foreign, "v1"]
        ] as const) {
          yield* Effect.promise(() => docker.getImage(image).tag({ repo: r, tag }))
          yield* Effect.addFinalizer(() => Support.removeImage(docker, `${r}:${tag}`))
        }
        const result = yield* runtime.removeImages(appId, [`${repo}:v2`])
        assert.deepStrictEqual(result, { removed: [`${repo}:v1`], inUse: [] })
        const tags = (yield* Effect.promise(() => docker.listImages())).flatMap((i) => i.RepoTags ?? [])
        assert.notInclude(tags, `${repo}:v1`)
        assert.includeMembers(tags, [`${repo}:v2`, `${foreign}:v1`, image])
      })
    )
  })
})
