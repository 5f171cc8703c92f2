/**
 * Router in memory: a table of routes, with a way for a test to make the next change fail.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { RouterError } from "../Errors.js"
import type { ProjectId } from "../Project.js"
import { type Route, Router } from "../Router.js"

/** Test controls of the in-memory router. */
export class Routes extends Context.Tag("@paas/core/testing/Routes")<
  Routes,
  {
    /** Makes the next `set` or `remove` fail. */
    readonly failNext: (message: string) => Effect.Effect<void>
    /** The route serving a host name, as a proxy would look it up. */
    readonly lookup: (host: string) => Effect.Effect<Route | undefined>
    /** How many changes (`set` and `remove` calls that succeeded) were made. */
    readonly changes: Effect.Effect<number>
  }
>() {}

/** An empty in-memory routing table with its test controls. */
export const layer: Layer.Layer<Router | Routes> = Layer.effectContext(
  Effect.sync(() => {
    const routes = new Map<ProjectId, Route>()
    let failure: string | undefined
    let changes = 0
    const guarded = (f: () => void) =>
      Effect.suspend(() => {
        if (failure !== undefined) {
          const message = failure
          failure = undefined
          return Effect.fail(new RouterError({ message }))
        }
        f()
        changes++
        return Effect.void
      })
    const router = Router.of({
      set: (route) => guarded(() => routes.set(route.appId, route)),
      remove: (appId) => guarded(() => routes.delete(appId)),
      list: (appId) =>
        Effect.sync(() => {
          if (appId === undefined) return [...routes.values()]
          const route = routes.get(appId)
          return route ? [route] : []
        })
    })
    const controls = Routes.of({
      failNext: (message) =>
        Effect.sync(() => {
          failure = message
        }),
      lookup: (host) =>
        Effect.sync(() => [...routes.values()].find((r) => r.hosts.includes(host.toLowerCase()))),
      changes: Effect.sync(() => changes)
    })
    return Context.make(Router, router).pipe(Context.add(Routes, controls))
  })
)
