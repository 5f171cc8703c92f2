/**
 * Buildpacks builds through the `pack` CLI. pack is not installed on this machine (nor can its
 * builder images be pulled), so: the message when it is missing, and a stand-in `pack` script in a
 * temporary directory that records the arguments and environment it was given and "builds" by
 * tagging a local image, after which the builder labels the result on the real engine.
 */
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { BuildFailed } from "@paas/core/Errors"
import * as Effect from "effect/Effect"
import * as DockerBuilder from "../src/DockerBuilder.js"
import { locate } from "../src/internal/pack.js"
import * as Support from "./dockerSupport.js"
import { buildWith, collect, request, TestBuilder } from "./dockerSupport.js"

Support.warnIfNoDocker("the buildpacks tests")

const fakePack = (dir: string, name: string, body: string) =>
  Effect.promise(async () => {
    const path = join(dir, name)
    await writeFile(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 })
    return path
  })

/** A builder like the test one but running `command` as pack. */
const withPack = (command: string) =>
  Effect.flatMap(TestBuilder, ({ prefix, workDir }) =>
    DockerBuilder.make({ imagePrefix: prefix, workDir, pack: { command } }).pipe(Effect.orDie)
  )

describe.skipIf(!Support.runDockerTests)("DockerBuilder with build.method buildpacks", () => {
  layer(Support.layer(), { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.scoped("without pack installed, the build fails saying so", () =>
      Effect.gen(function* () {
        const { workDir } = yield* TestBuilder
        const files = { "paas.yaml": "build:\n  method: buildpacks\n", "index.html": "x" }
        const missing = join(workDir, "no-pack-here")
        const builder = yield* withPack(missing)
        const error = yield* Effect.flip(builder.build(yield* request(files), collect().log))
        assert.instanceOf(error, BuildFailed)
        assert.strictEqual(
          error.message,
          `build.method buildpacks needs the pack CLI, and it is not installed on this server (no ${missing}). ` +
            "Install pack (https://buildpacks.io/docs/for-platform-operators/how-to/integrate-ci/pack/), " +
            "or build with a Dockerfile instead"
        )
        // The default: `pack` on the server's PATH, which this machine does not have.
        if ((yield* Effect.promise(() => locate("pack", process.env.PATH))) === undefined) {
          const { builder: standard } = yield* TestBuilder
          const byName = yield* Effect.flip(standard.build(yield* request(files), collect().log))
          assert.include(byName.message, 'it is not installed on this server (no "pack" on PATH)')
        }
      })
    )

    it.scoped(
      "runs pack with paas.yaml's builder, buildpacks and env (values through its environment), then labels the image",
      () =>
        Effect.gen(function* () {
          const { docker, prefix, staticBase, workDir, builder: tracked } = yield* TestBuilder
          const script = yield* fakePack(
            workDir,
            "pack",
            [
              `for a in "$@"; do printf '%s\\n' "$a"; done > "$(dirname "$0")/args"`,
              'echo "===> DETECTING in $(pwd)"',
              `echo "BP_NODE_VERSION=\${BP_NODE_VERSION:-unset} GREETING=\${GREETING:-unset} VITEST=\${VITEST:-unset} HOME=\${HOME:+set}"`,
              `docker tag ${staticBase} "$2" || exit 9`,
              'echo "Successfully built image $2"'
            ].join("\n")
          )
          const builder = yield* withPack(script)
          const req = yield* request(
            {
              "paas.yaml": [
                "build:",
                "  method: buildpacks",
                "  context: site",
                "  buildpacks:",
                "    builder: paketobuildpacks/builder-jammy-base",
                "    buildpack: [paketo-buildpacks/nodejs, paketo-buildpacks/npm-start]",
                "    env: { BP_NODE_VERSION: 20, GREETING: from-yaml }",
                "run:",
                "  port: 8080",
                ""
              ].join("\n"),
              "site/index.html": "x"
            },
            { env: { GREETING: "from-project", PATH: "/evil" } }
          )
          const { lines, log } = collect()
          yield* Effect.addFinalizer(() => tracked.prune(req.projectId, []))
          const built = yield* builder.build(req, log)

          const stable = `${prefix}/${req.projectId}:buildpacks`
          const args = (yield* Effect.promise(() => readFile(join(workDir, "args"), "utf8")))
            .trimEnd()
            .split("\n")
          assert.strictEqual(args[0], "build")
          assert.strictEqual(args[1], stable)
          assert.match(args[2]!, /^--path=.*\/source\/site$/)
          assert.deepStrictEqual(args.slice(3), [
            "--builder=paketobuildpacks/builder-jammy-base",
            "--buildpack=paketo-buildpacks/nodejs",
            "--buildpack=paketo-buildpacks/npm-start",
            "--env=BP_NODE_VERSION",
            "--env=GREETING",
            "--pull-policy=if-not-present",
            "--no-color"
          ])
          assert.include(lines, "PATH is not passed to the buildpacks: pack needs its own")
          assert.isTrue(lines.some((l) => l.startsWith("===> DETECTING in ") && l.endsWith("/source/site")))
          // The project's value wins over paas.yaml's; none of the server's own variables reach pack.
          assert.include(lines, "BP_NODE_VERSION=20 GREETING=from-project VITEST=unset HOME=set")
          assert.include(lines, "Labelling the image")

          assert.strictEqual(built.image, `${prefix}/${req.projectId}:${req.buildId}`)
          assert.strictEqual(built.run.port, 8080)
          assert.isNull(built.run.command)
          const info = yield* Effect.promise(() => docker.getImage(built.image).inspect())
          assert.strictEqual(info.Config.Labels?.["paas.project"], req.projectId)
          assert.strictEqual(info.Config.Labels?.["paas.build"], req.buildId)

          // prune takes pack's own tag too.
          yield* tracked.prune(req.projectId, [])
          const left = yield* Support.imagesUnder(docker, prefix)
          assert.notInclude(left, stable)
          assert.notInclude(left, built.image)
        })
    )

    it.scoped("a failing pack fails the build with its exit code and the log's tail", () =>
      Effect.gen(function* () {
        const { workDir } = yield* TestBuilder
        const script = yield* fakePack(
          workDir,
          "pack-failing",
          'echo "===> BUILDING"\necho "ERROR: failed to build: exit status 51" >&2\nexit 1'
        )
        const builder = yield* withPack(script)
        const req = yield* request({ "paas.yaml": "build:\n  method: buildpacks\n" })
        const error = yield* Effect.flip(
          buildWith(req, collect().log).pipe(
            Effect.provideService(TestBuilder, {
              ...(yield* TestBuilder),
              builder
            })
          )
        )
        assert.instanceOf(error, BuildFailed)
        assert.match(error.message, /pack-failing build .* exited with code 1$/)
        assert.includeMembers([...error.logTail], ["===> BUILDING", "ERROR: failed to build: exit status 51"])
      })
    )
  })
})
