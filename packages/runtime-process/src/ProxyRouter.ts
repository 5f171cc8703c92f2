/**
 * ProxyRouter: the Router as an HTTP reverse proxy inside the server. It listens on one port
 * (`PAAS_ROUTER_PORT` in the reference server, 8000 by default, on 127.0.0.1), routes by the Host
 * header (port stripped, case-insensitive) to the app's address over keep-alive connections,
 * forwards WebSocket upgrades, sets X-Forwarded-For/-Proto/-Host, answers 404 with a page naming
 * the host when no app is routed there and 502 when the app does not answer. It counts requests in
 * flight per app address, so an instance can be drained before it stops.
 */
import { RouterError } from "@paas/core/Errors"
import type { ProjectId } from "@paas/core/Project"
import { type Route, Router } from "@paas/core/Router"
import type { Address } from "@paas/core/RuntimeDriver"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { HttpProxy } from "./internal/proxy.js"

/** Where the proxy listens and how it pools connections to apps. */
export interface ProxyRouterOptions {
  /** The interface to listen on (default 127.0.0.1). */
  readonly host?: string | undefined
  /** The port to listen on (default 8000; 0 picks a free one, see `ProxyRouter.port`). */
  readonly port?: number | undefined
  /**
   * Idle pooled connections to an app are closed after this long (default 4 s). Keep it below the
   * apps' own keep-alive timeout (node's default is 5 s), so the proxy closes first.
   */
  readonly upstreamIdleTimeout?: Duration.DurationInput | undefined
  /** Idle pooled connections kept per app (default 256). */
  readonly maxIdlePerUpstream?: number | undefined
}

/** The proxy router, with what it offers beyond the core Router. */
export class ProxyRouter extends Context.Tag("@paas/runtime-process/ProxyRouter")<
  ProxyRouter,
  Router["Type"] & {
    /** The interface it listens on. */
    readonly host: string
    /** The port it listens on (the real one when 0 was asked for). */
    readonly port: number
    /** The route serving a host name, as a request would find it. */
    readonly lookup: (host: string) => Effect.Effect<Route | undefined>
    /** Requests forwarded to `target` and not finished yet. */
    readonly inFlight: (target: Address) => Effect.Effect<number>
    /**
     * Waits until no request is in flight to `target`; true if so, false if `timeout` passed
     * first. Once no route uses the target any more, its pooled connections are closed as well.
     */
    readonly awaitIdle: (target: Address, timeout: Duration.DurationInput) => Effect.Effect<boolean>
  }
>() {}

/** Starts the proxy listening; closing the scope stops it and cuts its connections. */
export const make = (
  options: ProxyRouterOptions = {}
): Effect.Effect<ProxyRouter["Type"], RouterError, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const proxy = new HttpProxy({
      upstreamIdleMs: Duration.toMillis(options.upstreamIdleTimeout ?? "4 seconds"),
      maxIdlePerUpstream: options.maxIdlePerUpstream ?? 256
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number, RouterError>((resume) => {
        const onError = (error: NodeJS.ErrnoException) =>
          resume(
            Effect.fail(
              new RouterError({
                message: `the router cannot listen on ${host}:${options.port ?? 8000}: ${error.code ?? error.message}`,
                cause: error
              })
            )
          )
        proxy.server.once("error", onError)
        proxy.server.listen(options.port ?? 8000, host, () => {
          proxy.server.off("error", onError)
          const address = proxy.server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      }),
      () =>
        Effect.async<void>((resume) => proxy.close(() => resume(Effect.void))).pipe(
          Effect.timeoutOption("5 seconds"),
          Effect.asVoid
        )
    )
    // After listening, a server error (EMFILE on accept, say) must not take the process down.
    proxy.server.on("error", () => {})

    const awaitIdle = (target: Address, timeout: Duration.DurationInput) =>
      Effect.async<boolean>((resume) => {
        const cancel = proxy.onIdle(target, () => resume(Effect.succeed(true)))
        return Effect.sync(cancel)
      }).pipe(
        Effect.timeoutTo({ duration: timeout, onSuccess: (idle) => idle, onTimeout: () => false }),
        // Requests are real, so the timeout is measured on the live clock even under a test clock.
        Effect.withClock(Clock.make())
      )

    return {
      host,
      port,
      set: (route: Route) =>
        Effect.suspend(() => {
          const problem = proxy.set(route)
          return problem === undefined ? Effect.void : Effect.fail(new RouterError({ message: problem }))
        }),
      remove: (appId: ProjectId) => Effect.sync(() => proxy.remove(appId)),
      list: (appId?: ProjectId) => Effect.sync(() => proxy.list(appId)),
      lookup: (name: string) => Effect.sync(() => proxy.lookup(name)),
      inFlight: (target: Address) => Effect.sync(() => proxy.inFlight(target)),
      awaitIdle
    }
  })

/** Provides `ProxyRouter` and the core `Router`. */
export const layer = (options: ProxyRouterOptions = {}): Layer.Layer<ProxyRouter | Router, RouterError> =>
  Layer.scopedContext(
    Effect.map(make(options), (router) => Context.make(ProxyRouter, router).pipe(Context.add(Router, router)))
  )
