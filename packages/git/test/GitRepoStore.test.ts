import { randomUUID } from "node:crypto"
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import type { CommitSha } from "@paas/core/Build"
import type { ProjectId } from "@paas/core/Project"
import { RepoStore } from "@paas/core/RepoStore"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as GitRepoStore from "../src/GitRepoStore.js"
import { commit, exec, git, initWorkTree, noise, scratch } from "./support.js"

const newId = () => randomUUID() as ProjectId

/** A store in a scratch directory, and a working copy that pushes to its repositories directly. */
const setup = Effect.gen(function* () {
  const dir = yield* scratch()
  const store = yield* GitRepoStore.make({ root: join(dir, "repos") })
  const work = yield* initWorkTree(join(dir, "work"))
  const pushTo = (project: ProjectId, refspec = "HEAD:refs/heads/main") =>
    Effect.flatMap(store.path(project), (path) => git(work, ["push", "--quiet", path, refspec]))
  return { dir, store, work, pushTo }
})

describe("GitRepoStore", () => {
  it.scoped("creates a bare repository named by the project id, HEAD on main, no hooks", () =>
    Effect.gen(function* () {
      const { store } = yield* setup
      const id = newId()
      assert.isFalse(yield* store.exists(id))
      yield* store.create(id)
      assert.isTrue(yield* store.exists(id))
      const path = yield* store.path(id)
      assert.strictEqual(path, join(store.root, id))
      assert.strictEqual(
        (yield* Effect.promise(() => readFile(join(path, "HEAD"), "utf8"))).trim(),
        "ref: refs/heads/main"
      )
      const entries = yield* Effect.promise(() => readdir(path))
      assert.notInclude(entries, "hooks")
      assert.strictEqual(yield* git(path, ["config", "core.bare"]), "true")
      assert.strictEqual(yield* git(path, ["config", "receive.fsckObjects"]), "true")
      assert.strictEqual(((yield* Effect.promise(() => stat(store.root))).mode & 0o777).toString(8), "700")
    })
  )

  it.scoped("refuses to create a repository twice and removes idempotently", () =>
    Effect.gen(function* () {
      const { store } = yield* setup
      const id = newId()
      yield* store.create(id)
      const again = yield* Effect.exit(store.create(id))
      assert.isTrue(Exit.isFailure(again))
      yield* store.remove(id)
      assert.isFalse(yield* store.exists(id))
      yield* store.remove(id)
      yield* store.remove(newId())
    })
  )

  it.scoped("refuses anything but a UUID as a project id", () =>
    Effect.gen(function* () {
      const { store } = yield* setup
      for (const bad of ["..", "../x", "/etc", "", "x", `${randomUUID()}/..`, randomUUID().toUpperCase()]) {
        const id = bad as ProjectId
        const error = yield* Effect.flip(store.create(id))
        assert.strictEqual(error._tag, "RepositoryError")
        assert.isTrue(Exit.isFailure(yield* Effect.exit(store.exists(id))))
        assert.isTrue(Exit.isFailure(yield* Effect.exit(store.remove(id))))
      }
      assert.deepStrictEqual(yield* Effect.promise(() => readdir(store.root)), [])
    })
  )

  it.scoped("operations on a missing repository fail with RepositoryError", () =>
    Effect.gen(function* () {
      const { store } = yield* setup
      const id = newId()
      for (const op of [
        store.resolve(id, "main"),
        store.deployBranch(id),
        store.commits(id, "main", 5),
        store.diskUsage(id),
        store.refs(id),
        Stream.runDrain(store.archive(id, "0".repeat(40) as CommitSha))
      ]) {
        const error = yield* Effect.flip(op as Effect.Effect<unknown, { readonly _tag: string }>)
        assert.strictEqual(error._tag, "RepositoryError")
      }
    })
  )

  it.scoped("resolves refs and shas to commits", () =>
    Effect.gen(function* () {
      const { store, work, pushTo } = yield* setup
      const id = newId()
      yield* store.create(id)
      assert.isTrue(Option.isNone(yield* store.resolve(id, "main")))
      const first = yield* commit(work, { "a.txt": "one" }, "first")
      const second = yield* commit(work, { "a.txt": "two" }, "second")
      yield* pushTo(id)
      yield* git(work, ["tag", "-a", "-m", "v1", "v1", first])
      yield* pushTo(id, "refs/tags/v1:refs/tags/v1")
      assert.deepStrictEqual(yield* store.resolve(id, "main"), Option.some(second as CommitSha))
      assert.deepStrictEqual(yield* store.resolve(id, "refs/heads/main"), Option.some(second as CommitSha))
      assert.deepStrictEqual(yield* store.resolve(id, first), Option.some(first as CommitSha))
      // An annotated tag peels to its commit.
      assert.deepStrictEqual(yield* store.resolve(id, "refs/tags/v1"), Option.some(first as CommitSha))
      for (const unknown of [
        "nope",
        "0".repeat(40),
        "main~1",
        "main^",
        "-h",
        "--all",
        "HEAD@{0}",
        "a b",
        "refs/heads/../x"
      ])
        assert.isTrue(Option.isNone(yield* store.resolve(id, unknown)), unknown)
      // A tree is not a commit.
      const tree = yield* git(work, ["rev-parse", "HEAD^{tree}"])
      assert.isTrue(Option.isNone(yield* store.resolve(id, tree)))
      const refs = yield* store.refs(id)
      assert.strictEqual(refs.get("refs/heads/main")?.commit, second)
      assert.strictEqual(refs.get("refs/tags/v1")?.commit, first)
      assert.notStrictEqual(refs.get("refs/tags/v1")?.object, first)
    })
  )

  it.scoped("lists recent commits newest first", () =>
    Effect.gen(function* () {
      const { store, work, pushTo } = yield* setup
      const id = newId()
      yield* store.create(id)
      assert.deepStrictEqual(yield* store.commits(id, "main", 10), [])
      const shas: Array<string> = []
      for (let i = 1; i <= 4; i++)
        shas.push(yield* commit(work, { "n.txt": `${i}` }, `commit ${i}\n\nbody ${i}`))
      yield* pushTo(id)
      const commits = yield* store.commits(id, "main", 3)
      assert.deepStrictEqual(
        commits.map((c) => c.sha),
        shas.slice(1).reverse()
      )
      assert.strictEqual(commits[0]?.message, "commit 4\n\nbody 4")
      assert.strictEqual(commits[0]?.author, "Ada Tester <ada@example.com>")
      assert.isTrue(Math.abs((commits[0]?.date.getTime() ?? 0) - Date.now()) < 60_000)
      assert.strictEqual((yield* store.commits(id, shas[1]!, 10)).length, 2)
      assert.deepStrictEqual(yield* store.commits(id, "main", 0), [])
      assert.deepStrictEqual(yield* store.commits(id, "unknown", 5), [])
    })
  )

  it.scoped("deploys from main, or master when the repository only has master", () =>
    Effect.gen(function* () {
      const { store, work, pushTo } = yield* setup
      const id = newId()
      yield* store.create(id)
      assert.strictEqual(yield* store.deployBranch(id), "main")
      yield* commit(work, { "a.txt": "a" })
      yield* pushTo(id, "HEAD:refs/heads/master")
      assert.strictEqual(yield* store.deployBranch(id), "master")
      yield* pushTo(id, "HEAD:refs/heads/main")
      assert.strictEqual(yield* store.deployBranch(id), "main")
    })
  )

  it.scoped("exports a commit's tree as a tar stream", () =>
    Effect.gen(function* () {
      const { dir, store, work, pushTo } = yield* setup
      const id = newId()
      yield* store.create(id)
      const binary = noise(300_000)
      const sha = yield* commit(work, {
        "README.md": "hello\n",
        "src/app.js": "console.log(1)\n",
        "data.bin": binary
      })
      yield* commit(work, { "README.md": "changed later\n" })
      yield* pushTo(id)
      const chunks = yield* Stream.runCollect(store.archive(id, sha as CommitSha))
      const tar = Buffer.concat(Chunk.toArray(chunks))
      const out = join(dir, "out")
      yield* Effect.promise(() => mkdir(out))
      const tarFile = join(dir, "source.tar")
      yield* Effect.promise(() => writeFile(tarFile, tar))
      const r = yield* exec("tar", ["-xf", tarFile, "-C", out], { env: { PATH: process.env.PATH ?? "" } })
      assert.strictEqual(r.exitCode, 0, r.stderr)
      assert.strictEqual(yield* Effect.promise(() => readFile(join(out, "README.md"), "utf8")), "hello\n")
      assert.strictEqual(
        yield* Effect.promise(() => readFile(join(out, "src/app.js"), "utf8")),
        "console.log(1)\n"
      )
      assert.isTrue(binary.equals(yield* Effect.promise(() => readFile(join(out, "data.bin")))))
      // A consumer may stop early; git is not left behind.
      const head = yield* Stream.runCollect(Stream.take(store.archive(id, sha as CommitSha), 1))
      assert.strictEqual(Chunk.size(head), 1)
    })
  )

  it.scoped("refuses to archive an unknown commit", () =>
    Effect.gen(function* () {
      const { store, work, pushTo } = yield* setup
      const id = newId()
      yield* store.create(id)
      yield* commit(work, { "a.txt": "a" })
      yield* pushTo(id)
      const error = yield* Effect.flip(Stream.runDrain(store.archive(id, "1".repeat(40) as CommitSha)))
      assert.strictEqual(error._tag, "RepositoryError")
      assert.match(error.message, /unknown commit/)
    })
  )

  it.scoped("reports disk use, which grows with pushes", () =>
    Effect.gen(function* () {
      const { store, work, pushTo } = yield* setup
      const id = newId()
      yield* store.create(id)
      const empty = yield* store.diskUsage(id)
      assert.isAbove(empty, 0)
      yield* commit(work, { "big.bin": noise(2_000_000) })
      yield* pushTo(id)
      assert.isAbove(yield* store.diskUsage(id), empty + 1_900_000)
    })
  )

  it.scoped("provides the core RepoStore tag from the same instance", () =>
    Effect.gen(function* () {
      const dir = yield* scratch()
      const layer = GitRepoStore.layer({ root: join(dir, "repos") })
      const [core, own] = yield* Effect.all([RepoStore, GitRepoStore.GitRepoStore]).pipe(
        Effect.provide(layer)
      )
      const id = newId()
      yield* core.create(id)
      assert.isTrue(yield* own.exists(id))
      assert.strictEqual(yield* own.path(id), join(dir, "repos", id))
    })
  )
})
