/**
 * The Docker builder on a real engine: which Dockerfile and which folder paas.yaml picks,
 * `.dockerignore`, mistakes in them, pruning a project's images, and interrupting a build.
 */
import { randomUUID } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import { BuildFailed } from "@paas/core/Errors"
import { ImageBuilder } from "@paas/core/ImageBuilder"
import type { ProjectId } from "@paas/core/Project"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as DockerBuilder from "../src/DockerBuilder.js"
import * as Support from "./dockerSupport.js"
import {
  buildWith,
  busybox,
  busyboxBase,
  collect,
  eventually,
  fetchText,
  request,
  serve,
  siteFiles,
  TestBuilder
} from "./dockerSupport.js"

Support.warnIfNoDocker("the Docker builder context, prune and interruption tests")

/** A Dockerfile serving everything in its context with busybox httpd. */
const copyAll = `${[...busyboxBase, "COPY . /www/", 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]'].join("\n")}\n`

const exists = (ref: string) =>
  Effect.flatMap(TestBuilder, ({ docker }) =>
    Effect.promise(() =>
      docker
        .getImage(ref)
        .inspect()
        .then(
          () => true,
          () => false
        )
    )
  )

describe.skipIf(!Support.runDockerTests)("DockerBuilder: contexts, pruning, interruption", () => {
  it.scoped("the layer provides the core ImageBuilder and DockerBuilder, and checks its options", () =>
    Effect.gen(function* () {
      const workDir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "paas-docker-builder-test-"))),
        (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
      )
      const [core, builder] = yield* Effect.all([ImageBuilder, DockerBuilder.DockerBuilder]).pipe(
        Effect.provide(DockerBuilder.layer({ imagePrefix: "registry.local:5000/paas", workDir })),
        Effect.orDie
      )
      assert.strictEqual(core, builder)
      assert.strictEqual(builder.imageName("p", "b"), "registry.local:5000/paas/p:b")
      assert.strictEqual(builder.settings.limits.memoryBytes, 2 * 1024 * 1024 * 1024)
      const bad = yield* Effect.flip(DockerBuilder.make({ imagePrefix: "Not A Prefix" }))
      assert.include(bad.message, "imagePrefix")
      const base = yield* Effect.flip(DockerBuilder.make({ baseImages: { node: "node:20\nRUN evil" } }))
      assert.include(base.message, "baseImages.node")
      const unreachable = yield* Effect.flip(
        DockerBuilder.make({ socketPath: "/nonexistent/docker.sock", workDir })
      )
      assert.include(unreachable.message, "cannot reach the Docker engine at /nonexistent/docker.sock")
    })
  )

  layer(Support.layer(), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.scoped(
      "build.dockerfile and build.context pick the Dockerfile and the folder sent; .dockerignore is honoured",
      () =>
        Effect.gen(function* () {
          // A Dockerfile outside the context folder, as `docker build -f docker/site.Dockerfile web` would take it.
          const outside = yield* request({
            "paas.yaml": "build:\n  dockerfile: docker/site.Dockerfile\n  context: web\n",
            "docker/site.Dockerfile": copyAll,
            "web/busybox": { content: busybox, mode: 0o755 },
            "web/index.html": "from the web folder\n",
            "web/.dockerignore": "# not for the image\nsecret.txt\ndrafts\n!drafts/published.html\n",
            "web/secret.txt": "do not ship\n",
            "web/drafts/unfinished.html": "not yet\n",
            "web/drafts/published.html": "published\n",
            "index.html": "from the root: wrong folder\n"
          })
          const first = collect()
          const built = yield* buildWith(outside, first.log)
          assert.include(first.lines, "Building docker/site.Dockerfile with context web")
          const port = yield* serve(built.image)
          assert.strictEqual((yield* fetchText(port)).body, "from the web folder\n")
          assert.strictEqual((yield* fetchText(port, "/secret.txt")).status, 404)
          assert.strictEqual((yield* fetchText(port, "/drafts/unfinished.html")).status, 404)
          assert.strictEqual((yield* fetchText(port, "/drafts/published.html")).body, "published\n")
          // The Dockerfile the builder sends (with the labels added) is read by the engine, not copied.
          assert.strictEqual((yield* fetchText(port, "/.paas.Dockerfile")).status, 404)
          assert.strictEqual(
            (yield* fetchText(port, "/.dockerignore")).body,
            "# not for the image\nsecret.txt\ndrafts\n!drafts/published.html\n.paas.Dockerfile\n"
          )

          // Without build.dockerfile, the Dockerfile at the root of the context is used.
          const inside = yield* request({
            "paas.yaml": "build:\n  context: site\n",
            "site/Dockerfile": copyAll,
            "site/busybox": { content: busybox, mode: 0o755 },
            "site/index.html": "from site/\n"
          })
          const second = collect()
          const other = yield* buildWith(inside, second.log)
          assert.include(second.lines, "Building site/Dockerfile with context site")
          const otherPort = yield* serve(other.image)
          assert.strictEqual((yield* fetchText(otherPort)).body, "from site/\n")
          // With no .dockerignore of its own, none appears.
          assert.strictEqual((yield* fetchText(otherPort, "/.dockerignore")).status, 404)
          assert.strictEqual((yield* fetchText(otherPort, "/.paas.Dockerfile")).status, 404)
        })
    )

    it.scoped("a missing context folder or Dockerfile, and a path leaving the repository, fail clearly", () =>
      Effect.gen(function* () {
        const failure = (files: Record<string, Support.File>) =>
          Effect.flatMap(request(files), (req) => Effect.flip(buildWith(req, collect().log)))
        const noFolder = yield* failure({ "paas.yaml": "build:\n  context: app\n", "index.html": "x" })
        assert.instanceOf(noFolder, BuildFailed)
        assert.strictEqual(noFolder.message, "build.context app: no such folder in the repository")
        const noFile = yield* failure({ "paas.yaml": "build:\n  method: dockerfile\n", "index.html": "x" })
        assert.strictEqual(
          noFile.message,
          "Dockerfile: no such file in the repository (build.method dockerfile)"
        )
        const named = yield* failure({
          "paas.yaml": "build:\n  dockerfile: ops/Dockerfile\n",
          Dockerfile: "FROM scratch\n"
        })
        assert.strictEqual(
          named.message,
          "ops/Dockerfile: no such file in the repository (build.method auto)"
        )
        const leaving = yield* failure({ "paas.yaml": "build:\n  context: ../elsewhere\n" })
        assert.include(
          leaving.message,
          "paas.yaml line 2: build.context: expected a relative path inside the repository"
        )
        const syntax = yield* failure({ Dockerfile: "FROM scratch\nFROBNICATE now\n" })
        assert.include(syntax.message.toLowerCase(), "unknown instruction: frobnicate")
      })
    )

    it.scoped(
      "prune keeps the images it is told to keep and removes the project's others, leftovers of failed builds included",
      () =>
        Effect.gen(function* () {
          const { builder, prefix, docker } = yield* TestBuilder
          const projectId = randomUUID() as ProjectId
          const version = (n: number) => request(siteFiles(`version ${n}\n`), { projectId })
          const one = yield* buildWith(yield* version(1), collect().log)
          const two = yield* buildWith(yield* version(2), collect().log)
          const three = yield* buildWith(yield* version(3), collect().log)
          // A failed build leaves its last good layer behind, named by nothing.
          const failedLog = collect()
          yield* Effect.flip(
            buildWith(
              yield* request(siteFiles(`broken ${randomUUID()}\n`, ["RUN exit 1"]), { projectId }),
              failedLog.log
            )
          )
          const leftover = failedLog.lines
            .map((l) => / ---> ([0-9a-f]{12})$/.exec(l)?.[1])
            .filter((id) => id !== undefined)
            .at(-1)!
          assert.isTrue(yield* exists(leftover))
          // Another project's image and a name someone else gave are not this project's to remove.
          const neighbour = yield* buildWith(yield* request(siteFiles("neighbour\n")), collect().log)
          const alias = `${prefix}-alias/kept:1`
          yield* Effect.promise(() =>
            docker.getImage(one.image).tag({ repo: `${prefix}-alias/kept`, tag: "1" })
          )
          yield* Effect.addFinalizer(() => Support.removeImage(docker, alias))

          yield* builder.prune(projectId, [two.image, three.image])
          assert.isTrue(yield* exists(two.image))
          assert.isTrue(yield* exists(three.image))
          assert.isFalse(yield* exists(one.image))
          assert.isTrue(yield* exists(alias), "an image another name keeps stays")
          assert.isFalse(yield* exists(leftover))
          assert.isTrue(yield* exists(neighbour.image))

          // By image id too, and the kept ones still run.
          const id = (yield* Effect.promise(() => docker.getImage(three.image).inspect())).Id
          yield* builder.prune(projectId, [id])
          assert.isFalse(yield* exists(two.image))
          assert.isTrue(yield* exists(id))
          assert.strictEqual((yield* fetchText(yield* serve(three.image))).body, "version 3\n")
        })
    )

    it.scoped("interrupting a build aborts the engine's build and removes its step container", () =>
      Effect.gen(function* () {
        const { docker } = yield* TestBuilder
        const running = yield* Deferred.make<string>()
        let sleeping = false
        const log = (line: string) =>
          Effect.suspend(() => {
            if (line.endsWith(": RUN sleep 30")) sleeping = true
            const container = / ---> Running in ([0-9a-f]{12})$/.exec(line)?.[1]
            return sleeping && container !== undefined ? Deferred.succeed(running, container) : Effect.void
          })
        const req = yield* request(siteFiles(`sleepy ${randomUUID()}`, ["RUN sleep 30"]))
        const fiber = yield* Effect.fork(buildWith(req, log))
        const container = yield* Deferred.await(running).pipe(Effect.timeout("60 seconds"))
        const started = Date.now()
        yield* Fiber.interrupt(fiber)
        const interruptMs = Date.now() - started
        const gone = yield* eventually(() =>
          docker
            .getContainer(container)
            .inspect()
            .then(
              () => false,
              () => true
            )
        )
        console.log(
          `[builder] interrupting a build in RUN sleep 30: ${interruptMs} ms, container gone: ${gone}`
        )
        assert.isTrue(gone, `the step container ${container} is still there`)
        assert.isFalse(yield* exists((yield* TestBuilder).builder.imageName(req.projectId, req.buildId)))
      })
    )
  })
})
