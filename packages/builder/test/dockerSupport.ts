// Shared pieces of the Docker builder tests: whether an engine answers (and whether CI demands
// one), commits as tar archives holding a static busybox (no registry can be reached, so images
// are built FROM scratch), a builder whose images carry a prefix of this test file's own, a base
// image for generated Dockerfiles, containers started on a network of the file's own with a
// 127.0.0.1 port, and all of it removed when the layer closes.
import { spawnSync } from "node:child_process"
import { randomBytes, randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Readable } from "node:stream"
import type { BuildId, CommitSha } from "@paas/core/Build"
import type { BuildRequest } from "@paas/core/ImageBuilder"
import type { Env, ProjectId } from "@paas/core/Project"
import Docker from "dockerode"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import tar from "tar-stream"
import * as DockerBuilder from "../src/DockerBuilder.js"

/** Whether `docker info` reaches an engine. */
export const dockerAvailable: boolean =
  spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { timeout: 15_000, stdio: "ignore" })
    .status === 0

/** CI sets PAAS_REQUIRE_DOCKER=1: then a missing engine fails the tests instead of skipping them. */
export const dockerRequired = process.env.PAAS_REQUIRE_DOCKER === "1"

/** Whether the Docker tests run: with an engine, or when one is required (and they will fail without it). */
export const runDockerTests = dockerAvailable || dockerRequired

/** Says loudly that the Docker tests are skipped. */
export const warnIfNoDocker = (what: string) => {
  if (!dockerAvailable)
    console.warn(
      dockerRequired
        ? `\`docker info\` cannot reach a Docker engine and PAAS_REQUIRE_DOCKER=1: ${what} WILL FAIL.`
        : `\`docker info\` cannot reach a Docker engine: SKIPPING ${what}. ` +
            "Start dockerd (CI does, with PAAS_REQUIRE_DOCKER=1) to run them."
    )
}

/** The static busybox every test image is made of. */
export const busybox: Buffer =
  dockerAvailable || dockerRequired ? readFileSync("/bin/busybox") : Buffer.alloc(0)

/** One file of a commit. */
export type File = string | Buffer | { readonly content: string | Buffer; readonly mode: number }

/** A commit's tree as `git archive` would send it: a tar archive of these files. */
export const archive = (files: Readonly<Record<string, File>>): Promise<Uint8Array> =>
  new Promise((resolve, reject) => {
    const pack = tar.pack()
    const chunks: Array<Uint8Array> = []
    pack.on("data", (chunk) => chunks.push(chunk as Uint8Array))
    pack.on("end", () => resolve(Buffer.concat(chunks)))
    pack.on("error", reject)
    for (const [name, file] of Object.entries(files)) {
      const { content, mode } =
        typeof file === "string" || Buffer.isBuffer(file) ? { content: file, mode: 0o644 } : file
      pack.entry({ name, mode }, content)
    }
    pack.finalize()
  })

/** A build request for `files`, in a given project (a fresh one by default). */
export const request = (
  files: Readonly<Record<string, File>>,
  options: { readonly projectId?: ProjectId; readonly env?: Env; readonly commit?: string } = {}
) =>
  Effect.map(
    Effect.promise(() => archive(files)),
    (bytes): BuildRequest => ({
      projectId: options.projectId ?? (randomUUID() as ProjectId),
      buildId: randomUUID() as BuildId,
      commit: (options.commit ?? "0123456789abcdef0123456789abcdef01234567") as CommitSha,
      // Several chunks, as git archive sends them.
      source: Stream.fromIterable(
        Array.from({ length: Math.ceil(bytes.length / 65_536) }, (_, i) =>
          bytes.subarray(i * 65_536, (i + 1) * 65_536)
        )
      ),
      env: options.env ?? {}
    })
  )

/** A log callback that keeps every line. */
export const collect = () => {
  const lines: Array<string> = []
  return { lines, log: (line: string) => Effect.sync(() => void lines.push(line)) }
}

/** Dockerfile lines that make a busybox userland (the busybox binary must be in the context). */
export const busyboxBase = [
  "FROM scratch",
  "COPY busybox /bin/busybox",
  'RUN ["/bin/busybox", "--install", "-s", "/bin"]'
]

/** A site served by busybox httpd on $PORT: the files of a commit with its own Dockerfile. */
export const siteFiles = (page: string, extraSteps: ReadonlyArray<string> = []): Record<string, File> => ({
  Dockerfile: [
    ...busyboxBase,
    "COPY index.html /www/index.html",
    ...extraSteps,
    "EXPOSE 8080",
    `CMD ["/bin/sh", "-c", "exec httpd -f -p \\"\${PORT:-8080}\\" -h /www"]`,
    ""
  ].join("\n"),
  busybox: { content: busybox, mode: 0o755 },
  "index.html": page
})

/** What a test file shares: the engine, the builder, its image prefix and a base image for generated builds. */
export class TestBuilder extends Context.Tag("test/TestBuilder")<
  TestBuilder,
  {
    readonly docker: Docker
    readonly builder: DockerBuilder.DockerBuilder["Type"]
    readonly prefix: string
    readonly suffix: string
    readonly network: string
    /** The builder's work directory. */
    readonly workDir: string
    readonly staticBase: string
    /** A stand-in for node:20-slim: busybox with `npm` and `node` scripts that say what they were asked. */
    readonly nodeBase: string
    /** Records a project whose images go when the layer closes. */
    readonly track: (project: ProjectId) => void
  }
>() {}

/** Builds `files` into an image tagged `tag` straight through the engine (the classic builder). */
export const buildDirect = (docker: Docker, tag: string, files: Readonly<Record<string, File>>) =>
  Effect.promise(async () => {
    const context = Readable.from(Buffer.from(await archive(files)))
    const stream = await docker.buildImage(context, { t: tag, rm: true, forcerm: true })
    const output = await new Promise<Array<{ readonly error?: string }>>((resolve, reject) =>
      docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res)))
    )
    const failed = output.find((o) => o.error)
    if (failed) throw new Error(`building ${tag}: ${failed.error}`)
  })

/** Removes an image by name or id, forgetting failures (it may be gone already). */
export const removeImage = (docker: Docker, ref: string) =>
  Effect.promise(() =>
    docker
      .getImage(ref)
      .remove({ force: true })
      .catch(() => undefined)
  )

/** Every image reference (tag) under `prefix/`. */
export const imagesUnder = (docker: Docker, prefix: string) =>
  Effect.promise(async () => {
    const images = await docker.listImages({ filters: { reference: [`${prefix}/*`] } })
    return images.flatMap((i) => i.RepoTags ?? []).filter((t) => t.startsWith(`${prefix}/`))
  })

const script = (body: string) => ({ content: `#!/bin/sh\n${body}\n`, mode: 0o755 })

/**
 * The stand-in node base image's files. `npm` prints its arguments and the variables a build may
 * read, installs by making node_modules/.installed and builds by writing dist/index.html;
 * `node` serves /app with busybox httpd on $PORT.
 */
export const nodeBaseFiles = (): Record<string, File> => ({
  Dockerfile: `${[...busyboxBase, "COPY npm node /usr/local/bin/", "ENV PATH=/usr/local/bin:/bin"].join("\n")}\n`,
  busybox: { content: busybox, mode: 0o755 },
  npm: script(
    [
      `echo "fake npm $*: GREETING=\${GREETING:-unset} CI=\${CI:-unset} SECRET=\${SECRET:-unset}"`,
      'case "$1" in',
      "  ci|install) mkdir -p node_modules && touch node_modules/.installed ;;",
      `  run) mkdir -p dist && echo "built with \${GREETING:-no greeting}" > dist/index.html ;;`,
      "esac"
    ].join("\n")
  ),
  node: script(`echo "fake node $*"\nexec httpd -f -p "\${PORT:-8080}" -h /app`)
})

/**
 * A builder over a scratch work directory with image prefix `paas-test-<random>`, busybox base
 * images `<prefix>/static-base:1` and `<prefix>/node-base:1` and a network; everything the file
 * made goes when the layer closes.
 */
export const layer = (
  options: DockerBuilder.DockerBuilderOptions = {}
): Layer.Layer<TestBuilder | DockerBuilder.DockerBuilder> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const docker = new Docker()
      const suffix = randomBytes(4).toString("hex")
      const prefix = `paas-test-${suffix}`
      const network = `paas-test-${suffix}`
      const staticBase = `${prefix}/static-base:1`
      const nodeBase = `${prefix}/node-base:1`
      const workDir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "paas-docker-builder-test-"))),
        (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
      )
      // Released last: images built from the base go first.
      yield* Effect.acquireRelease(
        buildDirect(docker, staticBase, {
          Dockerfile: `${busyboxBase.join("\n")}\n`,
          busybox: { content: busybox, mode: 0o755 }
        }),
        () => removeImage(docker, staticBase)
      )
      yield* Effect.acquireRelease(buildDirect(docker, nodeBase, nodeBaseFiles()), () =>
        removeImage(docker, nodeBase)
      )
      yield* Effect.acquireRelease(
        Effect.promise(() => docker.createNetwork({ Name: network, Driver: "bridge", CheckDuplicate: true })),
        () =>
          Effect.promise(() =>
            docker
              .getNetwork(network)
              .remove()
              .catch(() => undefined)
          )
      )
      const builder = yield* Effect.orDie(
        DockerBuilder.make({
          imagePrefix: prefix,
          workDir,
          ...options,
          baseImages: {
            static: staticBase,
            node: nodeBase,
            procfile: nodeBase,
            command: nodeBase,
            ...options.baseImages
          }
        })
      )
      const projects = new Set<ProjectId>()
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          // Containers first (an image in use cannot go), then each project's images, then stragglers.
          const containers = yield* Effect.promise(() =>
            docker.listContainers({ all: true, filters: { label: [`paas-test=${suffix}`] } })
          )
          for (const c of containers)
            yield* Effect.promise(() =>
              docker
                .getContainer(c.Id)
                .remove({ force: true })
                .catch(() => undefined)
            )
          for (const project of projects) yield* builder.prune(project, [])
          for (const tag of yield* imagesUnder(docker, prefix))
            if (tag !== staticBase && tag !== nodeBase) yield* removeImage(docker, tag)
        })
      )
      return Layer.succeed(TestBuilder, {
        docker,
        builder,
        prefix,
        suffix,
        network,
        workDir,
        staticBase,
        nodeBase,
        track: (project) => void projects.add(project)
      }).pipe(Layer.merge(Layer.succeed(DockerBuilder.DockerBuilder, builder)))
    })
  )

/** Builds through the test builder, recording the project for cleanup. */
export const buildWith = (req: BuildRequest, log: (line: string) => Effect.Effect<void>) =>
  Effect.flatMap(TestBuilder, ({ builder, track }) => {
    track(req.projectId)
    return builder.build(req, log)
  })

/** Runs `image` on the test network with its port published on 127.0.0.1; removed with the scope. Returns the host port. */
export const serve = (image: string, env: Record<string, string> = {}, port = 8080) =>
  Effect.gen(function* () {
    const { docker, network, suffix } = yield* TestBuilder
    const container = yield* Effect.acquireRelease(
      Effect.promise(() =>
        docker.createContainer({
          Image: image,
          Env: Object.entries({ PORT: String(port), ...env }).map(([k, v]) => `${k}=${v}`),
          Labels: { "paas-test": suffix },
          ExposedPorts: { [`${port}/tcp`]: {} },
          HostConfig: {
            Init: true,
            NetworkMode: network,
            PortBindings: { [`${port}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: "" }] }
          }
        })
      ),
      (c) => Effect.promise(() => c.remove({ force: true }).catch(() => undefined))
    )
    yield* Effect.promise(() => container.start())
    const info = yield* Effect.promise(() => container.inspect())
    const binding = info.NetworkSettings.Ports[`${port}/tcp`]?.[0]
    if (binding === undefined) return yield* Effect.die(new Error("the container's port is not published"))
    return Number(binding.HostPort)
  })

/** GETs `path` on 127.0.0.1:`port` until it answers, for at most `timeoutMs`. */
export const fetchText = (port: number, path = "/", timeoutMs = 20_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}${path}`, {
          signal: AbortSignal.timeout(2_000)
        })
        return { status: response.status, body: await response.text() }
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`127.0.0.1:${port}${path} did not answer: ${String(e)}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  })

/** Polls `check` every 100 ms until it holds, for at most `timeoutMs`; tells whether it did. */
export const eventually = (check: () => Promise<boolean>, timeoutMs = 15_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (await check()) return true
      if (Date.now() > deadline) return false
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })
