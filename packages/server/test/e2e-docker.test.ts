/**
 * End to end with `PAAS_RUNTIME=docker`: `git push` of a Dockerfile app (an image FROM scratch with
 * Debian's static busybox: nothing can be pulled here), built through the Docker Engine API, run as
 * a container and served through the in-process router; a second push replaces it; deleting the
 * project removes the container and its images. Needs a Docker engine (CI starts one; with
 * PAAS_REQUIRE_DOCKER=1 a missing engine fails instead of skipping).
 */
import { spawnSync } from "node:child_process"
import { copyFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { remoteLines, run } from "./support/git.js"
import { getApp, loadDuring } from "./support/router.js"
import { api, serverWithProject } from "./support/server.js"

const dockerAvailable =
  process.env.PAAS_REQUIRE_DOCKER === "1" ||
  spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { timeout: 15_000, stdio: "ignore" })
    .status === 0
if (!dockerAvailable)
  console.warn(
    "`docker info` cannot reach a Docker engine: SKIPPING the PAAS_RUNTIME=docker end-to-end test."
  )

const site = (version: string) => ({
  Dockerfile: [
    "FROM scratch",
    "COPY busybox /bin/busybox",
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    "COPY www /www",
    "EXPOSE 8080",
    'CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]',
    ""
  ].join("\n"),
  "www/index.html": `${version}\n`
})

const docker = (args: ReadonlyArray<string>) =>
  Effect.map(run("docker", args, { timeoutMs: 60_000 }), (r) => r.stdout.trim())

describe.skipIf(!dockerAvailable)("paas-server end to end with PAAS_RUNTIME=docker", () => {
  it.scopedLive(
    "git push of a Dockerfile app is built, run as a container and served through the router",
    () =>
      Effect.gen(function* () {
        const suffix = Math.random().toString(36).slice(2, 8)
        const installation = `e2e-${suffix}`
        const appsNetwork = `paas-e2e-apps-${suffix}`
        const platformNetwork = `paas-e2e-platform-${suffix}`
        // Whatever happens, nothing of this installation stays on the engine.
        yield* Effect.addFinalizer(() =>
          Effect.gen(function* () {
            const left = yield* docker(["ps", "-aq", "--filter", `label=paas.managed-by=${installation}`])
            if (left !== "") yield* docker(["rm", "-f", ...left.split("\n")])
            yield* docker(["network", "rm", appsNetwork, platformNetwork])
          }).pipe(Effect.ignore)
        )
        const { server, token, user, id, host } = yield* serverWithProject({
          username: "whale",
          env: {
            PAAS_RUNTIME: "docker",
            PAAS_DOCKER_INSTALLATION_ID: installation,
            PAAS_DOCKER_APPS_NETWORK: appsNetwork,
            PAAS_DOCKER_PLATFORM_NETWORK: platformNetwork
          }
        })
        yield* Effect.promise(() => copyFile("/bin/busybox", join(user.work, "busybox")))

        yield* user.commit(site("v1"), "v1")
        const first = yield* user.push(id)
        assert.strictEqual(first.code, 0, first.stderr)
        const lines = remoteLines(first.stderr)
        assert.isTrue(
          lines.some((l) => /^Step 1\/\d+ : FROM scratch/.test(l)),
          first.stderr
        )
        assert.include(lines.at(-1) ?? "", `http://${host}:${server.routerPort}`)
        const v1 = yield* getApp(server.routerPort, host)
        assert.strictEqual(v1.status, 200, v1.body)
        assert.strictEqual(v1.body.trim(), "v1")
        const containers = yield* docker(["ps", "-q", "--filter", `label=paas.project=${id}`])
        assert.lengthOf(containers.split("\n"), 1)
        const networks = yield* docker([
          "inspect",
          "-f",
          "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
          containers
        ])
        assert.strictEqual(networks.trim(), appsNetwork)

        yield* user.commit(site("v2"), "v2")
        const second = yield* user.push(id)
        assert.strictEqual(second.code, 0, second.stderr)
        assert.strictEqual((yield* getApp(server.routerPort, host)).body.trim(), "v2")
        const status = yield* api(server, "POST", "/projects/status", {
          token,
          body: { container_names: [id] }
        })
        assert.strictEqual(status.body.content.container_statuses[0].container_status, "STATUS_RUNNING")
        const logs = yield* api(server, "GET", `/projects/${id}/logs`, { token })
        assert.strictEqual(logs.status, 200)

        // Three redeploys (new env, so new containers) while requests run through the router: none fails.
        const { ok, failures } = yield* loadDuring(
          server.routerPort,
          host,
          6,
          Effect.forEach([1, 2, 3], (n) =>
            Effect.map(
              api(server, "PATCH", `/projects/${id}/deploy`, {
                token,
                body: { env_vars: { ROUND: `${n}` } }
              }),
              (redeploy) => assert.strictEqual(redeploy.status, 200, JSON.stringify(redeploy.body))
            )
          )
        )
        console.log(`e2e docker: ${ok} requests during 3 redeploys, ${failures.length} failed`)
        assert.deepStrictEqual(failures, [])
        assert.isAbove(ok, 20)
        assert.lengthOf((yield* docker(["ps", "-q", "--filter", `label=paas.project=${id}`])).split("\n"), 1)

        assert.strictEqual((yield* api(server, "DELETE", `/projects/${id}`, { token })).status, 200)
        assert.strictEqual(yield* docker(["ps", "-aq", "--filter", `label=paas.project=${id}`]), "")
        assert.strictEqual(yield* docker(["images", "-q", "--filter", `label=paas.project=${id}`]), "")
        assert.strictEqual((yield* getApp(server.routerPort, host)).status, 404)
        assert.strictEqual(yield* server.stop("SIGTERM"), 0)
      }),
    300_000
  )
})
