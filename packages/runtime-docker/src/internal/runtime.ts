// The Docker runtime: containers created, started, health-checked, listed, logged, measured and
// removed through the engine API. Only containers carrying this installation's ownership label
// are ever listed or touched.
import { randomBytes } from "node:crypto"
import { request } from "node:http"
import type { AppStatus } from "@paas/core/Deployment"
import { RuntimeError } from "@paas/core/Errors"
import { ProjectId } from "@paas/core/Project"
import { ReleaseId } from "@paas/core/Release"
import type {
  Address,
  AppSpec,
  AppStats,
  Instance,
  InstanceStatus,
  LogLine,
  LogOptions
} from "@paas/core/RuntimeDriver"
import type Docker from "dockerode"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { DockerClient, DockerError } from "../DockerClient.js"
import type {
  ContainerView,
  DockerRuntime,
  DockerRuntimeOptions,
  DockerRuntimeSettings,
  OwnershipLabels,
  RemovedImages
} from "../DockerRuntime.js"
import { decodeAll, LogDecoder, sinceParameter, type TimedLine } from "./logs.js"
import { containerLabels, invalidHost } from "./traefik.js"

export const settingsOf = (options: DockerRuntimeOptions = {}): DockerRuntimeSettings => ({
  installationId: options.installationId ?? "paas",
  labelPrefix: options.labelPrefix ?? "paas",
  appsNetwork: options.appsNetwork ?? "paas-apps",
  platformNetwork: options.platformNetwork ?? "paas-platform",
  traefik: {
    entrypoint: options.traefik?.entrypoint ?? "web",
    certResolver: options.traefik?.certResolver,
    namePrefix: options.traefik?.namePrefix ?? "paas"
  },
  stopTimeout: Duration.decode(options.stopTimeout ?? Duration.seconds(10)),
  drainGrace: Duration.decode(options.drainGrace ?? Duration.seconds(2)),
  drain: options.drain,
  drainTimeout: Duration.decode(options.drainTimeout ?? Duration.seconds(30)),
  readOnlyRootFilesystem: options.readOnlyRootFilesystem ?? false,
  defaultMemoryBytes: options.defaultMemoryBytes,
  defaultCpus: options.defaultCpus,
  pidsLimit: options.pidsLimit,
  healthcheckInterval: Duration.decode(options.healthcheckInterval ?? Duration.millis(50)),
  logPollInterval: Duration.decode(options.logPollInterval ?? Duration.seconds(1)),
  logMaxSize: options.logMaxSize ?? "10m",
  logMaxFiles: options.logMaxFiles ?? 3
})

export const ownershipLabels = (prefix: string): OwnershipLabels => ({
  managedBy: `${prefix}.managed-by`,
  project: `${prefix}.project`,
  release: `${prefix}.release`,
  releaseNumber: `${prefix}.release-number`,
  specHash: `${prefix}.spec-hash`,
  instance: `${prefix}.instance`,
  port: `${prefix}.port`
})

const decodeProjectId = Schema.decodeUnknownOption(ProjectId)
const decodeReleaseId = Schema.decodeUnknownOption(ReleaseId)

// Container ids and names as the engine makes them. An id goes into a URL path, so anything else
// (a slash above all) is refused before it reaches dockerode.
const CONTAINER_REF = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/

const runtimeError = (message: string, cause?: unknown) =>
  new RuntimeError(cause === undefined ? { message } : { message, cause })

const fromDocker = (error: DockerError) => runtimeError(error.message, error.cause)

const isStatus = (error: DockerError, ...codes: ReadonlyArray<number>) =>
  error.statusCode !== undefined && codes.includes(error.statusCode)

/** The port an image declares, when it declares exactly one TCP port. */
const singleExposedPort = (image: Docker.ImageInspectInfo): number | undefined => {
  const ports = Object.keys(image.Config?.ExposedPorts ?? {})
    .filter((p) => p.endsWith("/tcp"))
    .map((p) => Number.parseInt(p, 10))
    .filter((p) => Number.isInteger(p) && p > 0 && p < 65536)
  return ports.length === 1 ? ports[0] : undefined
}

// Either side can ask for it and neither can take it back: the installation's option hardens every
// app, and an app (paas.yaml `run.readonly`) can harden itself.
const readOnlyWanted = (spec: AppSpec, installation: boolean): boolean =>
  installation || spec.run.readOnlyRootFilesystem

/** One HTTP GET on 127.0.0.1: the status code, or why there was none. */
const probe = (port: number, path: string, host: string | undefined, timeoutMs: number) =>
  Effect.async<number, string>((resume, signal) => {
    let req: ReturnType<typeof request>
    try {
      req = request(
        {
          host: "127.0.0.1",
          port,
          path: path.startsWith("/") ? path : `/${path}`,
          method: "GET",
          agent: false,
          signal,
          timeout: timeoutMs,
          headers: host === undefined ? {} : { host }
        },
        (res) => {
          res.resume()
          resume(Effect.succeed(res.statusCode ?? 0))
        }
      )
    } catch (e) {
      // Node refuses some paths outright (unescaped characters): that is an answer, not a defect.
      resume(Effect.fail(e instanceof Error ? e.message : String(e)))
      return
    }
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on("error", (e) => resume(Effect.fail(e.message)))
    req.end()
  })

const STATS_ZERO = { cpuPercent: 0, memoryBytes: 0, memoryLimitBytes: 0 }

/** CPU use between two samples, in percent of one core; undefined when they cannot tell. */
const cpuBetween = (before: Docker.CPUStats | undefined, after: Docker.CPUStats | undefined) => {
  if (!before || !after || !before.system_cpu_usage || !after.system_cpu_usage) return undefined
  const system = after.system_cpu_usage - before.system_cpu_usage
  if (system <= 0) return undefined
  const used = after.cpu_usage.total_usage - before.cpu_usage.total_usage
  const cpus = after.online_cpus || after.cpu_usage.percpu_usage?.length || 1
  return Math.max(0, (used / system) * cpus * 100)
}

/** Memory in use as `docker stats` counts it: without the reclaimable page cache. */
const memoryUsed = (stats: Docker.ContainerStats) => {
  const memory = stats.memory_stats
  if (!memory?.usage) return 0
  const raw = memory.stats as unknown as Record<string, number | undefined> | undefined
  const cache = raw?.total_inactive_file ?? raw?.inactive_file ?? 0
  return Math.max(0, memory.usage - (cache < memory.usage ? cache : 0))
}

const repositoryOf = (tag: string) => {
  const colon = tag.lastIndexOf(":")
  return colon > tag.lastIndexOf("/") ? tag.slice(0, colon) : tag
}

const toLogLine = (line: TimedLine): LogLine => ({ at: line.at, stream: line.stream, line: line.line })

export const make = (
  options: DockerRuntimeOptions = {}
): Effect.Effect<DockerRuntime["Type"], DockerError, DockerClient> =>
  Effect.gen(function* () {
    const client = yield* DockerClient
    const settings = settingsOf(options)
    const keys = ownershipLabels(settings.labelPrefix)
    if (settings.appsNetwork === settings.platformNetwork)
      return yield* new DockerError({
        message: `the apps network and the platform network must differ (both are "${settings.appsNetwork}")`
      })
    // What the engine cannot tell: instances inside `start` (not yet healthy) and inside `remove`.
    const starting = new Set<string>()
    const stopping = new Set<string>()
    const owned = `${keys.managedBy}=${settings.installationId}`
    const stopSeconds = Math.max(0, Math.ceil(Duration.toSeconds(settings.stopTimeout)))

    const call = <A>(what: string, f: (docker: Docker, signal: AbortSignal) => Promise<A>) =>
      Effect.mapError(client.call(what, f), fromDocker)

    const ensureNetwork = Effect.gen(function* () {
      const name = settings.appsNetwork
      const found = yield* client
        .call(`inspecting network ${name}`, (d) => d.getNetwork(name).inspect())
        .pipe(
          Effect.asSome,
          Effect.catchIf(
            (e) => isStatus(e, 404),
            () => Effect.succeedNone
          )
        )
      if (Option.isSome(found)) return
      yield* client
        .call(`creating network ${name}`, (d) =>
          d.createNetwork({
            Name: name,
            Driver: "bridge",
            CheckDuplicate: true,
            Labels: { [keys.managedBy]: settings.installationId }
          })
        )
        .pipe(Effect.catchIf((e) => isStatus(e, 409), Effect.succeed))
    })
    yield* ensureNetwork

    const statusOf = (id: string, state: string): InstanceStatus => {
      if (stopping.has(id)) return "stopping"
      if (starting.has(id)) return "starting"
      switch (state) {
        case "running":
          return "running"
        case "removing":
          return "stopping"
        case "paused":
          return "stopped"
        default:
          // exited, dead, restarting (it crashed) and created-but-never-started (a start that died
          // with its server): none of them serves.
          return "failed"
      }
    }

    const viewOf = (info: Docker.ContainerInfo): ContainerView | undefined => {
      const labels = info.Labels ?? {}
      const appId = decodeProjectId(labels[keys.project])
      const releaseId = decodeReleaseId(labels[keys.release])
      if (Option.isNone(appId) || Option.isNone(releaseId)) return undefined
      const port = Number(labels[keys.port])
      const status = statusOf(info.Id, info.State)
      const published = info.Ports?.find(
        (p) => p.PrivatePort === port && p.Type === "tcp" && p.IP === "127.0.0.1" && p.PublicPort > 0
      )
      const serving = status === "running" || status === "starting" || status === "stopping"
      return {
        instance: {
          id: info.Id,
          appId: appId.value,
          releaseId: releaseId.value,
          specHash: labels[keys.specHash] ?? "",
          status,
          address: published && serving ? { host: "127.0.0.1", port: published.PublicPort } : null,
          startedAt: new Date(info.Created * 1000)
        },
        name: (info.Names?.[0] ?? info.Id).replace(/^\//, ""),
        image: info.Image,
        labels
      }
    }

    const containers = (appId?: ProjectId) =>
      call("listing containers", (d, signal) =>
        d.listContainers({
          all: true,
          filters: { label: appId === undefined ? [owned] : [owned, `${keys.project}=${appId}`] },
          abortSignal: signal
        })
      ).pipe(
        Effect.map((infos) =>
          infos
            .map(viewOf)
            .filter((v): v is ContainerView => v !== undefined)
            // Oldest first. The engine lists creation times in whole seconds; the release breaks ties.
            .sort(
              (a, b) =>
                a.instance.startedAt.getTime() - b.instance.startedAt.getTime() ||
                Number(a.labels[keys.releaseNumber]) - Number(b.labels[keys.releaseNumber])
            )
        )
      )

    const list = (appId?: ProjectId) => Effect.map(containers(appId), (views) => views.map((v) => v.instance))

    const inspect = (id: string) =>
      call(`inspecting container ${id}`, (d, signal) => d.getContainer(id).inspect({ abortSignal: signal }))

    const inspectIfExists = (id: string) =>
      client
        .call(`inspecting container ${id}`, (d, signal) =>
          d.getContainer(id).inspect({ abortSignal: signal })
        )
        .pipe(
          Effect.asSome,
          Effect.catchIf(
            (e) => isStatus(e, 404),
            () => Effect.succeedNone
          ),
          Effect.mapError(fromDocker)
        )

    // The last few lines of a container, for the message of a failed start.
    const lastOutput = (id: string) =>
      client
        .call(`reading logs of ${id}`, (d, signal) =>
          d.getContainer(id).logs({ stdout: true, stderr: true, tail: 5, abortSignal: signal })
        )
        .pipe(
          Effect.map((buffer) =>
            decodeAll(buffer)
              .map((l) => l.line)
              .join(" | ")
              .slice(-500)
          ),
          Effect.orElseSucceed(() => "")
        )

    // Removes a container at once, without draining: for starts that failed.
    const discard = (id: string) =>
      client
        .call(`removing container ${id}`, (d) => d.getContainer(id).remove({ force: true, v: true }))
        .pipe(
          Effect.catchIf((e) => isStatus(e, 404, 409), Effect.succeed),
          Effect.catchAll((e) => Effect.logWarning("could not remove a container that failed to start", e)),
          Effect.asVoid
        )

    const exitProblem = (info: Docker.ContainerInspectInfo): string | undefined => {
      const state = info.State
      if (state.Status === "created") return undefined
      if (state.Running && !state.Restarting) {
        if (info.RestartCount === 0) return undefined
        // Brought back by the restart policy: it did exit, but its exit code is gone.
        return `the container exited and was restarted ${info.RestartCount} time(s)`
      }
      const oom = state.OOMKilled ? " (out of memory)" : ""
      const error = state.Error ? `: ${state.Error}` : ""
      return `the container exited with code ${state.ExitCode}${oom}${error}`
    }

    const publishedPort = (info: Docker.ContainerInspectInfo, port: number) => {
      const binding = info.NetworkSettings?.Ports?.[`${port}/tcp`]?.find((b) => b.HostIp === "127.0.0.1")
      const hostPort = Number(binding?.HostPort)
      return Number.isInteger(hostPort) && hostPort > 0 ? hostPort : undefined
    }

    // Polls until the app answers below 500, the container exits, or the deadline passes.
    const waitHealthy = (id: string, spec: AppSpec, hostPort: number) =>
      Effect.gen(function* () {
        const timeoutMs = spec.run.healthcheckTimeoutMs
        const deadline = (yield* Clock.currentTimeMillis) + timeoutMs
        let last = "it never answered"
        for (;;) {
          const problem = exitProblem(yield* inspect(id))
          if (problem !== undefined) return yield* Effect.fail(problem)
          const now = yield* Clock.currentTimeMillis
          if (now >= deadline) break
          const answer = yield* Effect.either(
            probe(hostPort, spec.run.healthcheckPath, spec.hosts[0], Math.min(2_000, deadline - now))
          )
          if (answer._tag === "Right" && answer.right < 500) return
          last = answer._tag === "Right" ? `it answered HTTP ${answer.right}` : answer.left
          const after = yield* Clock.currentTimeMillis
          if (after >= deadline) break
          yield* Effect.sleep(Duration.min(settings.healthcheckInterval, Duration.millis(deadline - after)))
        }
        return yield* Effect.fail(
          `no answer below 500 on ${spec.run.healthcheckPath} within ${timeoutMs} ms (last: ${last})`
        )
      })

    const createBody = (spec: AppSpec, port: number, name: string): Docker.ContainerCreateOptions => {
      const readOnly = readOnlyWanted(spec, settings.readOnlyRootFilesystem)
      const memory = spec.run.memoryBytes ?? settings.defaultMemoryBytes
      const cpus = spec.run.cpus ?? settings.defaultCpus
      const env = { ...spec.env, PORT: String(port) }
      const hostConfig: Docker.HostConfig = {
        Init: true,
        RestartPolicy: { Name: "unless-stopped" },
        NetworkMode: settings.appsNetwork,
        PortBindings: { [`${port}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: "" }] },
        PublishAllPorts: false,
        Privileged: false,
        CapAdd: [],
        SecurityOpt: ["no-new-privileges:true"],
        ReadonlyRootfs: readOnly,
        LogConfig: {
          Type: "json-file",
          Config: { "max-size": settings.logMaxSize, "max-file": String(settings.logMaxFiles) }
        }
      }
      // A read-only root still needs somewhere to write temporary files; tmpfs is memory, not the host.
      if (readOnly) hostConfig.Tmpfs = { "/tmp": "rw,nosuid,nodev,size=64m" }
      if (memory != null) {
        hostConfig.Memory = memory
        hostConfig.MemorySwap = memory
      }
      if (cpus != null) hostConfig.NanoCpus = Math.round(cpus * 1e9)
      if (settings.pidsLimit !== undefined) hostConfig.PidsLimit = settings.pidsLimit
      const body: Docker.ContainerCreateOptions = {
        name,
        Image: spec.image,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        Labels: {
          [keys.managedBy]: settings.installationId,
          [keys.project]: spec.appId,
          [keys.release]: spec.releaseId,
          [keys.releaseNumber]: String(spec.releaseNumber),
          [keys.specHash]: spec.specHash,
          [keys.instance]: name,
          [keys.port]: String(port),
          ...containerLabels(settings.traefik, {
            appId: spec.appId,
            hosts: spec.hosts,
            port,
            network: settings.appsNetwork
          })
        },
        ExposedPorts: { [`${port}/tcp`]: {} },
        StopSignal: "SIGTERM",
        StopTimeout: stopSeconds,
        HostConfig: hostConfig,
        NetworkingConfig: { EndpointsConfig: { [settings.appsNetwork]: {} } }
      }
      if (spec.run.command !== null && spec.run.command.length > 0) body.Cmd = [...spec.run.command]
      return body
    }

    // Starts a created container and waits for it to be healthy; fails with the reason it is not.
    const boot = (id: string, spec: AppSpec, port: number, name: string) =>
      Effect.gen(function* () {
        yield* call(`starting container ${name}`, (d, signal) =>
          d.getContainer(id).start({ abortSignal: signal })
        )
        const info = yield* inspect(id)
        const hostPort = publishedPort(info, port)
        if (hostPort === undefined) {
          const problem = exitProblem(info) ?? `port ${port} was not published on 127.0.0.1`
          return yield* Effect.fail(problem)
        }
        yield* waitHealthy(id, spec, hostPort)
        const instance: Instance = {
          id,
          appId: spec.appId,
          releaseId: spec.releaseId,
          specHash: spec.specHash,
          status: "running",
          address: { host: "127.0.0.1", port: hostPort },
          startedAt: new Date(info.Created)
        }
        return instance
      }).pipe(
        Effect.catchAll((problem) =>
          Effect.flatMap(
            typeof problem === "string" ? lastOutput(id) : Effect.succeed(""),
            (output): Effect.Effect<never, RuntimeError> =>
              Effect.fail(
                typeof problem === "string"
                  ? runtimeError(
                      `release v${spec.releaseNumber} failed to start: ${problem}` +
                        (output ? `; last output: ${output}` : "")
                    )
                  : problem
              )
          )
        )
      )

    const start = (spec: AppSpec): Effect.Effect<Instance, RuntimeError> =>
      Effect.gen(function* () {
        const badHost = invalidHost(spec.hosts)
        if (badHost !== undefined)
          return yield* runtimeError(`not a valid host name: ${JSON.stringify(badHost)}`)
        yield* Effect.mapError(ensureNetwork, fromDocker)
        const image = yield* client
          .call(`inspecting image ${spec.image}`, (d) => d.getImage(spec.image).inspect())
          .pipe(
            Effect.mapError((e) =>
              isStatus(e, 404)
                ? runtimeError(
                    `image ${spec.image} is not on the Docker engine (it is never pulled)`,
                    e.cause
                  )
                : fromDocker(e)
            )
          )
        const port = spec.run.port ?? singleExposedPort(image) ?? 8080
        const name = `${settings.labelPrefix}-${spec.appId}-v${spec.releaseNumber}-${randomBytes(3).toString("hex")}`
        const body = createBody(spec, port, name)
        // Once created, the container is this start's to remove on any failure or interruption.
        return yield* Effect.uninterruptibleMask((restore) =>
          Effect.gen(function* () {
            const container = yield* call(`creating container ${name}`, (d) => d.createContainer(body))
            starting.add(container.id)
            return yield* restore(boot(container.id, spec, port, name)).pipe(
              Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : discard(container.id))),
              Effect.ensuring(Effect.sync(() => starting.delete(container.id)))
            )
          })
        )
      })

    const remove = (instanceId: string): Effect.Effect<void, RuntimeError> =>
      Effect.gen(function* () {
        if (!CONTAINER_REF.test(instanceId))
          return yield* runtimeError(`not a container id: ${JSON.stringify(instanceId)}`)
        const found = yield* inspectIfExists(instanceId)
        if (Option.isNone(found)) return
        const info = found.value
        if (info.Config?.Labels?.[keys.managedBy] !== settings.installationId)
          return yield* runtimeError(
            `container ${instanceId} is not managed by this installation (${owned}); it was left alone`
          )
        const id = info.Id
        yield* Effect.acquireUseRelease(
          Effect.sync(() => stopping.add(id)),
          () => {
            const port = Number(info.Config?.Labels?.[keys.port])
            const hostPort = Number.isInteger(port) ? publishedPort(info, port) : undefined
            return stopAndRemove(
              id,
              info.State.Running && !info.State.Restarting,
              hostPort === undefined ? undefined : { host: "127.0.0.1", port: hostPort }
            )
          },
          () => Effect.sync(() => stopping.delete(id))
        )
      })

    const stopAndRemove = (id: string, running: boolean, address?: Address) =>
      Effect.gen(function* () {
        if (running) {
          // Routers have already moved to the new instance. A router that counts its requests
          // says when the last one is done; otherwise in-flight requests get a fixed grace.
          if (settings.drain !== undefined && address !== undefined)
            yield* settings
              .drain(address, settings.drainTimeout)
              .pipe(Effect.timeout(settings.drainTimeout), Effect.ignore)
          else yield* Effect.sleep(settings.drainGrace)
          yield* client
            .call(`stopping container ${id}`, (d) => d.getContainer(id).stop({ t: stopSeconds }))
            .pipe(
              Effect.catchIf((e) => isStatus(e, 304, 404), Effect.succeed),
              Effect.mapError(fromDocker)
            )
        }
        const done = yield* client
          .call(`removing container ${id}`, (d) => d.getContainer(id).remove({ force: true, v: true }))
          .pipe(
            Effect.as(true),
            Effect.catchIf(
              (e) => isStatus(e, 404),
              () => Effect.succeed(true)
            ),
            // 409: another removal is under way; wait for it to finish.
            Effect.catchIf(
              (e) => isStatus(e, 409),
              () => Effect.succeed(false)
            ),
            Effect.mapError(fromDocker)
          )
        if (done) return
        for (let i = 0; i < 120; i++) {
          if (Option.isNone(yield* inspectIfExists(id))) return
          yield* Effect.sleep(Duration.millis(250))
        }
        return yield* runtimeError(`container ${id} is still being removed after 30 s`)
      })

    // ---- logs

    const history = (views: ReadonlyArray<ContainerView>, tail: number | undefined) =>
      Effect.forEach(
        views,
        (view) =>
          client
            .call(`reading logs of ${view.name}`, (d, signal) =>
              d.getContainer(view.instance.id).logs({
                stdout: true,
                stderr: true,
                timestamps: true,
                ...(tail === undefined ? {} : { tail }),
                abortSignal: signal
              })
            )
            .pipe(
              Effect.map((buffer) => ({ id: view.instance.id, lines: decodeAll(buffer) })),
              Effect.catchIf(
                (e) => isStatus(e, 404),
                () => Effect.succeed({ id: view.instance.id, lines: [] as Array<TimedLine> })
              ),
              Effect.mapError(fromDocker)
            ),
        { concurrency: 4 }
      )

    const merged = (parts: ReadonlyArray<{ readonly lines: ReadonlyArray<TimedLine> }>, tail?: number) => {
      const all = parts
        .flatMap((p) => p.lines)
        .sort((a, b) => (a.nanos < b.nanos ? -1 : a.nanos > b.nanos ? 1 : 0))
      return tail === undefined ? all : tail <= 0 ? [] : all.slice(-tail)
    }

    const followContainer = (id: string, since: bigint | undefined): Stream.Stream<TimedLine, RuntimeError> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const readable = yield* Effect.acquireRelease(
            call(`following logs of ${id}`, (d, signal) =>
              d.getContainer(id).logs({
                follow: true,
                stdout: true,
                stderr: true,
                timestamps: true,
                ...(since === undefined ? {} : { since: sinceParameter(since) }),
                abortSignal: signal
              })
            ),
            (stream) => Effect.sync(() => (stream as unknown as { destroy: () => void }).destroy())
          )
          const decoder = new LogDecoder()
          return Stream.fromAsyncIterable(readable as unknown as AsyncIterable<Uint8Array>, (cause) =>
            runtimeError(`reading logs of ${id} failed`, cause)
          ).pipe(
            Stream.mapConcat((chunk) => decoder.push(chunk)),
            Stream.concat(Stream.suspend(() => Stream.fromIterable(decoder.end())))
          )
        })
      )

    // Past lines of every instance, merged by time; then, when following, new lines of every
    // instance, including instances that start later (a deploy switches containers under a reader).
    const logs = (appId: ProjectId, options: LogOptions = {}): Stream.Stream<LogLine, RuntimeError> => {
      const tail = options.tail
      if (!options.follow)
        return Stream.unwrap(
          Effect.map(
            Effect.flatMap(containers(appId), (views) => history(views, tail)),
            (parts) => Stream.fromIterable(merged(parts, tail).map(toLogLine))
          )
        )
      return Stream.unwrapScoped(
        Effect.gen(function* () {
          const views = yield* containers(appId)
          const parts = yield* history(views, tail)
          // The newest line seen of each container: following resumes after it, without repeats.
          const seen = new Map<string, bigint>()
          for (const part of parts) {
            const newest = part.lines.at(-1)
            if (newest) seen.set(part.id, newest.nanos)
          }
          const mailbox = yield* Mailbox.make<TimedLine, RuntimeError>()
          yield* Effect.addFinalizer(() => mailbox.shutdown)
          const following = new Set<string>()
          const follow = (id: string) =>
            followContainer(id, seen.get(id)).pipe(
              Stream.runForEach((line) => {
                const newest = seen.get(id)
                if (newest !== undefined && line.nanos <= newest) return Effect.void
                seen.set(id, line.nanos)
                return mailbox.offer(line)
              }),
              // A container that goes away ends its part of the stream, not the stream.
              Effect.ignore,
              Effect.ensuring(Effect.sync(() => following.delete(id)))
            )
          const discover = Effect.flatMap(containers(appId), (current) =>
            Effect.forEach(
              current.filter((v) => v.instance.status !== "failed" && !following.has(v.instance.id)),
              (v) => {
                following.add(v.instance.id)
                return Effect.forkScoped(follow(v.instance.id))
              },
              { discard: true }
            )
          )
          yield* discover
          yield* Effect.forkScoped(
            Effect.forever(Effect.zipRight(Effect.sleep(settings.logPollInterval), discover)).pipe(
              Effect.catchAll((e) => mailbox.fail(e))
            )
          )
          return Stream.concat(Stream.fromIterable(merged(parts, tail)), Mailbox.toStream(mailbox))
        })
      ).pipe(Stream.map(toLogLine))
    }

    // ---- statistics

    const containerStats = (id: string) =>
      Effect.gen(function* () {
        const sample = () =>
          client
            .call(`reading statistics of ${id}`, (d, signal) =>
              d.getContainer(id).stats({ stream: false, abortSignal: signal } as { stream: false })
            )
            .pipe(Effect.mapError(fromDocker))
        const first = yield* sample()
        // The engine's own previous sample is usually there; when it is not, take a second one.
        let cpu = cpuBetween(first.precpu_stats, first.cpu_stats)
        if (cpu === undefined) {
          const second = yield* sample()
          cpu = cpuBetween(first.cpu_stats, second.cpu_stats) ?? 0
          return {
            cpuPercent: cpu,
            memoryBytes: memoryUsed(second),
            memoryLimitBytes: second.memory_stats?.limit ?? 0
          }
        }
        return {
          cpuPercent: cpu,
          memoryBytes: memoryUsed(first),
          memoryLimitBytes: first.memory_stats?.limit ?? 0
        }
      })

    const stats = (appId: ProjectId): Effect.Effect<AppStats, RuntimeError> =>
      Effect.gen(function* () {
        const running = (yield* list(appId)).filter((i) => i.status === "running")
        if (running.length === 0) return yield* runtimeError(`app ${appId} is not running`)
        const samples = yield* Effect.forEach(running, (i) => containerStats(i.id), {
          concurrency: "unbounded"
        })
        return samples.reduce(
          (sum, s) => ({
            cpuPercent: sum.cpuPercent + s.cpuPercent,
            memoryBytes: sum.memoryBytes + s.memoryBytes,
            memoryLimitBytes: sum.memoryLimitBytes + s.memoryLimitBytes
          }),
          STATS_ZERO
        )
      })

    const status = (appId: ProjectId): Effect.Effect<AppStatus, RuntimeError> =>
      Effect.map(list(appId), (instances): AppStatus => {
        const has = (s: InstanceStatus) => instances.some((i) => i.status === s)
        if (has("running")) return "running"
        if (has("starting")) return "starting"
        if (has("stopping")) return "stopping"
        if (has("failed")) return "failed"
        return "stopped"
      })

    const removeImages = (appId: ProjectId, keep: ReadonlyArray<string> = []) =>
      Effect.gen(function* () {
        const kept = new Set(keep)
        const images = yield* call("listing images", (d, signal) => d.listImages({ abortSignal: signal }))
        const targets: Array<string> = []
        for (const image of images) {
          if (kept.has(image.Id)) continue
          const tags = (image.RepoTags ?? []).filter((t) => t !== "<none>:<none>")
          const labelled = image.Labels?.[keys.project] === appId
          // Removing a tag only untags an image that has others; the image goes with its last tag.
          targets.push(...tags.filter((t) => !kept.has(t) && (labelled || repositoryOf(t).includes(appId))))
          // A build of the project with no name left (a dangling one) goes by id.
          if (labelled && tags.length === 0) targets.push(image.Id)
        }
        const removed: Array<string> = []
        const inUse: Array<string> = []
        for (const target of targets) {
          const outcome = yield* client
            .call(`removing image ${target}`, (d) => d.getImage(target).remove({ noprune: false }))
            .pipe(
              Effect.as("removed" as const),
              Effect.catchIf(
                (e) => isStatus(e, 404),
                () => Effect.succeed("gone" as const)
              ),
              Effect.catchIf(
                (e) => isStatus(e, 409),
                () => Effect.succeed("in-use" as const)
              ),
              Effect.mapError(fromDocker)
            )
          if (outcome === "removed") removed.push(target)
          else if (outcome === "in-use") inUse.push(target)
        }
        const result: RemovedImages = { removed, inUse }
        return result
      })

    const runtime: DockerRuntime["Type"] = {
      settings,
      labels: keys,
      start,
      remove,
      list,
      logs,
      stats,
      containers,
      status,
      removeImages
    }
    return runtime
  })
