// The static file server shipped as static-server.mjs, started as the local builder starts it.
import { mkdir, symlink, writeFile } from "node:fs/promises"
import { request as httpRequest } from "node:http"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { staticServerPath } from "../src/LocalBuilder.js"
import { freePort, scratch, startApp, waitForHttp } from "./support.js"

/** A raw request: the path goes out exactly as written (fetch would normalise `..`). */
const raw = (port: number, path: string, method = "GET") =>
  Effect.promise(
    () =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: "127.0.0.1", port, path, method, timeout: 5_000 }, (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (c: Buffer) => chunks.push(c))
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString()
            })
          )
        })
        req.on("error", reject)
        req.on("timeout", () => req.destroy(new Error("timeout")))
        req.end()
      })
  )

const site = Effect.gen(function* () {
  const dir = yield* scratch("paas-static-")
  const root = join(dir, "site")
  yield* Effect.promise(async () => {
    await mkdir(join(root, "docs"), { recursive: true })
    await mkdir(join(root, "empty"), { recursive: true })
    await writeFile(join(root, "index.html"), "<h1>Home</h1>")
    await writeFile(join(root, "app.js"), "console.log(1)")
    await writeFile(join(root, "data.json"), "{}")
    await writeFile(join(root, "logo.svg"), "<svg/>")
    await writeFile(join(root, "blob.bin"), "x")
    await writeFile(join(root, "docs", "index.html"), "<h1>Docs</h1>")
    await writeFile(join(root, "space name.txt"), "spaced")
    await writeFile(join(dir, "secret.txt"), "outside")
    await symlink(join(dir, "secret.txt"), join(root, "leak.txt"))
    await symlink("index.html", join(root, "alias.html"))
  })
  const port = yield* freePort
  yield* startApp(root, [process.execPath, staticServerPath, root], { PORT: String(port) })
  yield* waitForHttp(`http://127.0.0.1:${port}/`)
  return { dir, root, port }
})

describe("static-server.mjs", () => {
  it.scoped("serves index.html for / and for directories, with content types", () =>
    Effect.gen(function* () {
      const { port } = yield* site
      const home = yield* raw(port, "/")
      assert.strictEqual(home.status, 200)
      assert.strictEqual(home.body, "<h1>Home</h1>")
      assert.strictEqual(home.headers["content-type"], "text/html; charset=utf-8")
      assert.strictEqual(home.headers["content-length"], "13")
      for (const [path, type] of [
        ["/app.js", "text/javascript; charset=utf-8"],
        ["/data.json", "application/json; charset=utf-8"],
        ["/logo.svg", "image/svg+xml"],
        ["/blob.bin", "application/octet-stream"]
      ] as const)
        assert.strictEqual((yield* raw(port, path)).headers["content-type"], type, path)
      assert.strictEqual((yield* raw(port, "/docs/")).body, "<h1>Docs</h1>")
      const redirect = yield* raw(port, "/docs?x=1")
      assert.strictEqual(redirect.status, 301)
      assert.strictEqual(redirect.headers.location, "/docs/?x=1")
      assert.strictEqual((yield* raw(port, "/space%20name.txt")).body, "spaced")
      assert.strictEqual((yield* raw(port, "/alias.html")).body, "<h1>Home</h1>")
    })
  )

  it.scoped("answers HEAD without a body, refuses other methods, and 404s the rest", () =>
    Effect.gen(function* () {
      const { port } = yield* site
      const head = yield* raw(port, "/index.html", "HEAD")
      assert.strictEqual(head.status, 200)
      assert.strictEqual(head.body, "")
      assert.strictEqual(head.headers["content-length"], "13")
      const post = yield* raw(port, "/", "POST")
      assert.strictEqual(post.status, 405)
      assert.strictEqual(post.headers.allow, "GET, HEAD")
      assert.strictEqual((yield* raw(port, "/missing.html")).status, 404)
      assert.strictEqual((yield* raw(port, "/empty/")).status, 404)
    })
  )

  it.scoped("never serves anything outside its folder", () =>
    Effect.gen(function* () {
      const { port } = yield* site
      for (const path of [
        "/../secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/docs/../../secret.txt",
        "/..\\secret.txt",
        "/leak.txt",
        "/%00",
        "/%E0%A4%A",
        "//etc/passwd"
      ]) {
        const response = yield* raw(port, path)
        assert.notInclude(response.body, "outside", path)
        assert.notInclude(response.body, "root:", path)
        assert.strictEqual(response.status, 404, path)
      }
    })
  )
})
