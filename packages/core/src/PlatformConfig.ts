/**
 * PlatformConfig: the settings the use cases and the reconciler need, independent of where they
 * come from (the reference server reads them from the environment).
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { ProjectId } from "./Project.js"

/** Settings of the use cases and the reconciler. */
export interface PlatformSettings {
  /** Apps answer at `<project-id>.user-app.<baseDomain>`. */
  readonly baseDomain: string
  /** How app URLs are written in push output: scheme and port (null: the scheme's default). */
  readonly appUrlScheme: "http" | "https"
  readonly appUrlPort: number | null
  /** The public address of the API, for links in emails (`<publicUrl>/auth/confirm/<token>`). */
  readonly publicUrl: string
  /** The account registered with this email becomes an admin. */
  readonly adminEmail: Option.Option<string>
  /** How long a session's account is trusted to exist before the store is asked again. */
  readonly accountRecheck: Duration.Duration
  readonly emailTokenTtl: Duration.Duration
  readonly buildTimeout: Duration.Duration
  /** How many builds run at once; more wait in the queue. */
  readonly buildConcurrency: number
  /** How many of a project's latest releases keep their image, for rollback; older ones are pruned. */
  readonly releasesKept: number
  /** How often the reconciler runs a full pass without being asked. */
  readonly reconcileInterval: Duration.Duration
  /** How many apps one reconcile pass converges at once. */
  readonly reconcileConcurrency: number
}

/** The platform's settings. */
export class PlatformConfig extends Context.Tag("@paas/core/PlatformConfig")<
  PlatformConfig,
  PlatformSettings
>() {}

/** Settings for one machine on `localhost`, as the embedded default and tests use them. */
export const defaults: PlatformSettings = {
  baseDomain: "localhost",
  appUrlScheme: "http",
  appUrlPort: 8000,
  publicUrl: "http://127.0.0.1:3000",
  adminEmail: Option.none(),
  accountRecheck: Duration.seconds(5),
  emailTokenTtl: Duration.days(2),
  buildTimeout: Duration.minutes(15),
  buildConcurrency: 1,
  releasesKept: 5,
  reconcileInterval: Duration.seconds(10),
  reconcileConcurrency: 8
}

/** The settings as a layer, `overrides` applied over the defaults. */
export const layer = (overrides: Partial<PlatformSettings> = {}): Layer.Layer<PlatformConfig> =>
  Layer.succeed(PlatformConfig, { ...defaults, ...overrides })

/** The host names of a project's app. */
export const appHosts = (
  settings: PlatformSettings,
  projectId: ProjectId,
  domains: ReadonlyArray<string> = []
): ReadonlyArray<string> => [`${projectId}.user-app.${settings.baseDomain}`, ...domains]

/**
 * Why `domain` cannot be a custom domain on this installation, if it cannot: the platform's own
 * app names and the API's host belong to the platform.
 */
export const reservedDomain = (settings: PlatformSettings, domain: string): string | undefined => {
  const apps = `user-app.${settings.baseDomain}`
  if (domain === apps || domain.endsWith(`.${apps}`))
    return `${domain} is under ${apps}, where the platform names apps`
  if (URL.canParse(settings.publicUrl) && new URL(settings.publicUrl).hostname === domain)
    return `${domain} is the platform's own address`
  return undefined
}

/** The URL a person opens to reach a project's app. */
export const appUrl = (settings: PlatformSettings, projectId: ProjectId): string => {
  const port = settings.appUrlPort
  const defaultPort = settings.appUrlScheme === "https" ? 443 : 80
  const suffix = port === null || port === defaultPort ? "" : `:${port}`
  return `${settings.appUrlScheme}://${appHosts(settings, projectId)[0]}${suffix}`
}
