/**
 * TraefikFile: the Router as Traefik's file provider reads it. One YAML file per app in a
 * directory Traefik watches (`providers.file.directory`), holding the app's router (its host rule)
 * and a service pointing at the routed instance's address. Files are replaced atomically (a
 * temporary file renamed over the old one), so Traefik never reads half a file.
 */
import { randomBytes } from "node:crypto"
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { RouterError } from "@paas/core/Errors"
import { ProjectId } from "@paas/core/Project"
import { type Route, Router } from "@paas/core/Router"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as YAML from "yaml"
import * as traefik from "./internal/traefik.js"

/** Where the files go and what their routers say. */
export interface TraefikFileOptions {
  /** The directory Traefik's file provider watches; created if missing. */
  readonly directory: string
  /** The entrypoint of the routers. Default "web". */
  readonly entrypoint?: string | undefined
  /** An ACME certificate resolver, for HTTPS routers. */
  readonly certResolver?: string | undefined
  /** Files, routers and services are named `<namePrefix>-<project id>`. Default "paas". */
  readonly namePrefix?: string | undefined
  /**
   * The host Traefik reaches instances at, when it is not the routes' own (instances publish on
   * 127.0.0.1; a Traefik in a container may need `host.docker.internal`).
   */
  readonly upstreamHost?: string | undefined
}

/** The file router. */
export class TraefikFile extends Context.Tag("@paas/runtime-docker/TraefikFile")<
  TraefikFile,
  Router["Type"] & {
    /** The absolute directory of the files. */
    readonly directory: string
    /** The file holding an app's route (whether or not it exists). */
    readonly fileOf: (appId: ProjectId) => string
  }
>() {}

const routerError = (message: string, cause?: unknown) =>
  new RouterError(cause === undefined ? { message } : { message, cause })

// The route as the platform gave it rides along in a comment, so `list` reads back exactly what
// `set` was told even when the service points elsewhere (`upstreamHost`).
const MARK = "paas-route: "

const StoredRoute = Schema.parseJson(
  Schema.Struct({
    appId: ProjectId,
    hosts: Schema.Array(Schema.String),
    instanceId: Schema.String,
    target: Schema.Struct({ host: Schema.String, port: Schema.Int })
  })
)
const encodeRoute = Schema.encodeSync(StoredRoute)
const decodeRoute = Schema.decodeUnknownOption(StoredRoute)

/** The settings a file is written with. */
export interface FileSettings extends traefik.TraefikSettings {
  readonly upstreamHost: string | undefined
}

const settingsOf = (options: Omit<TraefikFileOptions, "directory">): FileSettings => ({
  entrypoint: options.entrypoint ?? "web",
  certResolver: options.certResolver,
  namePrefix: options.namePrefix ?? "paas",
  upstreamHost: options.upstreamHost
})

/** The YAML of an app's route: Traefik's dynamic configuration for one router and one service. */
export const render = (route: Route, options: Omit<TraefikFileOptions, "directory"> = {}): string => {
  const settings = settingsOf(options)
  const name = traefik.routerName(settings, route.appId)
  const router: Record<string, unknown> = {
    rule: traefik.hostRule(route.hosts),
    entryPoints: [settings.entrypoint],
    service: name
  }
  if (settings.certResolver !== undefined) router.tls = { certResolver: settings.certResolver }
  const host = settings.upstreamHost ?? route.target.host
  const doc = new YAML.Document({
    http: {
      routers: { [name]: router },
      services: { [name]: { loadBalancer: { servers: [{ url: `http://${host}:${route.target.port}` }] } } }
    }
  })
  const stored = encodeRoute({
    appId: route.appId,
    hosts: [...route.hosts],
    instanceId: route.instanceId,
    target: { host: route.target.host, port: route.target.port }
  })
  doc.commentBefore = ` Written by @paas/runtime-docker; the platform rewrites it, do not edit.\n ${MARK}${stored}`
  return doc.toString({ lineWidth: 0 })
}

/** The route a file written by `render` holds, if it is one. */
export const parse = (text: string): Option.Option<Route> => {
  const line = text.split("\n").find((l) => l.startsWith(`# ${MARK}`))
  if (line === undefined) return Option.none()
  return Option.map(decodeRoute(line.slice(2 + MARK.length)), (r) => ({
    appId: r.appId,
    hosts: r.hosts,
    instanceId: r.instanceId,
    target: { host: r.target.host, port: r.target.port }
  }))
}

const fsCall = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => routerError(`${what} failed`, cause) })

const isMissing = (cause: unknown) => (cause as { readonly code?: unknown } | null)?.code === "ENOENT"

/** Builds the router, creating the directory if needed. */
export const make = (options: TraefikFileOptions): Effect.Effect<TraefikFile["Type"], RouterError> =>
  Effect.gen(function* () {
    const directory = resolve(options.directory)
    const settings = settingsOf(options)
    if (settings.upstreamHost !== undefined && !traefik.isValidHost(settings.upstreamHost))
      return yield* routerError(`not a valid upstream host: ${JSON.stringify(settings.upstreamHost)}`)
    yield* fsCall(`creating ${directory}`, () => mkdir(directory, { recursive: true }))
    const prefix = `${settings.namePrefix}-`
    const fileOf = (appId: ProjectId) => join(directory, `${prefix}${appId}.yml`)

    const read = (path: string) =>
      Effect.tryPromise({
        try: () => readFile(path, "utf8"),
        catch: (cause) => cause
      }).pipe(
        Effect.asSome,
        Effect.catchAll((cause) =>
          isMissing(cause) ? Effect.succeedNone : Effect.fail(routerError(`reading ${path} failed`, cause))
        )
      )

    const set = (route: Route): Effect.Effect<void, RouterError> =>
      Effect.gen(function* () {
        const bad = traefik.invalidHost(route.hosts)
        if (bad !== undefined) return yield* routerError(`not a valid host name: ${JSON.stringify(bad)}`)
        if (!Schema.is(ProjectId)(route.appId)) return yield* routerError(`not a project id: ${route.appId}`)
        const path = fileOf(route.appId)
        const text = render(route, settings)
        const current = yield* read(path)
        // Rewriting an identical file would only make Traefik reload for nothing.
        if (Option.isSome(current) && current.value === text) return
        const temporary = join(directory, `.${prefix}${route.appId}.${randomBytes(6).toString("hex")}.tmp`)
        yield* fsCall(`writing ${path}`, async () => {
          try {
            await writeFile(temporary, text, { mode: 0o644 })
            await rename(temporary, path)
          } finally {
            await rm(temporary, { force: true })
          }
        })
      })

    const remove = (appId: ProjectId): Effect.Effect<void, RouterError> =>
      Schema.is(ProjectId)(appId)
        ? fsCall(`removing ${fileOf(appId)}`, () => rm(fileOf(appId), { force: true }))
        : Effect.void

    const list = (appId?: ProjectId): Effect.Effect<ReadonlyArray<Route>, RouterError> =>
      Effect.gen(function* () {
        const names =
          appId === undefined
            ? (yield* fsCall(`listing ${directory}`, () => readdir(directory))).filter(
                (n) => n.startsWith(prefix) && n.endsWith(".yml")
              )
            : [`${prefix}${appId}.yml`]
        const routes: Array<Route> = []
        for (const name of names) {
          const text = yield* read(join(directory, name))
          if (Option.isNone(text)) continue
          const route = parse(text.value)
          // A file whose name and content disagree is not ours to report.
          if (Option.isSome(route) && name === `${prefix}${route.value.appId}.yml`) routes.push(route.value)
        }
        return routes
      })

    return { directory, fileOf, set, remove, list }
  })

/** Provides both `TraefikFile` and the core `Router`. */
export const layer = (options: TraefikFileOptions): Layer.Layer<TraefikFile | Router, RouterError> =>
  Layer.effectContext(
    Effect.map(make(options), (router) => Context.make(TraefikFile, router).pipe(Context.add(Router, router)))
  )
