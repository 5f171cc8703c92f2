/**
 * TraefikLabels: the Router when Traefik's docker provider does the routing. The Docker runtime
 * puts Traefik's labels on every container it creates, and Traefik, watching the engine, routes
 * each app's hosts to its running containers. Labels are fixed when a container is created, so
 * `set` checks that the instance carries the route and records it, `list` reads the containers,
 * and a route disappears with the app's last container.
 */
import { RouterError } from "@paas/core/Errors"
import type { ProjectId } from "@paas/core/Project"
import { type Route, Router } from "@paas/core/Router"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type ContainerView, DockerRuntime } from "./DockerRuntime.js"
import * as traefik from "./internal/traefik.js"

/** Traefik's settings for an installation: entrypoint, certificate resolver, name prefix. */
export type TraefikSettings = traefik.TraefikSettings

/** The labels Traefik's docker provider reads on an app container (the runtime adds them itself). */
export const containerLabels: (
  settings: TraefikSettings,
  options: {
    readonly appId: ProjectId
    readonly hosts: ReadonlyArray<string>
    readonly port: number
    readonly network: string
  }
) => Record<string, string> = traefik.containerLabels

/** The name of an app's Traefik router and service: the same for every instance of the app. */
export const routerName: (settings: TraefikSettings, appId: ProjectId) => string = traefik.routerName

/** A Traefik v3 rule matching any of `hosts`. */
export const hostRule: (hosts: ReadonlyArray<string>) => string = traefik.hostRule

/** The label router. */
export class TraefikLabels extends Context.Tag("@paas/runtime-docker/TraefikLabels")<
  TraefikLabels,
  Router["Type"]
>() {}

const routerError = (message: string, cause?: unknown) =>
  new RouterError(cause === undefined ? { message } : { message, cause })

/** Builds the router over the Docker runtime's containers. */
export const make: Effect.Effect<Router["Type"], never, DockerRuntime> = Effect.gen(function* () {
  const runtime = yield* DockerRuntime
  const settings = runtime.settings.traefik
  // The instance each app was last switched to. Traefik itself serves every running container of
  // the app; this only decides which one `list` names while an old and a new one overlap.
  const recorded = new Map<ProjectId, string>()

  const views = (appId?: ProjectId) =>
    Effect.mapError(runtime.containers(appId), (e) => routerError(e.message, e.cause))

  const routeOf = (view: ContainerView): Route | undefined => {
    const rule = view.labels[traefik.ruleLabel(settings, view.instance.appId)]
    if (rule === undefined || view.instance.address === null) return undefined
    return {
      appId: view.instance.appId,
      hosts: traefik.hostsOfRule(rule),
      instanceId: view.instance.id,
      target: view.instance.address
    }
  }

  const set = (route: Route): Effect.Effect<void, RouterError> =>
    Effect.gen(function* () {
      const bad = traefik.invalidHost(route.hosts)
      if (bad !== undefined) return yield* routerError(`not a valid host name: ${JSON.stringify(bad)}`)
      const view = (yield* views(route.appId)).find((v) => v.instance.id === route.instanceId)
      if (view === undefined)
        return yield* routerError(`no container ${route.instanceId} of app ${route.appId} to route to`)
      const expected = traefik.hostRule(route.hosts)
      const actual = view.labels[traefik.ruleLabel(settings, route.appId)]
      if (actual !== expected)
        return yield* routerError(
          `container ${view.name} is labelled with the rule ${actual ?? "(none)"}, not ${expected}; ` +
            "Traefik labels are fixed when a container is created, so the app needs a new instance"
        )
      recorded.set(route.appId, route.instanceId)
    })

  const list = (appId?: ProjectId): Effect.Effect<ReadonlyArray<Route>, RouterError> =>
    Effect.map(views(appId), (all) => {
      const byApp = new Map<ProjectId, Array<ContainerView>>()
      for (const view of all) {
        if (view.instance.status !== "running") continue
        const group = byApp.get(view.instance.appId)
        if (group) group.push(view)
        else byApp.set(view.instance.appId, [view])
      }
      const routes: Array<Route> = []
      for (const [app, group] of byApp) {
        // The recorded instance while it runs, else the newest (the containers come oldest first).
        const chosen = group.find((v) => v.instance.id === recorded.get(app)) ?? group[group.length - 1]!
        const route = routeOf(chosen)
        if (route !== undefined) routes.push(route)
      }
      return routes
    })

  return Router.of({
    set,
    // Traefik stops routing when the containers go; there is nothing to unwrite.
    remove: (appId) => Effect.sync(() => void recorded.delete(appId)),
    list
  })
})

/** Provides both `TraefikLabels` and the core `Router`. */
export const layer: Layer.Layer<TraefikLabels | Router, never, DockerRuntime> = Layer.effectContext(
  Effect.map(make, (router) => Context.make(TraefikLabels, router).pipe(Context.add(Router, router)))
)
