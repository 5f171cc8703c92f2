/**
 * ProcessPlatform: the embedded runtime and router wired together in one layer: apps run as child
 * processes, the in-process proxy routes to them, and an instance being replaced is drained through
 * the proxy (its in-flight requests finish) before its process is stopped.
 */
import type { RouterError, RuntimeError } from "@paas/core/Errors"
import type { Router } from "@paas/core/Router"
import type { RuntimeDriver } from "@paas/core/RuntimeDriver"
import * as Layer from "effect/Layer"
import * as ProcessRuntime from "./ProcessRuntime.js"
import * as ProxyRouter from "./ProxyRouter.js"

/** The runtime's options, and the router's under `router`. */
export interface ProcessPlatformOptions extends Omit<ProcessRuntime.ProcessRuntimeOptions, "drain"> {
  readonly router?: ProxyRouter.ProxyRouterOptions | undefined
}

/**
 * Provides the core `RuntimeDriver` and `Router` with their concrete tags. The router starts first
 * and stops last, so apps are stopped while it still runs.
 */
export const layer = (
  options: ProcessPlatformOptions
): Layer.Layer<
  ProcessRuntime.ProcessRuntime | RuntimeDriver | ProxyRouter.ProxyRouter | Router,
  RuntimeError | RouterError
> => {
  const { router, ...runtime } = options
  return ProcessRuntime.layerWithRouter(runtime).pipe(Layer.provideMerge(ProxyRouter.layer(router)))
}
