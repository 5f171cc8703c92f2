/**
 * Router: which host names reach which app instance.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { RouterError } from "./Errors.js"
import type { ProjectId } from "./Project.js"
import type { Address } from "./RuntimeDriver.js"

/** A route: requests for any of `hosts` go to the instance at `target`. */
export interface Route {
  readonly appId: ProjectId
  readonly hosts: ReadonlyArray<string>
  readonly instanceId: string
  readonly target: Address
}

/** Sets, removes and lists routes; one route per app. */
export class Router extends Context.Tag("@paas/core/Router")<
  Router,
  {
    /** Creates or replaces the app's route; the switch is atomic for new requests. */
    readonly set: (route: Route) => Effect.Effect<void, RouterError>
    /** Removes the app's route; removing a missing route succeeds. */
    readonly remove: (appId: ProjectId) => Effect.Effect<void, RouterError>
    /** Every route, or the one of `appId`. */
    readonly list: (appId?: ProjectId) => Effect.Effect<ReadonlyArray<Route>, RouterError>
  }
>() {}
