/**
 * Server: the reference PaaS composed from the building blocks, as one layer. Persistence (PGlite
 * or PostgreSQL), accounts and mail, git repositories and the SSH git server, the builder, the
 * runtime and router chosen by the configuration, the reconciler loop, and the HTTP API.
 *
 * Closing the layer's scope shuts down in reverse order: the HTTP and SSH listeners first (in-flight
 * requests finish), then the reconciler, the runtime and router, and the database last.
 */
import { createServer } from "node:http"
import * as path from "node:path"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as OutboxMailer from "@paas/auth/OutboxMailer"
import * as PasswordAuth from "@paas/auth/PasswordAuth"
import * as SessionSecret from "@paas/auth/SessionSecret"
import * as SmtpMailer from "@paas/auth/SmtpMailer"
import * as DockerBuilder from "@paas/builder/DockerBuilder"
import * as LocalBuilder from "@paas/builder/LocalBuilder"
import type { AuthProvider } from "@paas/core/AuthProvider"
import type { RouterError, RuntimeError } from "@paas/core/Errors"
import type { ImageBuilder } from "@paas/core/ImageBuilder"
import type { Mailer } from "@paas/core/Mailer"
import * as Platform from "@paas/core/Platform"
import * as PlatformConfig from "@paas/core/PlatformConfig"
import * as RateLimiter from "@paas/core/RateLimiter"
import * as Reconciler from "@paas/core/Reconciler"
import type { Router } from "@paas/core/Router"
import type { RuntimeDriver } from "@paas/core/RuntimeDriver"
import * as GitRepoStore from "@paas/git/GitRepoStore"
import * as GitSshServer from "@paas/git/GitSshServer"
import type { DockerError } from "@paas/runtime-docker/DockerClient"
import * as DockerRuntime from "@paas/runtime-docker/DockerRuntime"
import * as TraefikFile from "@paas/runtime-docker/TraefikFile"
import * as TraefikLabels from "@paas/runtime-docker/TraefikLabels"
import * as ProcessPlatform from "@paas/runtime-process/ProcessPlatform"
import * as ProcessRuntime from "@paas/runtime-process/ProcessRuntime"
import * as ProxyRouter from "@paas/runtime-process/ProxyRouter"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Database from "./Database.js"
import * as Http from "./Http.js"
import type { ServerConfig } from "./ServerConfig.js"
import * as SqlPersistence from "./SqlPersistence.js"

/** The server could not start; `message` says which part and why, in one line. */
export class ServerStartError extends Schema.TaggedError<ServerStartError>()("ServerStartError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** Where the running server answers. */
export interface ServerAddresses {
  readonly api: string
  readonly git: string
  readonly apps: string
  readonly router: string | null
}

/** The running server's addresses. */
export class ServerInfo extends Context.Tag("@paas/server/ServerInfo")<ServerInfo, ServerAddresses>() {}

const startError =
  (what: string) =>
  (error: { readonly message: string }): ServerStartError =>
    new ServerStartError({ message: `${what}: ${error.message}`, cause: error })

const persistence = (config: ServerConfig) =>
  SqlPersistence.layer.pipe(
    Layer.provide(Database.layer({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })),
    Layer.mapError(startError("database"))
  )

const auth = (config: ServerConfig): Layer.Layer<AuthProvider, ServerStartError> =>
  Layer.unwrapEffect(
    Effect.map(
      Option.match(config.jwtSecret, {
        onSome: Effect.succeed,
        onNone: () => SessionSecret.loadOrCreate(config.dataDir)
      }),
      (secret) => PasswordAuth.layer({ secret })
    )
  ).pipe(
    // A ConfigError (the secret file) names PAAS_JWT_SECRET in its text; a ValidationError in its message.
    Layer.mapError((e) => startError("sessions")({ message: "message" in e ? e.message : String(e) }))
  )

const mailer = (config: ServerConfig): Layer.Layer<Mailer, ServerStartError> =>
  Option.match(config.smtpUrl, {
    onSome: (url) => SmtpMailer.layer({ url, from: config.smtpFrom }),
    onNone: () =>
      OutboxMailer.layer({ directory: path.join(config.dataDir, "outbox"), from: config.smtpFrom })
  }).pipe(Layer.mapError(startError("mail")))

// The builder, runtime and router the configuration asks for.
const drivers = (
  config: ServerConfig
): Layer.Layer<ImageBuilder | RuntimeDriver | Router, ServerStartError> => {
  const router = { host: config.routerHost, port: config.routerPort }
  const traefikFile = TraefikFile.layer({
    directory: config.traefikDir,
    entrypoint: config.traefikEntrypoint,
    ...Option.match(config.traefikCertResolver, {
      onNone: () => ({}),
      onSome: (certResolver) => ({ certResolver })
    })
  })
  if (config.runtime === "process") {
    const builder = LocalBuilder.layer({ root: path.join(config.dataDir, "builds") }).pipe(
      Layer.mapError(startError("builder"))
    )
    const runtime: Layer.Layer<RuntimeDriver | Router, RuntimeError | RouterError> =
      config.router === "traefik-file"
        ? Layer.merge(ProcessRuntime.layer({ root: path.join(config.dataDir, "apps") }), traefikFile)
        : ProcessPlatform.layer({ root: path.join(config.dataDir, "apps"), router })
    return Layer.merge(builder, runtime.pipe(Layer.mapError(startError("runtime"))))
  }
  const dockerOptions: DockerRuntime.DockerRuntimeOptions = {
    installationId: config.dockerInstallationId,
    appsNetwork: config.dockerAppsNetwork,
    platformNetwork: config.dockerPlatformNetwork,
    traefik: {
      entrypoint: config.traefikEntrypoint,
      ...Option.match(config.traefikCertResolver, {
        onNone: () => ({}),
        onSome: (certResolver) => ({ certResolver })
      })
    }
  }
  // With the in-process router in front, a replaced container is stopped as soon as the router
  // has no request in flight to it; behind Traefik, after a fixed grace.
  const containers: Layer.Layer<RuntimeDriver | Router, RuntimeError | RouterError | DockerError> =
    config.router === "proxy"
      ? Layer.unwrapEffect(
          Effect.map(ProxyRouter.ProxyRouter, (proxy) =>
            DockerRuntime.layer({
              ...dockerOptions,
              drain: (address, timeout) => Effect.asVoid(proxy.awaitIdle(address, timeout))
            })
          )
        ).pipe(Layer.provideMerge(ProxyRouter.layer(router)))
      : Layer.provideMerge(
          config.router === "traefik"
            ? (TraefikLabels.layer as Layer.Layer<Router, never, DockerRuntime.DockerRuntime>)
            : (traefikFile as Layer.Layer<Router, RouterError>),
          DockerRuntime.layer(dockerOptions)
        )
  return Layer.merge(containers, dockerBuilder(config)).pipe(Layer.mapError(startError("runtime")))
}

const dockerBuilder = (config: ServerConfig): Layer.Layer<ImageBuilder, ServerStartError> =>
  DockerBuilder.layer({
    workDir: path.join(config.dataDir, "docker-builds"),
    baseImages: {
      node: config.builderNodeImage,
      procfile: config.builderNodeImage,
      command: config.builderNodeImage,
      static: config.builderStaticImage
    }
  }).pipe(Layer.mapError(startError("builder")))

/** The whole server. */
export const layer = (config: ServerConfig): Layer.Layer<ServerInfo, ServerStartError> => {
  if (config.runtime === "process" && config.router === "traefik")
    return Layer.fail(
      new ServerStartError({
        message: "PAAS_ROUTER: traefik routes containers by their labels and needs PAAS_RUNTIME=docker"
      })
    )
  const settings = PlatformConfig.layer({
    baseDomain: config.baseDomain,
    appUrlScheme: config.appUrlScheme,
    appUrlPort: config.appUrlPort,
    publicUrl: config.publicUrl,
    adminEmail: config.adminEmail,
    buildTimeout: config.buildTimeout,
    buildConcurrency: config.buildConcurrency
  })
  const repos = GitRepoStore.layer({ root: path.join(config.dataDir, "repos") }).pipe(
    Layer.mapError(startError("repositories"))
  )
  const contracts = Layer.mergeAll(
    settings,
    RateLimiter.layer,
    persistence(config),
    auth(config),
    mailer(config),
    repos,
    drivers(config)
  )
  const platform = Platform.layer.pipe(Layer.provideMerge(Reconciler.layer), Layer.provideMerge(contracts))
  const ssh = GitSshServer.layer({
    host: config.httpHost,
    port: config.sshPort,
    dataDir: config.dataDir,
    maxPushBytes: config.maxPushBytes
  }).pipe(Layer.mapError(startError(`git server (PAAS_SSH_PORT ${config.sshPort})`)))
  const http = Http.layer({
    devMode: config.devMode,
    trustProxy: config.trustProxy,
    sessionTtl: PasswordAuth.defaultSessionTtl
  }).pipe(
    Layer.provide(
      NodeHttpServer.layer(createServer, { host: config.httpHost, port: config.httpPort }).pipe(
        Layer.mapError(startError(`API (PAAS_HTTP_PORT ${config.httpPort})`))
      )
    )
  )
  const info = Layer.effect(
    ServerInfo,
    Effect.gen(function* () {
      const git = yield* GitSshServer.GitSshServer
      const appHost = `<project-id>.user-app.${config.baseDomain}`
      const appPort = config.appUrlPort === null ? "" : `:${config.appUrlPort}`
      return {
        api: `http://${config.httpHost}:${config.httpPort}`,
        git: `ssh://git@${git.host}:${git.port}/<project-id>`,
        apps: `${config.appUrlScheme}://${appHost}${appPort}`,
        router: config.router === "proxy" ? `${config.routerHost}:${config.routerPort}` : null
      }
    })
  )
  // Built bottom-up and released top-down: listeners close before the platform and the database.
  const services = ssh.pipe(Layer.provideMerge(platform))
  return Layer.mergeAll(http, info, Reconciler.layerLoop).pipe(Layer.provide(services))
}
