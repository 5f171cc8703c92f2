// The envelope for what the API's declared errors do not cover: request bodies that are too large,
// of the wrong type or not JSON; bodies and parameters that fail their schema (400 naming the
// field); unknown routes (404) and known paths with the wrong method (405); and defects (500, with
// the cause in the log and nothing of it in the response).
import * as HttpApi from "@effect/platform/HttpApi"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"

/** Request bodies are at most 1 MiB. */
export const maxBodyBytes = 1024 * 1024

/** A JSON envelope response. */
export const respond = (
  status: number,
  body: { readonly status: string; readonly message?: string; readonly content?: unknown },
  headers: Record<string, string> = {}
) => HttpServerResponse.unsafeJson(body, { status, headers })

interface RouteShape {
  readonly method: string
  readonly pattern: RegExp
  /** How many literal segments the path has: the router prefers `/projects/my` to `/projects/:uuid`. */
  readonly literals: number
}

// Paths are matched segment by segment: `:param` matches one non-empty segment.
const compile = (path: string): RegExp =>
  new RegExp(
    `^${path
      .split("/")
      .map((segment) => (segment.startsWith(":") ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      .join("/")}/?$`
  )

/** The method and path of every route: the API's, plus the documentation's. */
export const routesOf = <Id extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<Id, Groups, E, R>,
  extra: ReadonlyArray<{ method: string; path: string }>
) => {
  const shape = (method: string, path: string): RouteShape => ({
    method,
    pattern: compile(path),
    literals: path.split("/").filter((s) => s !== "" && !s.startsWith(":")).length
  })
  const routes: Array<RouteShape> = extra.map((r) => shape(r.method, r.path))
  HttpApi.reflect(api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      routes.push(shape(endpoint.method, endpoint.path))
    }
  })
  return routes
}

const hasBody = (request: HttpServerRequest.HttpServerRequest) => {
  const length = request.headers["content-length"]
  return (length !== undefined && length !== "0") || request.headers["transfer-encoding"] !== undefined
}

const isJson = (contentType: string | undefined) => {
  if (contentType === undefined) return false
  const type = contentType.split(";")[0]!.trim().toLowerCase()
  return type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"))
}

const tooLarge = () =>
  respond(413, {
    status: "payload_too_large",
    message: `the request body is larger than ${maxBodyBytes} bytes`
  })

// Reads and checks the body before the API sees it: the API would otherwise turn a body that is
// not JSON into a defect (500), and read bodies of any size.
const checkBody = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function* () {
    const length = Number(request.headers["content-length"] ?? "0")
    if (length > maxBodyBytes) return Option.some(tooLarge())
    if (!isJson(request.headers["content-type"]))
      return Option.some(
        respond(415, {
          status: "unsupported_media_type",
          message: "send the body as JSON, with Content-Type: application/json"
        })
      )
    const text = yield* Effect.either(
      HttpIncomingMessage.withMaxBodySize(request.text, Option.some(maxBodyBytes))
    )
    if (text._tag === "Left") {
      const cause: unknown = text.left.cause
      return Option.some(
        Predicate.hasProperty(cause, "message") && cause.message === "maxBytes exceeded"
          ? tooLarge()
          : respond(400, { status: "invalid", message: "the request body could not be read" })
      )
    }
    if (text.right.trim() === "") return Option.none()
    try {
      JSON.parse(text.right)
      return Option.none()
    } catch {
      return Option.some(respond(400, { status: "invalid", message: "the request body is not valid JSON" }))
    }
  })

interface DecodeIssue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

// A decode failure names the first field that broke a rule. Messages that come from our schemas
// already name the field; Schema's own ("Expected string, actual 42") are reworded so they never
// echo the value, which may be a password.
const describeIssue = (issue: DecodeIssue | undefined) => {
  if (issue === undefined) return { field: "body", message: "the request is invalid" }
  const field = issue.path.length > 0 ? issue.path.map(String).join(".") : "body"
  if (issue.message === "is missing") return { field, message: `${field} is required` }
  if (issue.message.startsWith("is ")) return { field, message: `${field} ${issue.message}` }
  const expected = /^Expected (.+?), actual /.exec(issue.message)
  if (expected !== null) return { field, message: `${field} must be ${expected[1]}` }
  return { field, message: issue.message }
}

const isTagged =
  <T extends string>(tag: T) =>
  (u: unknown): u is { readonly _tag: T } =>
    Predicate.isTagged(u, tag)

/** The middleware, given every route the server answers. */
export const middleware =
  (routes: ReadonlyArray<RouteShape>) =>
  (app: HttpApp.Default): HttpApp.Default =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      // Most requests carry no body: straight on to the API, without a step per request.
      request.method === "GET" || request.method === "HEAD" || !hasBody(request)
        ? app
        : Effect.flatMap(checkBody(request), (refused) =>
            Option.isSome(refused) ? Effect.succeed(refused.value) : app
          )
    ).pipe(
      Effect.catchIf(isTagged("HttpApiDecodeError"), (error) => {
        const issues = (error as unknown as { readonly issues: ReadonlyArray<DecodeIssue> }).issues
        const { field, message } = describeIssue(issues[0])
        return Effect.succeed(respond(400, { status: "invalid", message, content: { field } }))
      }),
      Effect.catchIf(isTagged("RouteNotFound"), () =>
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const path = request.url.split("?")[0] ?? "/"
          const matching = routes.filter((r) => r.pattern.test(path))
          const best = Math.max(0, ...matching.map((r) => r.literals))
          const allowed = [...new Set(matching.filter((r) => r.literals === best).map((r) => r.method))]
          if (allowed.length === 0)
            return respond(404, { status: "not_found", message: `no route ${request.method} ${path}` })
          return respond(
            405,
            { status: "method_not_allowed", message: `${path} answers ${allowed.join(", ")}` },
            { allow: allowed.join(", ") }
          )
        })
      ),
      Effect.catchAllDefect((defect) =>
        Effect.as(
          Effect.logError("request failed", Cause.die(defect)),
          respond(500, { status: "error", message: "something went wrong on our side; it has been logged" })
        )
      )
    )
