/**
 * The self-hosting files at the repository root: docker-compose.yml is valid for Compose and wires
 * what the README promises (the two networks, apps never on the platform's, the server configured
 * for Docker and Traefik). It cannot be started here (no image can be pulled), so this is as far as
 * a test can go; CI installs docker-compose, elsewhere the test skips loudly.
 */
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"

const root = fileURLToPath(new URL("../../../", import.meta.url))
const compose =
  process.env.PAAS_REQUIRE_DOCKER === "1" ||
  spawnSync("docker-compose", ["version"], { stdio: "ignore", timeout: 30_000 }).status === 0
if (!compose) console.warn("docker-compose is not installed: SKIPPING the docker-compose.yml check.")

describe.skipIf(!compose)("docker-compose.yml", () => {
  it("is valid, and runs the server on Docker behind Traefik with two separate networks", () => {
    const result = spawnSync("docker-compose", ["--file", `${root}docker-compose.yml`, "config"], {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
      env: {
        PATH: process.env.PATH ?? "",
        PAAS_BASE_DOMAIN: "paas.example.com",
        ACME_EMAIL: "ops@example.com",
        POSTGRES_PASSWORD: "a-long-random-password"
      }
    })
    assert.strictEqual(result.status, 0, result.stderr)
    const config = result.stdout
    for (const expected of [
      "PAAS_RUNTIME: docker",
      "PAAS_ROUTER: traefik",
      "DATABASE_URL: postgres://paas:a-long-random-password@postgres:5432/paas",
      "name: paas-apps",
      "name: paas-platform",
      "Host(`api.paas.example.com`)",
      "--certificatesresolvers.letsencrypt.acme.email=ops@example.com",
      "--entrypoints.web.http.redirections.entrypoint.to=websecure"
    ])
      assert.include(config, expected)
    // Without the required settings, Compose refuses to start and names them.
    const missing = spawnSync("docker-compose", ["--file", `${root}docker-compose.yml`, "config"], {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? "" }
    })
    assert.notStrictEqual(missing.status, 0)
    assert.match(missing.stderr, /set (ACME_EMAIL|POSTGRES_PASSWORD|PAAS_BASE_DOMAIN)/)
    // The server image's Dockerfile starts the built command.
    assert.include(readFileSync(`${root}Dockerfile`, "utf8"), 'CMD ["node", "packages/server/dist/bin.js"]')
  })
})
