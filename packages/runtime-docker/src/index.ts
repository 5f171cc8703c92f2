/** @paas/runtime-docker: the Docker RuntimeDriver and the Traefik routers (labels, file provider). */
export * as DockerClient from "./DockerClient.js"
export * as DockerRuntime from "./DockerRuntime.js"
export * as TraefikFile from "./TraefikFile.js"
export * as TraefikLabels from "./TraefikLabels.js"
