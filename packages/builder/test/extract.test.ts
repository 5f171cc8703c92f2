import { lstat, readdir, readFile, readlink, stat } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { type ExtractLimits, extract, isSafeLinkTarget } from "../src/internal/extract.js"
import { type Entry, scratch, tarball } from "./support.js"

const limits: ExtractLimits = { maxBytes: 1024 * 1024, maxEntries: 1000 }

const unpack = (entries: ReadonlyArray<readonly [string, Entry]>, custom: ExtractLimits = limits) =>
  Effect.gen(function* () {
    const dir = yield* scratch("paas-extract-")
    const archive = yield* tarball(entries)
    const result = yield* Effect.either(extract(Stream.make(archive), join(dir, "."), custom))
    return { dir, result }
  })

/** Unpacks into a directory inside a parent, so that escapes would be visible in the parent. */
const refused = (entries: ReadonlyArray<readonly [string, Entry]>) =>
  Effect.gen(function* () {
    const { dir, result } = yield* unpack(entries)
    assert.strictEqual(result._tag, "Left", JSON.stringify(entries))
    if (result._tag === "Left") assert.strictEqual(result.left._tag, "ExtractError")
    return { dir, message: result._tag === "Left" ? result.left.message : "" }
  })

describe("extract", () => {
  it.scoped("unpacks files, directories and inside links, keeping modes", () =>
    Effect.gen(function* () {
      const { dir, result } = yield* unpack([
        ["./", { type: "directory" }],
        ["bin/", { type: "directory", mode: 0o755 }],
        ["bin/run", { content: "#!/bin/sh\necho hi\n", mode: 0o755 }],
        ["src/app.js", "console.log(1)"],
        ["secret.txt", { content: "s", mode: 0o600 }],
        ["setuid", { content: "x", mode: 0o4755 }],
        ["link-to-app", { type: "symlink", linkname: "src/app.js" }],
        ["src/up", { type: "symlink", linkname: "../bin/run" }],
        ["empty", ""]
      ])
      assert.deepStrictEqual(result._tag === "Right" ? result.right : result.left, { files: 5, bytes: 34 })
      assert.sameMembers(yield* Effect.promise(() => readdir(dir)), [
        "bin",
        "src",
        "secret.txt",
        "setuid",
        "link-to-app",
        "empty"
      ])
      const mode = (p: string) => Effect.promise(() => stat(join(dir, p)).then((s) => s.mode & 0o7777))
      assert.strictEqual(yield* mode("bin/run"), 0o755)
      assert.strictEqual(yield* mode("src/app.js"), 0o644)
      assert.strictEqual(yield* mode("secret.txt"), 0o600)
      assert.strictEqual(yield* mode("setuid"), 0o755)
      assert.strictEqual(yield* Effect.promise(() => readlink(join(dir, "src/up"))), "../bin/run")
      assert.strictEqual(
        yield* Effect.promise(() => readFile(join(dir, "link-to-app"), "utf8")),
        "console.log(1)"
      )
    })
  )

  it.scoped("refuses paths that leave the directory", () =>
    Effect.gen(function* () {
      for (const name of ["../evil", "a/../../evil", "/etc/evil", "./../evil"]) {
        const { message } = yield* refused([[name, "x"]])
        assert.include(message, "refusing archive entry")
      }
    })
  )

  it.scoped("refuses links pointing out, and anything written through a link", () =>
    Effect.gen(function* () {
      for (const target of ["/etc", "../..", "../../x", "a/../../..", "sub/../..", "x/.."]) {
        const { message } = yield* refused([
          ["sub/", { type: "directory" }],
          ["sub/l", { type: "symlink", linkname: target }]
        ])
        assert.include(message, "leaves the tree", target)
      }
      // A link to the root itself is harmless, but nothing may be written through it.
      const { dir, message } = yield* refused([
        ["root", { type: "symlink", linkname: "." }],
        ["root/file", "x"]
      ])
      assert.include(message, "root is not a directory")
      assert.deepStrictEqual(yield* Effect.promise(() => readdir(dir)), ["root"])
    })
  )

  it.scoped("refuses hard links, devices, fifos and duplicate entries", () =>
    Effect.gen(function* () {
      assert.include(
        (yield* refused([
          ["a", "x"],
          ["b", { type: "link", linkname: "a" }]
        ])).message,
        "hard link"
      )
      assert.include(
        (yield* refused([["dev", { type: "character-device" }]])).message,
        "unsupported entry type"
      )
      assert.include((yield* refused([["pipe", { type: "fifo" }]])).message, "unsupported entry type")
      assert.include(
        (yield* refused([
          ["a", "x"],
          ["a", "y"]
        ])).message,
        "duplicate entry"
      )
      const replaced = yield* refused([
        ["l", { type: "symlink", linkname: "x" }],
        ["l", "y"]
      ])
      assert.include(replaced.message, "duplicate entry")
      assert.isTrue((yield* Effect.promise(() => lstat(join(replaced.dir, "l")))).isSymbolicLink())
    })
  )

  it.scoped("stops at the size and entry limits", () =>
    Effect.gen(function* () {
      const big = yield* unpack([["big", "x".repeat(2000)]], { maxBytes: 1000, maxEntries: 10 })
      assert.strictEqual(big.result._tag, "Left")
      const many = yield* unpack(
        Array.from({ length: 11 }, (_, i) => [`f${i}`, "x"] as const),
        { maxBytes: 1000, maxEntries: 10 }
      )
      assert.strictEqual(many.result._tag, "Left")
    })
  )

  it.scoped("passes the source's own failure through", () =>
    Effect.gen(function* () {
      const dir = yield* scratch("paas-extract-")
      const archive = yield* tarball([["a", "x".repeat(3000)]])
      const source = Stream.concat(
        Stream.make(archive.subarray(0, 1024)),
        Stream.fail("source broke" as const)
      )
      const error = yield* Effect.flip(extract(source, dir, limits))
      assert.strictEqual(error, "source broke")
    })
  )

  it("judges link targets by where the link is", () => {
    assert.isTrue(isSafeLinkTarget(["a", "b", "l"], "../../x"))
    assert.isFalse(isSafeLinkTarget(["a", "b", "l"], "../../../x"))
    assert.isTrue(isSafeLinkTarget(["l"], "."))
    assert.isTrue(isSafeLinkTarget(["l"], "x/y"))
    assert.isFalse(isSafeLinkTarget(["l"], "x/../.."))
    assert.isFalse(isSafeLinkTarget(["l"], ""))
  })
})
