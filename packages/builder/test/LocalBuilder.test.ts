// The local builder with real npm and node: Node apps built and started, paas.yaml, failures, the
// clean environment, interruption.
import { existsSync, readFileSync } from "node:fs"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ImageBuilder } from "@paas/core/ImageBuilder"
import { RunSettings } from "@paas/core/Release"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as LocalBuilder from "../src/LocalBuilder.js"
import { collect, freePort, isGone, request, scratch, startApp, tarball, waitForHttp } from "./support.js"

const setup = Effect.gen(function* () {
  const dir = yield* scratch()
  const builder = yield* LocalBuilder.make({ root: join(dir, "builds") })
  return { dir, builder }
})

const packageJson = (scripts: Record<string, string>, dependencies?: Record<string, string>) =>
  JSON.stringify({ name: "app", version: "1.0.0", scripts, ...(dependencies ? { dependencies } : {}) })

const server = `
const http = require("node:http")
const fs = require("node:fs")
http.createServer((req, res) => {
  res.end(fs.readFileSync("built.txt", "utf8") + " " + (process.env.GREETING ?? "-"))
}).listen(Number(process.env.PORT), "127.0.0.1")
`

describe("LocalBuilder", () => {
  it.scoped(
    "builds a Node app with npm, streams its build output, and the result starts and answers on PORT",
    () =>
      Effect.gen(function* () {
        const { dir, builder } = yield* setup
        const archive = yield* tarball({
          // A local dependency: npm install has something to do, without reaching a registry.
          "package.json": packageJson(
            { build: "node build.js", start: "node server.js" },
            { "local-lib": "file:./local-lib" }
          ),
          "local-lib/package.json": JSON.stringify({ name: "local-lib", version: "1.0.0", main: "index.js" }),
          "local-lib/index.js": "module.exports = 'lib'\n",
          "build.js": `
            const fs = require("node:fs")
            console.log("step 1")
            console.error("warning: on stderr")
            console.log("step 2\\r")
            fs.writeFileSync("built.txt", "built")
            process.stdout.write("done, no newline")
          `,
          "server.js": server
        })
        const req = request(archive)
        const { lines, log } = collect()
        const built = yield* builder.build(req, log)

        assert.strictEqual(built.image, join(dir, "builds", req.projectId, req.buildId))
        assert.strictEqual(built.image, builder.appDirectory(req.projectId, req.buildId))
        assert.deepStrictEqual(
          built.run,
          new RunSettings({ ...RunSettings.defaults, command: ["node", "server.js"] })
        )
        for (const expected of ["$ npm install", "$ npm run build", "step 1", "warning: on stderr", "step 2"])
          assert.include(lines, expected)
        assert.isBelow(lines.indexOf("$ npm install"), lines.indexOf("$ npm run build"))
        assert.isBelow(lines.indexOf("step 1"), lines.indexOf("step 2"))
        assert.include(lines, "done, no newline")
        assert.include(lines, "Start command: node server.js")

        const port = yield* freePort
        yield* startApp(built.image, built.run.command!, { PORT: String(port), GREETING: "hello" })
        const response = yield* waitForHttp(`http://127.0.0.1:${port}/`)
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.body, "built hello")
      }),
    60_000
  )

  it.scoped("puts paas.yaml's run and env into RunSettings, and runs build.command", () =>
    Effect.gen(function* () {
      const { builder } = yield* setup
      const archive = yield* tarball({
        "paas.yaml": `
build:
  method: command
  command: [node, -e, "require('fs').writeFileSync('built.txt', 'from yaml')"]
run:
  command: node server.js --verbose
  port: 8080
  healthcheck: { path: /healthz, timeout: 2m }
  memory: 512Mi
  cpus: 1.5
  replicas: 2
env:
  GREETING: hi
  DEBUG: false
`,
        "server.js": server
      })
      const req = request(archive)
      const { lines, log } = collect()
      const built = yield* builder.build(req, log)
      assert.deepStrictEqual(
        built.run,
        new RunSettings({
          port: 8080,
          command: ["node", "server.js", "--verbose"],
          healthcheckPath: "/healthz",
          healthcheckTimeoutMs: 120_000,
          memoryBytes: 512 * 1024 * 1024,
          cpus: 1.5,
          replicas: 2,
          env: { GREETING: "hi", DEBUG: "false" }
        })
      )
      assert.strictEqual(readFileSync(join(built.image, "built.txt"), "utf8"), "from yaml")
      assert.include(lines, "Using paas.yaml")
      assert.isTrue(lines.some((l) => l.startsWith("run.port 8080:")))
    })
  )

  it.scoped("fails an invalid paas.yaml with the line and the field, and leaves nothing behind", () =>
    Effect.gen(function* () {
      const { builder } = yield* setup
      const archive = yield* tarball({
        "paas.yaml": "build:\n  method: auto\nrun:\n  command: npm start\n  port: http\n  memry: 1G\n",
        "index.html": "<h1>hi</h1>"
      })
      const req = request(archive)
      const { lines, log } = collect()
      const error = yield* Effect.flip(builder.build(req, log))
      assert.strictEqual(error._tag, "BuildFailed")
      assert.strictEqual(
        error.message,
        'paas.yaml line 5: run.port: expected an integer from 1 to 65535, got "http" (and 1 more)'
      )
      assert.include(
        error.logTail,
        'paas.yaml line 5: run.port: expected an integer from 1 to 65535, got "http"'
      )
      assert.isTrue(error.logTail.some((l) => l.startsWith("paas.yaml line 6: run.memry: unknown key")))
      assert.deepStrictEqual(lines.slice(-2), error.logTail.slice(-2))
      assert.isFalse(existsSync(builder.appDirectory(req.projectId, req.buildId)))

      // Each kind of mistake fails the build the same way: a wrong type, a bad value, an unknown
      // key, a command needing a shell, broken YAML.
      for (const [yaml, message] of [
        [
          "run:\n  replicas: two\n",
          'paas.yaml line 2: run.replicas: expected an integer from 1 to 32, got "two"'
        ],
        ["run:\n  memory: 1Q\n", "paas.yaml line 2: run.memory: expected a size of at least 6M"],
        ["build:\n  method: heroku\n", "paas.yaml line 2: build.method: expected one of auto, dockerfile"],
        ["build:\n  commmand: make\n", "paas.yaml line 2: build.commmand: unknown key"],
        ["run:\n  command: node a.js > log\n", 'paas.yaml line 2: run.command: ">" is shell syntax'],
        ["run:\n  port: [80\n", "paas.yaml line 3: "]
      ] as const) {
        const failed = yield* Effect.flip(
          builder.build(request(yield* tarball({ "paas.yaml": yaml, "index.html": "x" })), () => Effect.void)
        )
        assert.strictEqual(failed._tag, "BuildFailed")
        assert.isTrue(failed.message.startsWith(message), `${failed.message}\n  expected: ${message}`)
      }
    })
  )

  it.scoped("fails a failing build script with its exit code and the log tail", () =>
    Effect.gen(function* () {
      const { builder } = yield* setup
      const archive = yield* tarball({
        "package.json": packageJson({ build: "node build.js", start: "node server.js" }),
        "build.js":
          'console.log("compiling"); console.error("error: missing semicolon at line 3"); process.exit(3)',
        "server.js": server
      })
      const req = request(archive)
      const error = yield* Effect.flip(builder.build(req, () => Effect.void))
      assert.strictEqual(error.message, "npm run build exited with code 3")
      assert.include(error.logTail, "compiling")
      assert.include(error.logTail, "error: missing semicolon at line 3")
      assert.isFalse(existsSync(builder.appDirectory(req.projectId, req.buildId)))
    })
  )

  it.scoped("runs build commands with a clean environment and argv split with quotes", () =>
    Effect.gen(function* () {
      const { dir, builder } = yield* setup
      const archive = yield* tarball({
        "paas.yaml": `
build:
  method: command
  command: node report.js "two words" 'single $quoted' plain
run:
  command: node server.js
env:
  FROM_YAML: yaml
  SHARED: from-yaml
`,
        "report.js":
          'require("fs").writeFileSync("report.json", JSON.stringify({ argv: process.argv.slice(2), env: process.env }))',
        "server.js": server
      })
      process.env.PAAS_TEST_SERVER_SECRET = "must-not-leak"
      yield* Effect.addFinalizer(() => Effect.sync(() => delete process.env.PAAS_TEST_SERVER_SECRET))
      const req = request(archive, { env: { FROM_PROJECT: "project", SHARED: "from-project" } })
      const built = yield* builder.build(req, () => Effect.void)
      const report = JSON.parse(readFileSync(join(built.image, "report.json"), "utf8")) as {
        argv: Array<string>
        env: Record<string, string>
      }
      assert.deepStrictEqual(report.argv, ["two words", "single $quoted", "plain"])
      const env = report.env
      assert.isUndefined(env.PAAS_TEST_SERVER_SECRET)
      // Exactly these variables: the builder's own, the app's and the project's; nothing of the server's.
      assert.sameMembers(Object.keys(env), [
        "PATH",
        "HOME",
        "TMPDIR",
        "CI",
        "npm_config_cache",
        "npm_config_update_notifier",
        "npm_config_fund",
        "npm_config_audit",
        "PAAS_BUILD_ID",
        "FROM_YAML",
        "FROM_PROJECT",
        "SHARED"
      ])
      assert.strictEqual(env.PAAS_BUILD_ID, req.buildId)
      assert.strictEqual(env.FROM_PROJECT, "project")
      assert.strictEqual(env.FROM_YAML, "yaml")
      assert.strictEqual(env.SHARED, "from-project")
      assert.strictEqual(env.CI, "true")
      assert.strictEqual(env.npm_config_cache, join(dir, "builds", ".npm-cache"))
      assert.isTrue(env.HOME?.startsWith(join(dir, "builds", ".work")))
      assert.isTrue(env.PATH?.split(":").includes("/usr/bin"))
      // The per-build HOME is gone with the build.
      assert.isFalse(existsSync(env.HOME!))
    })
  )

  it.scoped(
    "interruption kills the whole process tree of a running build and removes its directory",
    () =>
      Effect.gen(function* () {
        const { builder } = yield* setup
        const archive = yield* tarball({
          "package.json": packageJson({ build: "node long.js", start: "node server.js" }),
          // The build starts a grandchild that escapes into its own session, as daemons do.
          "long.js": `
            const { spawn } = require("node:child_process")
            const fs = require("node:fs")
            const escaped = spawn("sleep", ["600"], { detached: true, stdio: "ignore" })
            fs.writeFileSync("pids.json", JSON.stringify([process.pid, escaped.pid]))
            console.log("started")
            setInterval(() => console.log("still building"), 200)
          `,
          "server.js": server
        })
        const req = request(archive)
        const started = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(
          builder.build(req, (line) =>
            line === "started" ? Deferred.succeed(started, undefined) : Effect.void
          )
        )
        yield* Deferred.await(started).pipe(Effect.timeout("30 seconds"))
        const dir = builder.appDirectory(req.projectId, req.buildId)
        const pids = JSON.parse(readFileSync(join(dir, "pids.json"), "utf8")) as Array<number>
        assert.lengthOf(pids, 2)
        for (const pid of pids)
          assert.isFalse(isGone(pid), `${pid} should be running before the interruption`)

        const exit = yield* Fiber.interrupt(fiber)
        assert.isTrue(Exit.isInterrupted(exit))
        for (const pid of pids) assert.isTrue(isGone(pid), `process ${pid} survived the interruption`)
        assert.isFalse(existsSync(dir))
      }),
    60_000
  )

  it.scoped("refuses Dockerfile and buildpacks builds, which need the Docker runtime", () =>
    Effect.gen(function* () {
      const { builder } = yield* setup
      for (const method of ["dockerfile", "buildpacks"]) {
        const archive = yield* tarball({
          "paas.yaml": `build:\n  method: ${method}\n`,
          Dockerfile: "FROM scratch\n"
        })
        const error = yield* Effect.flip(builder.build(request(archive), () => Effect.void))
        assert.include(error.message, `build.method ${method} needs the Docker runtime (PAAS_RUNTIME=docker)`)
      }
    })
  )

  it.scoped("fails with the command's name when a build command does not exist", () =>
    Effect.gen(function* () {
      const { builder } = yield* setup
      const archive = yield* tarball({
        "paas.yaml":
          "build:\n  method: command\n  command: no-such-tool-here --flag\nrun:\n  command: node x.js\n"
      })
      const error = yield* Effect.flip(builder.build(request(archive), () => Effect.void))
      assert.strictEqual(error.message, "no-such-tool-here: command not found")
    })
  )

  it.scoped("fails to start on a root it cannot create", () =>
    Effect.gen(function* () {
      const dir = yield* scratch()
      yield* Effect.promise(() => writeFile(join(dir, "file"), "x"))
      const error = yield* Effect.flip(LocalBuilder.make({ root: join(dir, "file", "builds") }))
      assert.strictEqual(error._tag, "LocalBuilderError")
      assert.include(error.message, "cannot prepare the build directory")
    })
  )

  it.scoped("provides the core ImageBuilder", () =>
    Effect.gen(function* () {
      const dir = yield* scratch()
      const builder = yield* Effect.provide(ImageBuilder, LocalBuilder.layer({ root: join(dir, "b") }))
      const archive = yield* tarball({ "index.html": "<p>hi</p>" })
      const built = yield* builder.build(request(archive), () => Effect.void)
      assert.strictEqual(built.run.command?.[0], process.execPath)
    })
  )
})
