/**
 * DockerRuntime: the RuntimeDriver over the Docker Engine API. One container per app instance, on
 * the apps network only, published on 127.0.0.1, labelled with its owner, project, release and
 * spec, and always carrying Traefik's labels so a Traefik watching the engine can route to it.
 * It provides the core `RuntimeDriver`, its own tag (with what the Traefik routers and the server
 * need besides) and the `DockerClient` it connected with, for the image builder to share.
 */
import type { AppStatus } from "@paas/core/Deployment"
import type { RuntimeError } from "@paas/core/Errors"
import type { ProjectId } from "@paas/core/Project"
import { type Address, type Instance, RuntimeDriver } from "@paas/core/RuntimeDriver"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as DockerClient from "./DockerClient.js"
import * as internal from "./internal/runtime.js"
import type { TraefikSettings } from "./internal/traefik.js"

/** How the runtime runs containers. Every field has a default. */
export interface DockerRuntimeOptions {
  /** How to reach the engine (the local socket by default). */
  readonly docker?: DockerClient.DockerClientOptions | undefined
  /**
   * Who owns the containers: the value of the `<labelPrefix>.managed-by` label. Two installations
   * sharing an engine must use different ids; each only ever sees and touches its own containers.
   * Default "paas".
   */
  readonly installationId?: string | undefined
  /** The prefix of the ownership labels (`paas.project`, `paas.release`...). Default "paas". */
  readonly labelPrefix?: string | undefined
  /** The network app containers join, and only it; created if missing. Default "paas-apps". */
  readonly appsNetwork?: string | undefined
  /** The platform's own network (server, database), which app containers never join. Default "paas-platform". */
  readonly platformNetwork?: string | undefined
  /** Traefik's labels on every container. */
  readonly traefik?:
    | {
        /** The entrypoint of the routers. Default "web". */
        readonly entrypoint?: string | undefined
        /** An ACME certificate resolver, for HTTPS routers. */
        readonly certResolver?: string | undefined
        /** Routers and services are named `<namePrefix>-<project id>`. Default "paas". */
        readonly namePrefix?: string | undefined
      }
    | undefined
  /** How long a container has to exit after SIGTERM before it is killed. Default 10 seconds. */
  readonly stopTimeout?: Duration.DurationInput | undefined
  /** How long a healthy container keeps serving after being asked to go, so routers move away first. Default 2 seconds. */
  readonly drainGrace?: Duration.DurationInput | undefined
  /**
   * Waits until nothing is in flight to an instance's address (at most `timeout`), for a router
   * that can tell, such as the in-process ProxyRouter; it replaces the fixed `drainGrace`.
   */
  readonly drain?: ((address: Address, timeout: Duration.Duration) => Effect.Effect<void>) | undefined
  /** The longest `drain` may take (default 30 s). */
  readonly drainTimeout?: Duration.DurationInput | undefined
  /**
   * A read-only root filesystem (with a small tmpfs on /tmp) for every app. An app's own
   * `readOnlyRootFilesystem: true|false` in its run settings wins, once core carries that field.
   * Default false.
   */
  readonly readOnlyRootFilesystem?: boolean | undefined
  /** The memory limit of apps whose run settings give none; none means unlimited. */
  readonly defaultMemoryBytes?: number | undefined
  /** The CPU limit (in cores) of apps whose run settings give none; none means unlimited. */
  readonly defaultCpus?: number | undefined
  /** The most processes one container may run; none means the engine's default. */
  readonly pidsLimit?: number | undefined
  /** How often the health check is tried while an instance starts. Default 250 ms. */
  readonly healthcheckInterval?: Duration.DurationInput | undefined
  /** How often a followed log looks for new instances of the app. Default 1 second. */
  readonly logPollInterval?: Duration.DurationInput | undefined
  /** The json-file log driver's rotation: size of one file, and how many are kept. Default "10m", 3. */
  readonly logMaxSize?: string | undefined
  readonly logMaxFiles?: number | undefined
}

/** The options with their defaults applied. */
export interface DockerRuntimeSettings {
  readonly installationId: string
  readonly labelPrefix: string
  readonly appsNetwork: string
  readonly platformNetwork: string
  readonly traefik: TraefikSettings
  readonly stopTimeout: Duration.Duration
  readonly drainGrace: Duration.Duration
  readonly drain: ((address: Address, timeout: Duration.Duration) => Effect.Effect<void>) | undefined
  readonly drainTimeout: Duration.Duration
  readonly readOnlyRootFilesystem: boolean
  readonly defaultMemoryBytes: number | undefined
  readonly defaultCpus: number | undefined
  readonly pidsLimit: number | undefined
  readonly healthcheckInterval: Duration.Duration
  readonly logPollInterval: Duration.Duration
  readonly logMaxSize: string
  readonly logMaxFiles: number
}

/** The label keys the runtime writes, for one label prefix. */
export interface OwnershipLabels {
  readonly managedBy: string
  readonly project: string
  readonly release: string
  readonly releaseNumber: string
  readonly specHash: string
  readonly instance: string
  readonly port: string
}

/** An owned container as the runtime sees it: the instance, plus its name, image and labels. */
export interface ContainerView {
  readonly instance: Instance
  readonly name: string
  readonly image: string
  readonly labels: Readonly<Record<string, string>>
}

/** What removing a project's images did. */
export interface RemovedImages {
  /** The tags and image ids removed. */
  readonly removed: ReadonlyArray<string>
  /** Those left because a container still uses them. */
  readonly inUse: ReadonlyArray<string>
}

/** The Docker runtime: the core RuntimeDriver and Docker-specific operations. */
export class DockerRuntime extends Context.Tag("@paas/runtime-docker/DockerRuntime")<
  DockerRuntime,
  RuntimeDriver["Type"] & {
    /** The options in force, defaults applied. */
    readonly settings: DockerRuntimeSettings
    /** The label keys the runtime writes and filters on. */
    readonly labels: OwnershipLabels
    /** The owned containers, optionally of one app, with their labels. */
    readonly containers: (appId?: ProjectId) => Effect.Effect<ReadonlyArray<ContainerView>, RuntimeError>
    /** The app's status from its instances: running if one serves, else starting, failed or stopped. */
    readonly status: (appId: ProjectId) => Effect.Effect<AppStatus, RuntimeError>
    /**
     * Removes a project's images but `keep`: those labelled `<labelPrefix>.project=<id>` and the tags
     * whose repository names the project id (`paas/<id>:<commit>`). Images a container still uses stay.
     */
    readonly removeImages: (
      appId: ProjectId,
      keep?: ReadonlyArray<string>
    ) => Effect.Effect<RemovedImages, RuntimeError>
  }
>() {}

/** Applies the defaults to `options`. */
export const settingsOf: (options?: DockerRuntimeOptions) => DockerRuntimeSettings = internal.settingsOf

/** The label keys for a prefix (`paas.managed-by`, `paas.project`...). */
export const ownershipLabels: (prefix: string) => OwnershipLabels = internal.ownershipLabels

/** Builds the runtime on a connection, creating the apps network if it is missing. */
export const make: (
  options?: DockerRuntimeOptions
) => Effect.Effect<DockerRuntime["Type"], DockerClient.DockerError, DockerClient.DockerClient> = internal.make

/** The runtime on a connection given by the caller (one `DockerClient` shared with a builder). */
export const layerFromClient = (
  options: DockerRuntimeOptions = {}
): Layer.Layer<DockerRuntime | RuntimeDriver, DockerClient.DockerError, DockerClient.DockerClient> =>
  Layer.effectContext(
    Effect.map(make(options), (runtime) =>
      Context.make(DockerRuntime, runtime).pipe(Context.add(RuntimeDriver, runtime))
    )
  )

/** The runtime with its own connection (`options.docker`), which it also provides. */
export const layer = (
  options: DockerRuntimeOptions = {}
): Layer.Layer<DockerRuntime | RuntimeDriver | DockerClient.DockerClient, DockerClient.DockerError> =>
  Layer.provideMerge(layerFromClient(options), DockerClient.layer(options.docker))
