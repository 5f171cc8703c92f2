/**
 * ServerConfig: the reference server's configuration, read in one place from environment
 * variables (DESIGN.md's table; the names and defaults are a contract). With nothing set, the
 * server runs on embedded defaults: PGlite and everything else in `./.paas`, apps as processes
 * behind the in-process router, mails in the outbox.
 */
import * as path from "node:path"
import * as SessionSecret from "@paas/auth/SessionSecret"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { isPostgresUrl } from "./internal/urls.js"

/** Which runtime runs apps. */
export type RuntimeKind = "process" | "docker"
/** What routes requests to apps. */
export type RouterKind = "proxy" | "traefik" | "traefik-file"

/** The whole configuration, decoded. */
export interface ServerConfig {
  /** Absolute path of `PAAS_DATA_DIR`. */
  readonly dataDir: string
  readonly httpHost: string
  readonly httpPort: number
  readonly sshPort: number
  readonly routerHost: string
  readonly routerPort: number
  readonly baseDomain: string
  readonly databaseUrl: Option.Option<Redacted.Redacted>
  readonly runtime: RuntimeKind
  readonly router: RouterKind
  readonly smtpUrl: Option.Option<Redacted.Redacted>
  readonly smtpFrom: string
  readonly publicUrl: string
  readonly jwtSecret: Option.Option<Redacted.Redacted>
  readonly adminEmail: Option.Option<string>
  readonly devMode: boolean
  readonly trustProxy: boolean
  readonly buildConcurrency: number
  readonly buildTimeout: Duration.Duration
  readonly maxPushBytes: number
  /** Traefik: the entrypoint app routers use, and an optional certificate resolver. */
  readonly traefikEntrypoint: string
  readonly traefikCertResolver: Option.Option<string>
  /** Traefik's file provider directory (`PAAS_ROUTER=traefik-file`). */
  readonly traefikDir: string
  /** Docker: the network apps are attached to, and the one they must never reach. */
  readonly dockerAppsNetwork: string
  readonly dockerPlatformNetwork: string
  /** Names this installation's containers, so that several can share one engine. */
  readonly dockerInstallationId: string
  /** Base images of the Dockerfiles generated for apps without one (an installation's registry, say). */
  readonly builderNodeImage: string
  readonly builderStaticImage: string
  /** The scheme and port of app URLs as told to users: from the router in front of the apps. */
  readonly appUrlScheme: "http" | "https"
  readonly appUrlPort: number | null
}

// Checks a value and, when it is wrong, names the variable (Config.validate loses it under option).
const check =
  <A>(name: string, message: string, ok: (a: A) => boolean) =>
  (config: Config.Config<A>): Config.Config<A> =>
    Config.mapOrFail(config, (a) =>
      ok(a) ? Either.right(a) : Either.left(ConfigError.InvalidData([name], message))
    )

const port = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.withDefault(fallback),
    check(name, "must be a port number from 1 to 65535", (p) => p >= 1 && p <= 65535)
  )

const nonEmpty = (name: string) =>
  Config.option(Config.string(name)).pipe(Config.map(Option.filter((s) => s.trim() !== "")))

const secret = (name: string) =>
  Config.option(Config.redacted(name)).pipe(Config.map(Option.filter((s) => Redacted.value(s).trim() !== "")))

const hostName =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/

const sizeUnits: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

/** `1G`, `500M`, `64k` or a number of bytes. */
const size = (name: string, fallback: number) =>
  Config.string(name).pipe(
    Config.mapOrFail((text) => {
      const match = /^\s*(\d+)\s*([kmg]?)i?b?\s*$/i.exec(text)
      const bytes = match === null ? Number.NaN : Number(match[1]) * sizeUnits[match[2]!.toLowerCase()]!
      return Number.isSafeInteger(bytes) && bytes > 0
        ? Either.right(bytes)
        : Either.left(ConfigError.InvalidData([], "must be a size such as 1G, 500M or a number of bytes"))
    }),
    Config.withDefault(fallback)
  )

const duration = (name: string, fallback: Duration.Duration) =>
  Config.string(name).pipe(
    Config.mapOrFail((text) => {
      const match = /^\s*(\d+)\s*(ms|s|m|h)?\s*$/.exec(text)
      if (match === null)
        return Either.left(ConfigError.InvalidData([], "must be a duration such as 90s, 15m or 1h"))
      const n = Number(match[1])
      const unit = match[2] ?? "s"
      const ms = unit === "ms" ? n : unit === "s" ? n * 1000 : unit === "m" ? n * 60_000 : n * 3_600_000
      return ms > 0
        ? Either.right(Duration.millis(ms))
        : Either.left(ConfigError.InvalidData([], "must be positive"))
    }),
    Config.withDefault(fallback)
  )

const isSmtpUrl = (url: Redacted.Redacted) => {
  try {
    const { protocol, hostname } = new URL(Redacted.value(url))
    return (protocol === "smtp:" || protocol === "smtps:") && hostname !== ""
  } catch {
    return false
  }
}

const isHttpUrl = (url: string) => {
  try {
    const { protocol } = new URL(url)
    return protocol === "http:" || protocol === "https:"
  } catch {
    return false
  }
}

/** The configuration as an Effect `Config`, from environment variables. */
export const config: Config.Config<ServerConfig> = Config.all({
  dataDir: Config.string("PAAS_DATA_DIR").pipe(
    Config.withDefault("./.paas"),
    check("PAAS_DATA_DIR", "must not be empty", (s) => s.trim() !== "")
  ),
  httpHost: Config.string("PAAS_HTTP_HOST").pipe(Config.withDefault("127.0.0.1")),
  httpPort: port("PAAS_HTTP_PORT", 3000),
  sshPort: port("PAAS_SSH_PORT", 2222),
  routerHost: nonEmpty("PAAS_ROUTER_HOST"),
  routerPort: port("PAAS_ROUTER_PORT", 8000),
  baseDomain: Config.string("PAAS_BASE_DOMAIN").pipe(
    Config.withDefault("localhost"),
    Config.map((s) => s.trim().toLowerCase()),
    check("PAAS_BASE_DOMAIN", "must be a domain name such as example.com", (s) => hostName.test(s))
  ),
  databaseUrl: secret("DATABASE_URL").pipe(
    check(
      "DATABASE_URL",
      "must be a postgres:// or postgresql:// URL",
      Option.match({ onNone: () => true, onSome: isPostgresUrl })
    )
  ),
  runtime: Config.literal("process", "docker")("PAAS_RUNTIME").pipe(Config.withDefault("process" as const)),
  router: Config.literal(
    "proxy",
    "traefik",
    "traefik-file"
  )("PAAS_ROUTER").pipe(Config.withDefault("proxy" as const)),
  smtpUrl: secret("PAAS_SMTP_URL").pipe(
    check(
      "PAAS_SMTP_URL",
      "must be an smtp:// or smtps:// URL with a host",
      Option.match({ onNone: () => true, onSome: isSmtpUrl })
    )
  ),
  smtpFrom: nonEmpty("PAAS_SMTP_FROM"),
  publicUrl: nonEmpty("PAAS_PUBLIC_URL").pipe(
    check(
      "PAAS_PUBLIC_URL",
      "must be an http:// or https:// URL",
      Option.match({ onNone: () => true, onSome: isHttpUrl })
    )
  ),
  jwtSecret: secret("PAAS_JWT_SECRET").pipe(
    check(
      "PAAS_JWT_SECRET",
      `must be at least ${SessionSecret.minBytes} bytes long`,
      Option.match({ onNone: () => true, onSome: SessionSecret.isStrongEnough })
    )
  ),
  adminEmail: nonEmpty("PAAS_ADMIN_EMAIL"),
  devMode: Config.boolean("PAAS_DEV_MODE").pipe(Config.withDefault(false)),
  trustProxy: Config.boolean("PAAS_TRUST_PROXY").pipe(Config.withDefault(false)),
  buildConcurrency: Config.integer("PAAS_BUILD_CONCURRENCY").pipe(
    Config.withDefault(1),
    check("PAAS_BUILD_CONCURRENCY", "must be from 1 to 64", (n) => n >= 1 && n <= 64)
  ),
  buildTimeout: duration("PAAS_BUILD_TIMEOUT", Duration.minutes(15)),
  maxPushBytes: size("PAAS_MAX_PUSH_SIZE", 1024 ** 3),
  traefikEntrypoint: nonEmpty("PAAS_TRAEFIK_ENTRYPOINT"),
  traefikCertResolver: nonEmpty("PAAS_TRAEFIK_CERT_RESOLVER"),
  traefikDir: nonEmpty("PAAS_TRAEFIK_DIR"),
  dockerAppsNetwork: Config.string("PAAS_DOCKER_APPS_NETWORK").pipe(Config.withDefault("paas-apps")),
  dockerPlatformNetwork: Config.string("PAAS_DOCKER_PLATFORM_NETWORK").pipe(
    Config.withDefault("paas-platform")
  ),
  dockerInstallationId: Config.string("PAAS_DOCKER_INSTALLATION_ID").pipe(
    Config.withDefault("paas"),
    check("PAAS_DOCKER_INSTALLATION_ID", "must be letters, digits, '.', '_' or '-'", (s) =>
      /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(s)
    )
  ),
  builderNodeImage: Config.string("PAAS_BUILDER_NODE_IMAGE").pipe(Config.withDefault("node:20-slim")),
  builderStaticImage: Config.string("PAAS_BUILDER_STATIC_IMAGE").pipe(Config.withDefault("busybox:1.36"))
}).pipe(
  check(
    "PAAS_ROUTER",
    "traefik routes containers by their labels and needs PAAS_RUNTIME=docker",
    (c) => !(c.router === "traefik" && c.runtime === "process")
  ),
  Config.map((c): ServerConfig => {
    const dataDir = path.resolve(c.dataDir)
    const urlHost = c.httpHost === "0.0.0.0" || c.httpHost === "::" ? "localhost" : c.httpHost
    const https = Option.isSome(c.traefikCertResolver)
    const behindTraefik = c.router !== "proxy"
    return {
      ...c,
      dataDir,
      routerHost: Option.getOrElse(c.routerHost, () => c.httpHost),
      smtpFrom: Option.getOrElse(c.smtpFrom, () => `PaaS <paas@${c.baseDomain}>`),
      publicUrl: Option.getOrElse(c.publicUrl, () => `http://${urlHost}:${c.httpPort}`).replace(/\/+$/, ""),
      traefikEntrypoint: Option.getOrElse(c.traefikEntrypoint, () => (https ? "websecure" : "web")),
      traefikDir: Option.match(c.traefikDir, {
        onNone: () => path.join(dataDir, "traefik"),
        onSome: (dir) => path.resolve(dir)
      }),
      appUrlScheme: behindTraefik && https ? "https" : "http",
      appUrlPort: behindTraefik ? null : c.routerPort
    }
  })
)

/** Reads the configuration from the environment. */
export const load: Effect.Effect<ServerConfig, ConfigError.ConfigError> = config

/** One line naming the variable and what is wrong with it, for the person starting the server. */
export const describeError = (error: ConfigError.ConfigError): string => {
  const first = (e: ConfigError.ConfigError): { path: ReadonlyArray<string>; message: string } => {
    switch (e._op) {
      case "And":
      case "Or":
        return first(e.left)
      default:
        return { path: e.path, message: e.message }
    }
  }
  const { path: at, message } = first(error)
  const variable = at.length > 0 ? at.join("_") : "configuration"
  // Effect's own messages sometimes carry the variable name again; say it once.
  return `${variable}: ${message.replace(/^Expected (.*?) but received/, "expected $1, got")}`
}
