/**
 * The HTTP API's authenticated routes, in-process over the in-memory platform: users, SSH keys,
 * projects and their apps; for each, success, validation, another account (404) and admin rules.
 */
import { assert, describe, it } from "@effect/vitest"
import type { ProjectId } from "@paas/core/Project"
import { InMemoryRepoStore, InMemoryRuntime } from "@paas/core/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { account, admin, layer, platform, send } from "./support/api.js"

// A real ed25519 public key line (no private part exists anywhere).
const keyLine = (n: number) => {
  // ssh-ed25519 blob: string "ssh-ed25519" + string of 32 key bytes.
  const type = Buffer.from("ssh-ed25519")
  const key = Buffer.alloc(32, n)
  const blob = Buffer.concat([Buffer.from([0, 0, 0, type.length]), type, Buffer.from([0, 0, 0, 32]), key])
  return `ssh-ed25519 ${blob.toString("base64")} user${n}@laptop`
}

const missingId = "7d444840-9dc0-11d1-b245-5ffdce74fad2"

// Pushes files through the in-memory repository store and reports the push, as the git server would.
const push = (
  user: Effect.Effect.Success<ReturnType<typeof account>>,
  id: string,
  files: Record<string, string>
) =>
  Effect.gen(function* () {
    const repos = yield* InMemoryRepoStore.Repos
    const p = yield* platform
    const update = yield* repos.push(id as ProjectId, files)
    return yield* p.pushReceived(user.principal, id as ProjectId, [update], () => Effect.void)
  })

describe("HTTP API: users, keys and projects", () => {
  it.layer(Layer.fresh(layer()))((it) => {
    it.effect("GET /users/my is the caller's profile", () =>
      Effect.gen(function* () {
        const ada = yield* account()
        const me = yield* send("GET", "/users/my", { token: ada.token })
        assert.strictEqual(me.status, 200)
        assert.strictEqual(me.body.content.username, ada.username)
        assert.strictEqual(me.body.content.email, ada.email)
      })
    )

    it.effect("admin routes: 403 for others; admins list, get and delete users", () =>
      Effect.gen(function* () {
        const boss = yield* admin
        const bob = yield* account()
        for (const [method, path] of [
          ["GET", "/users"],
          ["GET", `/users/${boss.username}`],
          ["DELETE", `/users/${boss.username}`],
          ["GET", "/sshkeys"],
          ["GET", "/projects"]
        ] as const) {
          const reply = yield* send(method, path, { token: bob.token })
          assert.strictEqual(reply.status, 403, `${method} ${path}`)
          assert.strictEqual(reply.body.status, "forbidden")
        }
        const users = yield* send("GET", "/users", { token: boss.token })
        assert.strictEqual(users.status, 200)
        assert.isArray(users.body.content)
        assert.include(
          users.body.content.map((u: { username: string }) => u.username),
          bob.username
        )
        const one = yield* send("GET", `/users/${bob.username}`, { token: boss.token })
        assert.strictEqual(one.body.content.id, bob.id)
        assert.strictEqual((yield* send("GET", "/users/nobody-here", { token: boss.token })).status, 404)
      })
    )

    it.effect("deleting a user removes their keys, projects, repositories and apps", () =>
      Effect.gen(function* () {
        const chief = yield* admin
        const carl = yield* account()
        yield* send("POST", "/sshkeys/my", { token: carl.token, body: { value: keyLine(40) } })
        const project = yield* send("POST", "/projects", { token: carl.token, body: { name: "doomed" } })
        const id: string = project.body.content.id
        yield* push(carl, id, { "index.html": "hi" })
        const controls = yield* InMemoryRuntime.RuntimeControls
        assert.isTrue((yield* controls.instances).some((i) => i.appId === id))
        const deleted = yield* send("DELETE", `/users/${carl.username}`, { token: chief.token })
        assert.strictEqual(deleted.status, 200, deleted.text)
        assert.strictEqual((yield* send("GET", "/users/my", { token: carl.token })).status, 401)
        assert.strictEqual((yield* send("GET", `/projects/${id}`, { token: chief.token })).status, 404)
        const keys = yield* send("GET", "/sshkeys", { token: chief.token })
        assert.notInclude(
          keys.body.content.map((k: { value: string }) => k.value.split(" ")[1]),
          keyLine(40).split(" ")[1]
        )
        assert.isFalse((yield* controls.instances).some((i) => i.appId === id))
        assert.isFalse(
          yield* (yield* platform).authorizeRepository(chief.principal, id as ProjectId, "read").pipe(
            Effect.as(true),
            Effect.orElseSucceed(() => false)
          )
        )
      })
    )

    it.effect("SSH keys: add, list, delete; validation; duplicates; another account's key is 404", () =>
      Effect.gen(function* () {
        const dan = yield* account()
        const eve = yield* account()
        const added = yield* send("POST", "/sshkeys/my", {
          token: dan.token,
          body: { value: keyLine(1), name: "laptop" }
        })
        assert.strictEqual(added.status, 201, added.text)
        assert.deepStrictEqual(Object.keys(added.body.content).sort(), [
          "createdAt",
          "fingerprint",
          "id",
          "name",
          "updatedAt",
          "value"
        ])
        assert.match(added.body.content.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/)
        assert.strictEqual(added.body.content.name, "laptop")
        const mine = yield* send("GET", "/sshkeys/my", { token: dan.token })
        assert.strictEqual(mine.body.content.length, 1)
        assert.strictEqual((yield* send("GET", "/sshkeys/my", { token: eve.token })).body.content.length, 0)
        // The same key for any account is a conflict.
        const again = yield* send("POST", "/sshkeys/my", { token: eve.token, body: { value: keyLine(1) } })
        assert.strictEqual(again.status, 409)
        // Invalid keys, names.
        for (const value of ["not a key", "ssh-ed25519 AAAA", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"]) {
          const bad = yield* send("POST", "/sshkeys/my", { token: dan.token, body: { value } })
          assert.strictEqual(bad.status, 400, value)
          assert.strictEqual(bad.body.content.field, "value")
        }
        const longName = yield* send("POST", "/sshkeys/my", {
          token: dan.token,
          body: { value: keyLine(2), name: "n".repeat(31) }
        })
        assert.strictEqual(longName.status, 400)
        assert.strictEqual(longName.body.content.field, "name")
        // Eve cannot delete Dan's key, and cannot tell it exists.
        const keyId = added.body.content.id
        const stolen = yield* send("DELETE", `/sshkeys/my/${keyId}`, { token: eve.token })
        const missing = yield* send("DELETE", `/sshkeys/my/${missingId}`, { token: eve.token })
        assert.strictEqual(stolen.status, 404)
        assert.deepStrictEqual(Object.keys(stolen.body), Object.keys(missing.body))
        assert.strictEqual(
          (yield* send("DELETE", "/sshkeys/my/not-a-uuid", { token: dan.token })).status,
          400
        )
        assert.strictEqual((yield* send("DELETE", `/sshkeys/my/${keyId}`, { token: dan.token })).status, 200)
        assert.strictEqual((yield* send("GET", "/sshkeys/my", { token: dan.token })).body.content.length, 0)
      })
    )

    it.effect(
      "custom domains: set and cleared by their owner; 400 names the field; 409 when taken; 404 when not yours",
      () =>
        Effect.gen(function* () {
          const hal = yield* account()
          const ida = yield* account()
          const mine = (yield* send("POST", "/projects", { token: hal.token, body: { name: "site" } })).body
            .content
          const theirs = (yield* send("POST", "/projects", { token: ida.token, body: { name: "site" } })).body
            .content
          const set = yield* send("PUT", `/projects/${mine.id}/domains`, {
            token: hal.token,
            body: { domains: ["www.hal.example", "hal.example"] }
          })
          assert.strictEqual(set.status, 200, set.text)
          assert.deepStrictEqual(set.body.content.config.domains, ["www.hal.example", "hal.example"])
          const got = yield* send("GET", `/projects/${mine.id}`, { token: hal.token })
          assert.deepStrictEqual(got.body.content.config.domains, ["www.hal.example", "hal.example"])

          const invalid = yield* send("PUT", `/projects/${theirs.id}/domains`, {
            token: ida.token,
            body: { domains: ["not a host"] }
          })
          assert.strictEqual(invalid.status, 400)
          assert.strictEqual(invalid.body.content.field, "domains")
          const taken = yield* send("PUT", `/projects/${theirs.id}/domains`, {
            token: ida.token,
            body: { domains: ["HAL.example"] }
          })
          assert.strictEqual(taken.status, 409)
          const notYours = yield* send("PUT", `/projects/${mine.id}/domains`, {
            token: ida.token,
            body: { domains: [] }
          })
          assert.strictEqual(notYours.status, 404)
          const cleared = yield* send("PUT", `/projects/${mine.id}/domains`, {
            token: hal.token,
            body: { domains: [] }
          })
          assert.deepStrictEqual(cleared.body.content.config.domains, [])
        })
    )

    it.effect("projects: create, get, list; names unique per owner; another account's is 404", () =>
      Effect.gen(function* () {
        const fay = yield* account()
        const gus = yield* account()
        const created = yield* send("POST", "/projects", { token: fay.token, body: { name: "shop" } })
        assert.strictEqual(created.status, 201)
        const project = created.body.content
        assert.deepStrictEqual(Object.keys(project).sort(), [
          "config",
          "createdAt",
          "id",
          "name",
          "updatedAt"
        ])
        assert.match(project.id, /^[0-9a-f-]{36}$/)
        assert.deepStrictEqual(project.config, { env: {}, domains: [] })
        assert.strictEqual(
          (yield* send("POST", "/projects", { token: fay.token, body: { name: "shop" } })).status,
          409
        )
        assert.strictEqual(
          (yield* send("POST", "/projects", { token: gus.token, body: { name: "shop" } })).status,
          201
        )
        for (const name of ["", "x".repeat(31)]) {
          const bad = yield* send("POST", "/projects", { token: fay.token, body: { name } })
          assert.strictEqual(bad.status, 400)
          assert.strictEqual(bad.body.content.field, "name")
        }
        assert.strictEqual((yield* send("GET", `/projects/${project.id}`, { token: fay.token })).status, 200)
        const mine = yield* send("GET", "/projects/my", { token: fay.token })
        assert.deepStrictEqual(
          mine.body.content.map((p: { id: string }) => p.id),
          [project.id]
        )
        // Gus sees Fay's project exactly as a missing one, on every route.
        for (const [method, path, body] of [
          ["GET", `/projects/${project.id}`, undefined],
          ["DELETE", `/projects/${project.id}`, undefined],
          ["PATCH", `/projects/${project.id}/deploy`, { env_vars: {} }],
          ["POST", `/projects/${project.id}/stop`, undefined],
          ["GET", `/projects/${project.id}/logs`, undefined],
          ["GET", `/projects/${project.id}/statistics`, undefined],
          ["GET", `/projects/${project.id}/builds`, undefined],
          ["GET", `/projects/${project.id}/releases`, undefined],
          ["POST", `/projects/${project.id}/rollback`, { release: 1 }],
          ["POST", "/projects/status", { container_names: [project.id] }]
        ] as const) {
          const theirs = yield* send(method, path, { token: gus.token, body })
          const missing = yield* send(method, path.replace(project.id, missingId), { token: gus.token, body })
          assert.strictEqual(theirs.status, 404, `${method} ${path}: ${theirs.text}`)
          assert.strictEqual(missing.status, 404, `${method} ${path} (missing)`)
          assert.strictEqual(theirs.body.status, missing.body.status)
        }
        assert.strictEqual((yield* send("GET", "/projects/not-a-uuid", { token: fay.token })).status, 400)
      })
    )

    it.effect("admins see and act on every project", () =>
      Effect.gen(function* () {
        const root = yield* admin
        const hal = yield* account()
        const created = yield* send("POST", "/projects", { token: hal.token, body: { name: "site" } })
        const all = yield* send("GET", "/projects", { token: root.token })
        assert.include(
          all.body.content.map((p: { id: string }) => p.id),
          created.body.content.id
        )
        assert.strictEqual(
          (yield* send("GET", `/projects/${created.body.content.id}`, { token: root.token })).status,
          200
        )
      })
    )

    it.effect("deploy before any push saves config.env and says the app starts after the first push", () =>
      Effect.gen(function* () {
        const ivy = yield* account()
        const id = (yield* send("POST", "/projects", { token: ivy.token, body: { name: "later" } })).body
          .content.id
        const deploy = yield* send("PATCH", `/projects/${id}/deploy`, {
          token: ivy.token,
          body: { env_vars: { GREETING: "hello" } }
        })
        assert.strictEqual(deploy.status, 200, deploy.text)
        assert.strictEqual(deploy.body.status, "OK")
        assert.include(deploy.body.message, "first push")
        const project = yield* send("GET", `/projects/${id}`, { token: ivy.token })
        assert.deepStrictEqual(project.body.content.config, { env: { GREETING: "hello" }, domains: [] })
        const bad = yield* send("PATCH", `/projects/${id}/deploy`, {
          token: ivy.token,
          body: { env_vars: { "1BAD": "x" } }
        })
        assert.strictEqual(bad.status, 400)
        assert.match(bad.body.content.field, /^env_vars/)
        const notStrings = yield* send("PATCH", `/projects/${id}/deploy`, {
          token: ivy.token,
          body: { env_vars: { A: 1 } }
        })
        assert.strictEqual(notStrings.status, 400)
      })
    )

    it.effect(
      "after a push: deploy with env, status, logs, statistics, releases, rollback, stop, delete",
      () =>
        Effect.gen(function* () {
          const jo = yield* account()
          const id: string = (yield* send("POST", "/projects", { token: jo.token, body: { name: "api" } }))
            .body.content.id
          const pushed = yield* push(jo, id, { "server.js": "v1" })
          assert.strictEqual(pushed._tag, "Deployed")
          const status = yield* send("POST", "/projects/status", {
            token: jo.token,
            body: { container_names: [id] }
          })
          assert.deepStrictEqual(status.body.content, {
            container_statuses: [{ container_name: id, container_status: "STATUS_RUNNING" }]
          })
          const deploy = yield* send("PATCH", `/projects/${id}/deploy`, {
            token: jo.token,
            body: { env_vars: { MODE: "blue" } }
          })
          assert.strictEqual(deploy.status, 200, deploy.text)
          assert.isDefined(deploy.body.content, deploy.text)
          assert.strictEqual(deploy.body.content.release, 2)
          assert.strictEqual(deploy.body.content.status, "STATUS_RUNNING")
          assert.strictEqual(deploy.body.content.url, `http://${id}.user-app.localhost:8000`)
          const controls = yield* InMemoryRuntime.RuntimeControls
          const [instance] = (yield* controls.instances).filter((i) => i.appId === id)
          assert.strictEqual((yield* controls.specOf(instance!.id))?.env.MODE, "blue")
          yield* controls.emit(id as ProjectId, "listening on 8080")
          const logs = yield* send("GET", `/projects/${id}/logs`, { token: jo.token })
          assert.strictEqual(logs.status, 200)
          assert.include(logs.body.content.logs, "listening on 8080")
          assert.strictEqual(
            (yield* send("GET", `/projects/${id}/logs?tail=0`, { token: jo.token })).status,
            400
          )
          const stats = yield* send("GET", `/projects/${id}/statistics`, { token: jo.token })
          assert.strictEqual(stats.status, 200, stats.text)
          assert.deepStrictEqual(Object.keys(stats.body.content).sort(), [
            "cpu_usage",
            "memory_limit",
            "memory_usage"
          ])
          const builds = yield* send("GET", `/projects/${id}/builds`, { token: jo.token })
          assert.strictEqual(builds.body.content.length, 1)
          assert.strictEqual(builds.body.content[0].status, "succeeded")
          const build = yield* send("GET", `/projects/${id}/builds/${builds.body.content[0].id}`, {
            token: jo.token
          })
          assert.isString(build.body.content.log)
          const releases = yield* send("GET", `/projects/${id}/releases`, { token: jo.token })
          assert.deepStrictEqual(
            releases.body.content.map((r: { number: number }) => r.number),
            [2, 1]
          )
          const rollback = yield* send("POST", `/projects/${id}/rollback`, {
            token: jo.token,
            body: { release: 1 }
          })
          assert.strictEqual(rollback.status, 200, rollback.text)
          assert.strictEqual(rollback.body.content.release, 3)
          assert.deepStrictEqual(
            (yield* send("GET", `/projects/${id}`, { token: jo.token })).body.content.config,
            { env: {}, domains: [] }
          )
          assert.strictEqual(
            (yield* send("POST", `/projects/${id}/rollback`, { token: jo.token, body: { release: 99 } }))
              .status,
            404
          )
          const stopped = yield* send("POST", `/projects/${id}/stop`, { token: jo.token })
          assert.strictEqual(stopped.status, 200)
          const after = yield* send("POST", "/projects/status", {
            token: jo.token,
            body: { container_names: [id] }
          })
          assert.strictEqual(after.body.content.container_statuses[0].container_status, "STATUS_STOPPED")
          assert.strictEqual(
            (yield* send("GET", `/projects/${id}/statistics`, { token: jo.token })).status,
            409
          )
          const deleted = yield* send("DELETE", `/projects/${id}`, { token: jo.token })
          assert.strictEqual(deleted.status, 200)
          assert.strictEqual((yield* send("GET", `/projects/${id}`, { token: jo.token })).status, 404)
          assert.isFalse((yield* controls.instances).some((i) => i.appId === id))
        })
    )

    it.effect("a deploy whose app does not start is 502 and the previous release keeps serving", () =>
      Effect.gen(function* () {
        const kim = yield* account()
        const id: string = (yield* send("POST", "/projects", { token: kim.token, body: { name: "flaky" } }))
          .body.content.id
        yield* push(kim, id, { "server.js": "v1" })
        const controls = yield* InMemoryRuntime.RuntimeControls
        yield* controls.failNextStart("health check failed: connection refused")
        const deploy = yield* send("PATCH", `/projects/${id}/deploy`, {
          token: kim.token,
          body: { env_vars: { BROKEN: "yes" } }
        })
        assert.strictEqual(deploy.status, 502, deploy.text)
        assert.strictEqual(deploy.body.status, "deploy_failed")
        assert.include(deploy.body.message, "health check failed")
        const status = yield* send("POST", "/projects/status", {
          token: kim.token,
          body: { container_names: [id] }
        })
        assert.strictEqual(status.body.content.container_statuses[0].container_status, "STATUS_RUNNING")
      })
    )

    it.effect("status of several projects; a non-UUID name is 404", () =>
      Effect.gen(function* () {
        const lea = yield* account()
        const a = (yield* send("POST", "/projects", { token: lea.token, body: { name: "a" } })).body.content
          .id
        const b = (yield* send("POST", "/projects", { token: lea.token, body: { name: "b" } })).body.content
          .id
        yield* push(lea, a, { "x.js": "1" })
        const both = yield* send("POST", "/projects/status", {
          token: lea.token,
          body: { container_names: [a, b] }
        })
        assert.deepStrictEqual(both.body.content.container_statuses, [
          { container_name: a, container_status: "STATUS_RUNNING" },
          { container_name: b, container_status: "STATUS_UNKNOWN" }
        ])
        const odd = yield* send("POST", "/projects/status", {
          token: lea.token,
          body: { container_names: ["x;y"] }
        })
        assert.strictEqual(odd.status, 404)
        const bad = yield* send("POST", "/projects/status", {
          token: lea.token,
          body: { container_names: "a" }
        })
        assert.strictEqual(bad.status, 400)
        assert.strictEqual(bad.body.content.field, "container_names")
      })
    )
  })
})
