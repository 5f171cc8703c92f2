/**
 * The Docker builder on a real engine, with the repository's own Dockerfile: a commit's tar becomes
 * an image (busybox FROM scratch, since no registry can be reached), its output streams into the
 * build log, it is tagged and labelled, it serves, a failing step fails the build with the log's
 * tail, build arguments and limits arrive, and a second build reuses the cache.
 */
import { randomUUID } from "node:crypto"
import { assert, describe, it, layer } from "@effect/vitest"
import { BuildFailed } from "@paas/core/Errors"
import type { ProjectId } from "@paas/core/Project"
import { RunSettings } from "@paas/core/Release"
import * as Effect from "effect/Effect"
import * as Support from "./dockerSupport.js"
import { buildWith, collect, fetchText, request, serve, siteFiles, TestBuilder } from "./dockerSupport.js"

Support.warnIfNoDocker("the Docker builder tests")

describe("Docker engine for the builder tests", () => {
  it("is reachable when PAAS_REQUIRE_DOCKER=1", () => {
    if (Support.dockerRequired)
      assert.isTrue(Support.dockerAvailable, "PAAS_REQUIRE_DOCKER=1 but `docker info` fails")
  })
})

const MiB = 1024 * 1024

describe.skipIf(!Support.runDockerTests)("DockerBuilder with the repository's Dockerfile", () => {
  layer(
    Support.layer({
      buildArgs: { FROM_INSTALLATION: "installation-value" },
      limits: { memoryBytes: 256 * MiB, cpus: 0.5 }
    }),
    { excludeTestServices: true, timeout: "120 seconds" }
  )((it) => {
    it.scoped(
      "builds the commit's tree, streams the engine's output, tags and labels the image, which serves",
      () =>
        Effect.gen(function* () {
          const { docker, prefix } = yield* TestBuilder
          const req = yield* request(siteFiles("<h1>hello from a Dockerfile</h1>\n"), {
            commit: "89abcdef0123456789abcdef0123456789abcdef"
          })
          const { lines, log } = collect()
          const built = yield* buildWith(req, log)

          assert.strictEqual(built.image, `${prefix}/${req.projectId}:${req.buildId}`)
          assert.isTrue(
            lines.some((l) => /^Step 1\/\d+ : FROM scratch$/.test(l)),
            lines.join("\n")
          )
          assert.isTrue(lines.some((l) => /^Step \d+\/\d+ : COPY index.html \/www\/index.html$/.test(l)))
          assert.include(lines, `Successfully tagged ${built.image}`)
          assert.include(lines, "Build limits: 256.0 MiB of memory, 0.5 CPUs")
          // The image's own CMD and EXPOSE are used: the run settings say nothing paas.yaml did not.
          assert.deepStrictEqual(built.run, RunSettings.defaults)

          const info = yield* Effect.promise(() => docker.getImage(built.image).inspect())
          assert.strictEqual(info.Config.Labels?.["paas.project"], req.projectId)
          assert.strictEqual(info.Config.Labels?.["paas.commit"], req.commit)
          assert.strictEqual(info.Config.Labels?.["paas.build"], req.buildId)

          const port = yield* serve(built.image)
          const page = yield* fetchText(port)
          assert.strictEqual(page.status, 200)
          assert.strictEqual(page.body, "<h1>hello from a Dockerfile</h1>\n")
        })
    )

    it.scoped("a failing RUN step fails the build with the engine's message and the log's tail", () =>
      Effect.gen(function* () {
        const req = yield* request(
          siteFiles("never served", ['RUN echo "about to fail: $((6 * 7))" && exit 3', "RUN echo never"])
        )
        const { lines, log } = collect()
        const error = yield* Effect.flip(buildWith(req, log))
        assert.instanceOf(error, BuildFailed)
        assert.include(error.message, "the image build failed")
        assert.include(error.message, "returned a non-zero code: 3")
        assert.include(error.logTail, "about to fail: 42")
        assert.isAtMost(error.logTail.length, 50)
        assert.deepStrictEqual(error.logTail, lines.slice(-error.logTail.length))
        assert.notInclude(lines, "never")
      })
    )

    it.scoped(
      "build arguments: the installation's, paas.yaml's and the project's, only where the Dockerfile declares them; limits reach RUN steps",
      () =>
        Effect.gen(function* () {
          const req = yield* request(
            {
              ...siteFiles("args", [
                "ARG FROM_INSTALLATION",
                "ARG FROM_YAML",
                "ARG FROM_PROJECT",
                'RUN echo "args: $FROM_INSTALLATION $FROM_YAML $FROM_PROJECT"',
                "RUN cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us || true"
              ]),
              "paas.yaml": "env:\n  FROM_YAML: yaml-value\n  FROM_PROJECT: overridden\n"
            },
            { env: { FROM_PROJECT: "project-value", NOT_DECLARED: "secret" } }
          )
          const { lines, log } = collect()
          yield* buildWith(req, log)
          assert.include(lines, "args: installation-value yaml-value project-value")
          assert.include(lines, "Build arguments from the app's env: FROM_PROJECT, FROM_YAML")
          // Only declared names are sent: the engine never hears of the others, so it does not warn.
          assert.isFalse(
            lines.some((l) => l.includes("NOT_DECLARED")),
            lines.filter((l) => l.includes("Warning")).join("\n")
          )
          // cgroup v1 on this kind of machine; on v2 these files do not exist and the step says nothing.
          if (lines.includes(String(256 * MiB))) assert.include(lines, "50000")
        })
    )

    it.scoped("a second build of the same project reuses the first one's layers", () =>
      Effect.gen(function* () {
        const { docker } = yield* TestBuilder
        const projectId = randomUUID() as ProjectId
        const marker = randomUUID()
        const files = siteFiles("cached", [`RUN echo ${marker} > /stamp`])
        const step = (lines: ReadonlyArray<string>) => {
          const at = lines.findIndex((l) => l.endsWith(`RUN echo ${marker} > /stamp`))
          assert.isAbove(at, -1, lines.join("\n"))
          return lines[at + 1]
        }
        const first = collect()
        const one = yield* buildWith(yield* request(files, { projectId }), first.log)
        assert.match(step(first.lines) ?? "", /^ ---> Running in [0-9a-f]{12}$/)
        const second = collect()
        const two = yield* buildWith(yield* request(files, { projectId }), second.log)
        assert.strictEqual(step(second.lines), " ---> Using cache")
        assert.notStrictEqual(one.image, two.image)
        // The earlier image stays until pruned: it is the rollback target.
        const earlier = yield* Effect.promise(() => docker.getImage(one.image).inspect())
        assert.strictEqual(earlier.Config.Labels?.["paas.build"], one.image.split(":").at(-1))
      })
    )

    it.scoped("paas.yaml's run section sets the run settings; run.readonly asks for a read-only root", () =>
      Effect.gen(function* () {
        const req = yield* request({
          ...siteFiles("settings"),
          "paas.yaml":
            'run:\n  command: [/bin/sh, -c, "exec httpd -f -p $PORT -h /www"]\n  port: 9000\n  readonly: true\n  memory: 64M\n'
        })
        const { lines, log } = collect()
        const built = yield* buildWith(req, log)
        assert.include(lines, "Using paas.yaml")
        assert.deepStrictEqual(built.run.command, ["/bin/sh", "-c", "exec httpd -f -p $PORT -h /www"])
        assert.strictEqual(built.run.port, 9000)
        assert.isTrue(built.run.readOnlyRootFilesystem)
        assert.strictEqual(built.run.memoryBytes, 64 * MiB)
      })
    )
  })
})
