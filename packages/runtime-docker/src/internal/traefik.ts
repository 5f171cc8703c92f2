// What Traefik v3 needs to know about an app, shared by the label router and the file router.
import type { ProjectId } from "@paas/core/Project"

/** The Traefik settings an installation routes with. */
export interface TraefikSettings {
  /** The entrypoint the routers listen on ("web" in Traefik's own examples). */
  readonly entrypoint: string
  /** The ACME certificate resolver; none means plain HTTP routers. */
  readonly certResolver: string | undefined
  /** Router and service names are `<namePrefix>-<project id>`. */
  readonly namePrefix: string
}

// Host names as DNS allows them. Anything else (a backtick above all) could change the meaning of
// the rule Traefik parses, so it is refused rather than escaped.
const HOST = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i

/** Whether `host` may appear in a Traefik rule. */
export const isValidHost = (host: string): boolean => HOST.test(host)

/** The first host that may not appear in a rule, if any. */
export const invalidHost = (hosts: ReadonlyArray<string>): string | undefined =>
  hosts.find((h) => !isValidHost(h))

/** One router and one service per app, both named after the project, whatever the release. */
export const routerName = (settings: TraefikSettings, appId: ProjectId): string =>
  `${settings.namePrefix}-${appId}`

/** `Host(\`a\`) || Host(\`b\`)`: Traefik v3 takes one host per matcher. */
export const hostRule = (hosts: ReadonlyArray<string>): string =>
  hosts.map((h) => `Host(\`${h}\`)`).join(" || ")

/** The hosts of a rule written by `hostRule`, in order. */
export const hostsOfRule = (rule: string): ReadonlyArray<string> =>
  Array.from(rule.matchAll(/Host\(`([^`]*)`\)/g), (m) => m[1]!)

/** The labels Traefik's docker provider reads on an app container. */
export const containerLabels = (
  settings: TraefikSettings,
  options: {
    readonly appId: ProjectId
    readonly hosts: ReadonlyArray<string>
    readonly port: number
    readonly network: string
  }
): Record<string, string> => {
  const name = routerName(settings, options.appId)
  const router = `traefik.http.routers.${name}`
  const labels: Record<string, string> = {
    "traefik.enable": "true",
    [`${router}.rule`]: hostRule(options.hosts),
    [`${router}.entrypoints`]: settings.entrypoint,
    [`traefik.http.services.${name}.loadbalancer.server.port`]: String(options.port),
    "traefik.docker.network": options.network
  }
  if (settings.certResolver !== undefined) labels[`${router}.tls.certresolver`] = settings.certResolver
  return labels
}

/** The rule label of an app's router. */
export const ruleLabel = (settings: TraefikSettings, appId: ProjectId): string =>
  `traefik.http.routers.${routerName(settings, appId)}.rule`
