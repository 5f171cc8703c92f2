// Shared pieces of the Docker tests: whether an engine answers, a busybox image built FROM scratch
// (no registry is reachable), a runtime with test-unique names, and everything removed at the end.
import { execFile, spawnSync } from "node:child_process"
import { randomBytes, randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import { request } from "node:http"
import { Readable } from "node:stream"
import type { ProjectId } from "@paas/core/Project"
import { type ReleaseId, RunSettings } from "@paas/core/Release"
import type { AppSpec, RuntimeDriver } from "@paas/core/RuntimeDriver"
import Docker from "dockerode"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as tar from "tar-stream"
import type { DockerClient } from "../src/DockerClient.js"
import * as DockerRuntime from "../src/DockerRuntime.js"

/** Runs `effect` and tells how long it took, in milliseconds. */
export const elapsed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    const result = yield* effect
    return [result, (yield* Clock.currentTimeMillis) - start] as const
  })

/** Prints a measured figure (tests never assert on timings). */
export const report = (what: string, ms: number) =>
  Effect.sync(() => console.log(`[runtime-docker] ${what}: ${ms} ms`))

/** The `NAME=value` lines of a body (the env CGI script's output) as a record. */
export const envOf = (body: string) =>
  Object.fromEntries(
    body
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)])
  )

/**
 * Whether to run the Docker tests: when `docker info` reaches an engine, or always when
 * PAAS_REQUIRE_DOCKER=1 (CI sets it, so a missing engine fails there instead of skipping).
 */
export const dockerAvailable: boolean =
  process.env.PAAS_REQUIRE_DOCKER === "1" ||
  spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { timeout: 15_000, stdio: "ignore" })
    .status === 0

/** Says loudly that the Docker tests are skipped (CI always has an engine). */
export const warnIfNoDocker = (what: string) => {
  if (!dockerAvailable)
    console.warn(
      `\`docker info\` cannot reach a Docker engine: SKIPPING ${what}. ` +
        "Start dockerd (CI does) to run them."
    )
}

const script = (body: string) => `#!/bin/sh\n${body}\n`

/** A file of a build context. */
export interface ContextFile {
  readonly content: string | Buffer
  readonly mode: number
}

/**
 * The test app: busybox httpd on `$PORT` serving a page and CGI scripts that report on the
 * container (its env, whether it can write, a failing endpoint). `expose` is the port the image
 * declares, or null for none.
 */
export const appFiles = (expose: number | null = 8080): Record<string, ContextFile> => ({
  Dockerfile: {
    mode: 0o644,
    content: [
      "FROM scratch",
      "COPY busybox /bin/busybox",
      'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
      "COPY www /www",
      ...(expose === null ? [] : [`EXPOSE ${expose}`]),
      'CMD ["/bin/sh", "-c", "exec httpd -f -p \\"$PORT\\" -h /www"]',
      ""
    ].join("\n")
  },
  busybox: { mode: 0o755, content: readFileSync("/bin/busybox") },
  "www/index.html": { mode: 0o644, content: "hello from busybox\n" },
  // CGI headers end in CRLF: Node's HTTP parser is strict about it, busybox passes them through.
  "www/cgi-bin/env": { mode: 0o755, content: script("printf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv") },
  "www/cgi-bin/fail": {
    mode: 0o755,
    content: script(
      "printf 'HTTP/1.1 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\n'\necho broken"
    )
  },
  "www/cgi-bin/write": {
    mode: 0o755,
    content: script(
      "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n" +
        "if touch /probe 2>/dev/null; then echo writable; else echo read-only; fi\n" +
        "if touch /tmp/probe 2>/dev/null; then echo tmp-writable; else echo tmp-read-only; fi"
    )
  }
})

/** A build context (a tar stream) of `files`. */
export const buildContext = (files: Record<string, ContextFile>) => {
  const pack = tar.pack()
  for (const [name, file] of Object.entries(files)) pack.entry({ name, mode: file.mode }, file.content)
  pack.finalize()
  // tar-stream's packs are streamx streams; dockerode pipes Node streams.
  return Readable.from(pack)
}

/** Builds `files` into an image tagged `tag` (the legacy builder; no registry needed). */
export const buildImage = (docker: Docker, tag: string, files = appFiles()) =>
  Effect.tryPromise({
    try: async () => {
      const stream = await docker.buildImage(buildContext(files), { t: tag, rm: true, forcerm: true })
      const output = await new Promise<Array<{ readonly error?: string; readonly stream?: string }>>(
        (resolve, reject) =>
          docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res)))
      )
      const failed = output.find((o) => o.error)
      if (failed) throw new Error(`building ${tag}: ${failed.error}`)
    },
    catch: (cause) => cause
  }).pipe(Effect.orDie)

/** Removes an image, forgetting failures (it may be gone already). */
export const removeImage = (docker: Docker, tag: string) =>
  Effect.promise(() =>
    docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => undefined)
  )

/** Force-removes every container carrying `label` (key=value). */
export const removeContainersLabelled = (docker: Docker, label: string) =>
  Effect.promise(async () => {
    const found = await docker.listContainers({ all: true, filters: { label: [label] } })
    await Promise.all(
      found.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true, v: true })
          .catch(() => undefined)
      )
    )
  })

/** Removes a network, forgetting failures. */
export const removeNetwork = (docker: Docker, name: string) =>
  Effect.promise(() =>
    docker
      .getNetwork(name)
      .remove()
      .catch(() => undefined)
  )

/** Runs the docker CLI (argument array, no shell). */
export const dockerCli = (args: ReadonlyArray<string>) =>
  Effect.async<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    execFile("docker", [...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0
      resume(Effect.succeed({ code, stdout: String(stdout), stderr: String(stderr) }))
    })
  })

/** One HTTP GET on 127.0.0.1. */
export const httpGet = (port: number, path = "/", headers: Record<string, string> = {}) =>
  Effect.async<{ readonly status: number; readonly body: string }, Error>((resume) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false, timeout: 5_000, headers }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () =>
        resume(Effect.succeed({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
      )
      res.on("error", (e) => resume(Effect.fail(e)))
    })
    req.on("timeout", () => req.destroy(new Error("timed out")))
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end()
  })

/** Retries `effect` every 200 ms until it succeeds, for at most `within`. */
export const eventually = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  within: Duration.DurationInput = "20 seconds"
) => Effect.retry(effect, Schedule.spaced("200 millis")).pipe(Effect.timeout(within))

/** What a test file shares: the engine, the image, the names it made. */
export class TestDocker extends Context.Tag("test/TestDocker")<
  TestDocker,
  {
    readonly docker: Docker
    readonly image: string
    readonly suffix: string
    readonly options: DockerRuntime.DockerRuntimeOptions
  }
>() {}

/** A spec for the test image; `run` and the rest override the defaults. */
export const specFor = (
  appId: ProjectId,
  image: string,
  overrides: Partial<Omit<AppSpec, "run">> & {
    readonly run?: Partial<ConstructorParameters<typeof RunSettings>[0]>
  } = {}
): AppSpec => {
  const { run, ...rest } = overrides
  return {
    appId,
    releaseId: randomUUID() as ReleaseId,
    releaseNumber: 1,
    image,
    env: {},
    hosts: [`${appId}.user-app.localhost`],
    specHash: randomBytes(8).toString("hex"),
    ...rest,
    run: new RunSettings({ ...RunSettings.defaults, healthcheckTimeoutMs: 20_000, ...run })
  }
}

/** A fresh app id whose containers are removed when the scope closes, whatever happened. */
export const newApp = Effect.gen(function* () {
  const { docker, options } = yield* TestDocker
  const appId = randomUUID() as ProjectId
  yield* Effect.addFinalizer(() =>
    removeContainersLabelled(docker, `${options.labelPrefix ?? "paas"}.project=${appId}`)
  )
  return appId
})

/**
 * The image, a runtime with an installation id and networks of this file's own, and cleanup of
 * every container, network and image it made, in that order, when the layer goes.
 */
export const layer = (
  options: DockerRuntime.DockerRuntimeOptions = {}
): Layer.Layer<TestDocker | DockerRuntime.DockerRuntime | RuntimeDriver | DockerClient> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const docker = new Docker()
      const suffix = randomBytes(4).toString("hex")
      const image = `paas-runtime-docker-test-${suffix}:latest`
      const full: DockerRuntime.DockerRuntimeOptions = {
        installationId: `test-${suffix}`,
        appsNetwork: `paas-test-apps-${suffix}`,
        platformNetwork: `paas-test-platform-${suffix}`,
        drainGrace: Duration.millis(100),
        stopTimeout: Duration.seconds(3),
        ...options
      }
      const started = Date.now()
      yield* Effect.acquireRelease(buildImage(docker, image), () => removeImage(docker, image))
      console.log(`[runtime-docker] image build (busybox, cached layers): ${Date.now() - started} ms`)
      yield* Effect.addFinalizer(() =>
        Effect.zipRight(
          removeNetwork(docker, full.appsNetwork!),
          removeNetwork(docker, full.platformNetwork!)
        )
      )
      yield* Effect.addFinalizer(() =>
        removeContainersLabelled(docker, `${full.labelPrefix ?? "paas"}.managed-by=${full.installationId}`)
      )
      return Layer.merge(
        Layer.succeed(TestDocker, { docker, image, suffix, options: full }),
        Layer.orDie(DockerRuntime.layer(full))
      )
    })
  )
