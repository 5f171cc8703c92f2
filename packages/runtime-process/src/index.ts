/** @paas/runtime-process: apps as supervised child processes, and the in-process HTTP router. */
/** The process runtime and the proxy router wired together. */
export * as ProcessPlatform from "./ProcessPlatform.js"
/** Apps as supervised child processes: the embedded RuntimeDriver. */
export * as ProcessRuntime from "./ProcessRuntime.js"
/** The in-process HTTP reverse proxy: the embedded Router. */
export * as ProxyRouter from "./ProxyRouter.js"
