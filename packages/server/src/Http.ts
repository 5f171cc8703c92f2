/**
 * The HTTP API served: the handlers of `Api`, authentication by bearer token or cookie, the
 * envelope on every response (unknown routes, wrong methods, wrong content types, oversized
 * bodies and defects included), `/openapi.json` and a docs page at `/docs`.
 */
import type * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as PasswordAuth from "@paas/auth/PasswordAuth"
import type { BuildId } from "@paas/core/Build"
import { toPaasTechStatus } from "@paas/core/Deployment"
import { type DeployResult, Platform } from "@paas/core/Platform"
import { ProjectId } from "@paas/core/Project"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Api from "./Api.js"
import * as Envelope from "./internal/envelope.js"
import * as Pages from "./internal/pages.js"
import * as Views from "./internal/views.js"

/** How the API behaves. */
export interface HttpOptions {
  /** Development mode: the `access` cookie is sent without `Secure` (plain http on localhost). */
  readonly devMode: boolean
  /** Take the client address from the last `X-Forwarded-For` hop (behind one trusted proxy). */
  readonly trustProxy: boolean
  /** How long the session cookie lives; the session token's lifetime (6 hours). */
  readonly sessionTtl: Duration.DurationInput
}

/** The options of the running API. */
export class HttpSettings extends Context.Tag("@paas/server/HttpSettings")<HttpSettings, HttpOptions>() {}

const { apiErrors } = Views

// The address login attempts are counted against.
const clientAddress = (request: HttpServerRequest.HttpServerRequest, trustProxy: boolean) => {
  if (trustProxy) {
    const forwarded = request.headers["x-forwarded-for"]
    const last = forwarded?.split(",").pop()?.trim()
    if (last) return last
  }
  return Option.getOrElse(request.remoteAddress, () => "unknown")
}

// The session tokens a request carries: its bearer token and its `access` cookie.
const sessionTokens = (request: HttpServerRequest.HttpServerRequest) => {
  const tokens = new Set<string>()
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "")
  if (bearer !== null) tokens.add(bearer[1]!)
  const cookie = request.cookies[Api.cookieName]
  if (cookie !== undefined && cookie !== "") tokens.add(cookie)
  return tokens
}

const AuthenticationLive = Layer.effect(
  Api.Authentication,
  Effect.map(Platform, (platform) => {
    const check = (token: Redacted.Redacted) => {
      const value = Redacted.value(token)
      if (value.length === 0) return Effect.fail(Api.Unauthorized.of())
      return platform
        .authenticate(value)
        .pipe(Effect.mapError((e) => Api.Unauthorized.of(`${e.message}: log in again`)))
    }
    return { bearer: check, cookie: check }
  })
)

const HealthLive = HttpApiBuilder.group(Api.Api, "health", (handlers) =>
  handlers.handle("healthz", () => Effect.succeed({ status: "OK" as const }))
)

const AuthLive = HttpApiBuilder.group(Api.Api, "auth", (handlers) =>
  Effect.gen(function* () {
    const platform = yield* Platform
    const settings = yield* HttpSettings
    const cookieOptions = {
      httpOnly: true,
      secure: !settings.devMode,
      sameSite: "lax",
      path: "/"
    } as const
    return handlers
      .handle("register", ({ payload }) =>
        platform
          .register({
            username: payload.username,
            email: payload.email,
            password: Redacted.make(payload.password)
          })
          .pipe(
            apiErrors,
            Effect.map((user) => ({
              status: "OK" as const,
              message: "registered: confirm your email address with the link we sent",
              content: Views.user(user)
            }))
          )
      )
      .handle("confirm", ({ path }) =>
        platform.confirmEmail(path.token).pipe(
          Effect.mapError(() =>
            Api.Invalid.field("token", "this confirmation link is unknown or was used already")
          ),
          Effect.as({ status: "OK" as const, message: "email confirmed: you can log in" })
        )
      )
      .handle("confirmPage", () => Effect.succeed(Pages.confirmEmail()))
      .handle("login", ({ payload, request }) =>
        Effect.gen(function* () {
          const login = yield* platform
            .login({
              email: payload.email,
              password: Redacted.make(payload.password),
              client: clientAddress(request, settings.trustProxy)
            })
            .pipe(
              Effect.catchTags({
                AuthenticationError: (e) => Effect.fail(Api.Refused.of(e.message)),
                RateLimited: (e) =>
                  Effect.zipRight(
                    HttpApp.appendPreResponseHandler((_, response) =>
                      Effect.succeed(
                        HttpServerResponse.setHeader(response, "retry-after", `${e.retryAfterSeconds}`)
                      )
                    ),
                    Effect.fail(
                      new Api.TooManyRequests({
                        status: "too_many_requests",
                        message: `${e.message} (in ${e.retryAfterSeconds} s)`
                      })
                    )
                  )
              })
            )
          yield* HttpApiBuilder.securitySetCookie(Api.cookie, login.token, {
            ...cookieOptions,
            maxAge: settings.sessionTtl
          })
          return { status: "OK" as const, content: { accessToken: login.token } }
        })
      )
      .handle("requestPasswordReset", ({ payload }) =>
        Effect.as(platform.requestPasswordReset(payload.email), {
          status: "OK" as const,
          message: "if an account has this email address, a link to reset its password was sent to it"
        })
      )
      .handle("resetPasswordPage", () => Effect.succeed(Pages.resetPassword()))
      .handle("resetPassword", ({ path, payload }) =>
        Effect.gen(function* () {
          if (payload.password !== payload.passwordVerification)
            return yield* Effect.fail(
              Api.Invalid.field("passwordVerification", "passwordVerification must equal password")
            )
          yield* platform.resetPassword(path.token, Redacted.make(payload.password)).pipe(
            Effect.catchTags({
              NotFound: () =>
                Effect.fail(Api.Invalid.field("token", "this reset link is unknown or was used already")),
              ValidationError: (e) => Effect.fail(Api.Invalid.field(e.field, e.message))
            })
          )
          return { status: "OK" as const, message: "password changed: you can log in with it" }
        })
      )
      .handle("logout", ({ request }) =>
        Effect.gen(function* () {
          // Ends the session as well as clearing the cookie: the token is refused from then on.
          const principal = yield* Api.CurrentPrincipal
          for (const token of sessionTokens(request)) yield* platform.logout(principal, token)
          yield* HttpApp.appendPreResponseHandler((_, response) =>
            Effect.orDie(
              HttpServerResponse.setCookie(response, Api.cookieName, "", { ...cookieOptions, maxAge: 0 })
            )
          )
          return { status: "OK" as const, message: "logged out" }
        })
      )
  })
)

const UsersLive = HttpApiBuilder.group(Api.Api, "users", (handlers) =>
  Effect.map(Platform, (platform) =>
    handlers
      .handle("me", () =>
        Effect.flatMap(Api.CurrentPrincipal, platform.me).pipe(
          apiErrors,
          Effect.map((user) => ({ status: "OK" as const, content: Views.user(user) }))
        )
      )
      .handle("list", () =>
        Effect.flatMap(Api.CurrentPrincipal, platform.listUsers).pipe(
          apiErrors,
          Effect.map((users) => ({ status: "OK" as const, content: users.map(Views.user) }))
        )
      )
      .handle("get", ({ path }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.getUser(p, path.username)).pipe(
          apiErrors,
          Effect.map((user) => ({ status: "OK" as const, content: Views.user(user) }))
        )
      )
      .handle("delete", ({ path }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.deleteUser(p, path.username)).pipe(
          apiErrors,
          Effect.as({ status: "OK" as const, message: `deleted ${path.username} and everything they owned` })
        )
      )
  )
)

const SshKeysLive = HttpApiBuilder.group(Api.Api, "sshkeys", (handlers) =>
  Effect.map(Platform, (platform) =>
    handlers
      .handle("add", ({ payload }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) =>
          platform.addSshKey(p, { value: payload.value, name: payload.name })
        ).pipe(
          apiErrors,
          Effect.map((key) => ({ status: "OK" as const, content: Views.sshKey(key) }))
        )
      )
      .handle("listMine", () =>
        Effect.flatMap(Api.CurrentPrincipal, platform.listMySshKeys).pipe(
          Effect.map((keys) => ({ status: "OK" as const, content: keys.map(Views.sshKey) }))
        )
      )
      .handle("delete", ({ path }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.deleteSshKey(p, path.uuid)).pipe(
          apiErrors,
          Effect.as({ status: "OK" as const, message: "key deleted" })
        )
      )
      .handle("list", () =>
        Effect.flatMap(Api.CurrentPrincipal, platform.listSshKeys).pipe(
          apiErrors,
          Effect.map((keys) => ({ status: "OK" as const, content: keys.map(Views.sshKey) }))
        )
      )
  )
)

const decodeProjectId = Schema.decodeUnknownOption(ProjectId)

const ProjectsLive = HttpApiBuilder.group(Api.Api, "projects", (handlers) =>
  Effect.map(Platform, (platform) => {
    // What a deploy or rollback came to, as the client is told it.
    const deployed = (result: Extract<DeployResult, { _tag: "Deployed" }>) => {
      const content = {
        release: result.release.number,
        status: toPaasTechStatus(result.status),
        url: result.url
      }
      if (result.status === "running" && result.message === null)
        return Effect.succeed({
          status: "OK" as const,
          message: `release v${result.release.number} is running at ${result.url}`,
          content
        })
      return Effect.fail(
        new Api.DeployFailed({
          status: "deploy_failed",
          message: `release v${result.release.number} did not start: ${result.message ?? result.status}`,
          content: { release: result.release.number, url: result.url }
        })
      )
    }

    return handlers
      .handle("list", () =>
        Effect.flatMap(Api.CurrentPrincipal, platform.listProjects).pipe(
          apiErrors,
          Effect.map((projects) => ({ status: "OK" as const, content: projects.map(Views.project) }))
        )
      )
      .handle("listMine", () =>
        Effect.flatMap(Api.CurrentPrincipal, platform.listMyProjects).pipe(
          Effect.map((projects) => ({ status: "OK" as const, content: projects.map(Views.project) }))
        )
      )
      .handle("create", ({ payload }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.createProject(p, { name: payload.name })).pipe(
          apiErrors,
          Effect.map((project) => ({ status: "OK" as const, content: Views.project(project) }))
        )
      )
      .handle("status", ({ payload }) =>
        Effect.gen(function* () {
          const principal = yield* Api.CurrentPrincipal
          // An id that is not a UUID cannot be the caller's: 404, like any other id not theirs.
          const ids: Array<ProjectId> = []
          for (const name of payload.container_names) {
            const id = decodeProjectId(name.toLowerCase())
            if (Option.isNone(id)) return yield* Effect.fail(Api.NotFound.of(`project ${name} not found`))
            ids.push(id.value)
          }
          const statuses = yield* apiErrors(platform.status(principal, ids))
          return {
            status: "OK" as const,
            content: {
              container_statuses: statuses.map((s) => ({
                container_name: s.id,
                container_status: toPaasTechStatus(s.status)
              }))
            }
          }
        })
      )
      .handle("get", ({ path }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.getProject(p, path.uuid)).pipe(
          apiErrors,
          Effect.map((project) => ({ status: "OK" as const, content: Views.project(project) }))
        )
      )
      .handle("delete", ({ path }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.deleteProject(p, path.uuid)).pipe(
          apiErrors,
          Effect.as({ status: "OK" as const, message: "project deleted with its app, images and repository" })
        )
      )
      .handle("deploy", ({ path, payload }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.deploy(p, path.uuid, payload.env_vars)).pipe(
          apiErrors,
          Effect.flatMap((result) =>
            result._tag === "Pending"
              ? Effect.succeed({
                  status: "OK" as const,
                  message: "saved: nothing was pushed yet, the app starts after the first push"
                })
              : deployed(result)
          )
        )
      )
      .handle("domains", ({ path, payload }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.setDomains(p, path.uuid, payload.domains)).pipe(
          apiErrors,
          Effect.map((project) => ({ status: "OK" as const, content: Views.project(project) }))
        )
      )
      .handle("stop", ({ path }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.stop(p, path.uuid)).pipe(
          apiErrors,
          Effect.as({ status: "OK" as const, message: "stopped" })
        )
      )
      .handle("logs", ({ path, urlParams }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) =>
          Stream.runCollect(platform.logs(p, path.uuid, { tail: urlParams.tail ?? 1000, follow: false }))
        ).pipe(
          apiErrors,
          Effect.map((lines) => ({
            status: "OK" as const,
            content: {
              logs: Chunk.toReadonlyArray(lines)
                .map((l) => `${l.line}\n`)
                .join("")
            }
          }))
        )
      )
      .handle("statistics", ({ path }) =>
        Effect.gen(function* () {
          const principal = yield* Api.CurrentPrincipal
          const [status] = yield* apiErrors(platform.status(principal, [path.uuid]))
          if (status?.status !== "running")
            return yield* Effect.fail(Api.Conflict.of("the app is not running"))
          const stats = yield* apiErrors(platform.statistics(principal, path.uuid))
          return {
            status: "OK" as const,
            content: {
              cpu_usage: stats.cpuPercent,
              memory_usage: stats.memoryBytes,
              memory_limit: stats.memoryLimitBytes
            }
          }
        })
      )
      .handle("builds", ({ path }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.builds(p, path.uuid)).pipe(
          apiErrors,
          Effect.map((builds) => ({
            status: "OK" as const,
            content: builds.map((b) => Views.build(b, false))
          }))
        )
      )
      .handle("build", ({ path }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.build(p, path.uuid, path.build as BuildId)).pipe(
          apiErrors,
          Effect.map((build) => ({ status: "OK" as const, content: Views.build(build, true) }))
        )
      )
      .handle("releases", ({ path }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.releases(p, path.uuid)).pipe(
          apiErrors,
          Effect.map((releases) => ({ status: "OK" as const, content: releases.map(Views.release) }))
        )
      )
      .handle("rollback", ({ path, payload }) =>
        Effect.flatMap(Api.CurrentPrincipal, (p) => platform.rollback(p, path.uuid, payload.release)).pipe(
          apiErrors,
          Effect.flatMap((result) =>
            result._tag === "Pending" ? Effect.die("a rollback always deploys a release") : deployed(result)
          )
        )
      )
  })
)

/** The API's handlers, over a Platform. */
export const layerApi: Layer.Layer<HttpApi.Api, never, Platform | HttpSettings> = HttpApiBuilder.api(
  Api.Api
).pipe(
  Layer.provide([HealthLive, AuthLive, UsersLive, SshKeysLive, ProjectsLive]),
  Layer.provide(AuthenticationLive)
)

const docsPath = "/docs"
const openApiPath = "/openapi.json"

/**
 * The API with its documentation and the envelope middleware, served by whichever HttpServer is
 * provided (`NodeHttpServer.layer` in the server, `NodeHttpServer.layerTest` in tests).
 */
export const layer = (
  options: HttpOptions
): Layer.Layer<never, never, Platform | HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices> =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiSwagger.layer({ path: docsPath })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: openApiPath })),
    Layer.provide(
      HttpApiBuilder.middleware(
        Envelope.middleware(
          Envelope.routesOf(Api.Api, [
            { method: "GET", path: docsPath },
            { method: "GET", path: openApiPath }
          ])
        )
      )
    ),
    Layer.provide(layerApi),
    Layer.provide(Layer.succeed(HttpSettings, options))
  )

/** Default options: production cookies, no proxy in front, 6-hour sessions. */
export const defaults: HttpOptions = {
  devMode: false,
  trustProxy: false,
  sessionTtl: PasswordAuth.defaultSessionTtl
}
