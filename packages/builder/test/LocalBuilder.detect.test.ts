// The local builder on apps without a deployment file (static sites, Procfiles), on unsafe
// archives, and pruning.
import { randomUUID } from "node:crypto"
import { existsSync } from "node:fs"
import { readdir } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import type { ProjectId } from "@paas/core/Project"
import * as Effect from "effect/Effect"
import * as LocalBuilder from "../src/LocalBuilder.js"
import { collect, freePort, request, scratch, startApp, tarball, waitForHttp } from "./support.js"

const setup = Effect.gen(function* () {
  const dir = yield* scratch()
  const builder = yield* LocalBuilder.make({ root: join(dir, "builds") })
  return { dir, builder }
})

describe("LocalBuilder detection", () => {
  it.scoped("serves a folder with index.html with the package's static file server", () =>
    Effect.gen(function* () {
      const { builder } = yield* setup
      const archive = yield* tarball({
        "index.html": "<h1>Home</h1>",
        "css/site.css": "h1 { color: red }",
        "docs/index.html": "<h1>Docs</h1>"
      })
      const { lines, log } = collect()
      const built = yield* builder.build(request(archive), log)
      assert.deepStrictEqual(built.run.command, [
        process.execPath,
        LocalBuilder.staticServerPath,
        built.image
      ])
      assert.include(lines, "Serving the repository root as a static site")

      const port = yield* freePort
      yield* startApp(built.image, built.run.command!, { PORT: String(port) })
      const home = yield* waitForHttp(`http://127.0.0.1:${port}/`)
      assert.strictEqual(home.body, "<h1>Home</h1>")
      assert.strictEqual(home.headers.get("content-type"), "text/html; charset=utf-8")
      const css = yield* waitForHttp(`http://127.0.0.1:${port}/css/site.css`)
      assert.strictEqual(css.headers.get("content-type"), "text/css; charset=utf-8")
      assert.strictEqual((yield* waitForHttp(`http://127.0.0.1:${port}/docs/`)).body, "<h1>Docs</h1>")
      assert.strictEqual((yield* waitForHttp(`http://127.0.0.1:${port}/nope`)).status, 404)
    })
  )

  it.scoped(
    "a package whose build script writes dist is served from dist",
    () =>
      Effect.gen(function* () {
        const { builder } = yield* setup
        const archive = yield* tarball({
          "package.json": JSON.stringify({
            name: "site",
            version: "1.0.0",
            scripts: { build: "node build.js" }
          }),
          "build.js":
            'const fs = require("node:fs"); fs.mkdirSync("dist"); fs.writeFileSync("dist/index.html", "<p>built</p>")',
          "index.html": "<p>source</p>"
        })
        const built = yield* builder.build(request(archive), () => Effect.void)
        assert.deepStrictEqual(built.run.command, [
          process.execPath,
          LocalBuilder.staticServerPath,
          join(built.image, "dist")
        ])
        const port = yield* freePort
        yield* startApp(built.image, built.run.command!, { PORT: String(port) })
        assert.strictEqual((yield* waitForHttp(`http://127.0.0.1:${port}/`)).body, "<p>built</p>")
      }),
    60_000
  )

  it.scoped("starts a Procfile's web: line, split with its quotes", () =>
    Effect.gen(function* () {
      const { builder } = yield* setup
      const archive = yield* tarball({
        Procfile: 'worker: node worker.js\nweb: node app.js --greeting "hello world"\n',
        "app.js": `
          const greeting = process.argv[process.argv.indexOf("--greeting") + 1]
          require("node:http").createServer((q, s) => s.end(greeting)).listen(Number(process.env.PORT), "127.0.0.1")
        `
      })
      const built = yield* builder.build(request(archive), () => Effect.void)
      assert.deepStrictEqual(built.run.command, ["node", "app.js", "--greeting", "hello world"])
      const port = yield* freePort
      yield* startApp(built.image, built.run.command!, { PORT: String(port) })
      assert.strictEqual((yield* waitForHttp(`http://127.0.0.1:${port}/`)).body, "hello world")
    })
  )

  it.scoped("says what is missing when it cannot tell how to start the app", () =>
    Effect.gen(function* () {
      const { builder } = yield* setup
      const archive = yield* tarball({ "README.md": "# nothing to run" })
      const error = yield* Effect.flip(builder.build(request(archive), () => Effect.void))
      assert.include(error.message, "cannot tell how to start this app")
    })
  )

  it.scoped("refuses unsafe archives and writes nothing outside the build directory", () =>
    Effect.gen(function* () {
      const { dir, builder } = yield* setup
      const before = yield* Effect.promise(() => readdir(dir))
      for (const entries of [
        [["../../escaped", "x"]],
        [["/tmp/escaped-absolute", "x"]],
        [["out", { type: "symlink", linkname: "../../.." }] as const],
        [["etc", { type: "symlink", linkname: "/etc" }] as const],
        [["index.html", "x"], ["hard", { type: "link", linkname: "index.html" }] as const],
        [["d", { type: "symlink", linkname: "." }] as const, ["d/x", "through a link"]]
      ] as const) {
        const req = request(yield* tarball(entries))
        const error = yield* Effect.flip(builder.build(req, () => Effect.void))
        assert.strictEqual(error._tag, "BuildFailed")
        assert.include(error.message, "refusing archive entry", JSON.stringify(entries))
        assert.isFalse(existsSync(builder.appDirectory(req.projectId, req.buildId)))
      }
      assert.sameMembers(yield* Effect.promise(() => readdir(dir)), before)
      assert.isFalse(existsSync("/tmp/escaped-absolute"))
    })
  )

  it.scoped("prune removes a project's app directories except those kept", () =>
    Effect.gen(function* () {
      const { builder } = yield* setup
      const project = randomUUID() as ProjectId
      const other = randomUUID() as ProjectId
      const archive = yield* tarball({ "index.html": "<p>v</p>" })
      const images: Array<string> = []
      for (let i = 0; i < 3; i++)
        images.push((yield* builder.build(request(archive, { projectId: project }), () => Effect.void)).image)
      const untouched = (yield* builder.build(request(archive, { projectId: other }), () => Effect.void))
        .image

      yield* builder.prune(project, [images[1]!, images[2]!])
      assert.deepStrictEqual(
        images.map((image) => existsSync(image)),
        [false, true, true]
      )
      assert.isTrue(existsSync(untouched))

      yield* builder.prune(project, [])
      assert.isFalse(existsSync(join(builder.root, project)))
      assert.isTrue(existsSync(untouched))
      // Unknown projects and non-ids are no-ops.
      yield* builder.prune(randomUUID() as ProjectId, [])
      yield* builder.prune("../.." as ProjectId, [])
      assert.isTrue(existsSync(untouched))
    })
  )
})
