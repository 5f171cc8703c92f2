/**
 * The PaaSTech-compatible HTTP API, declared with `@effect/platform`'s HttpApi: routes, bodies,
 * the `{status, message?, content?}` envelope and the status codes of `paastech-api.md`. The same
 * declaration serves the API (`Http.ts`), produces `/openapi.json`, and gives typed clients
 * (`HttpApiClient.make(Api)`).
 *
 * Extensions to PaaSTech's routes (builds, releases, rollback) live beside them and change none.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { BuildStatus } from "@paas/core/Build"
import { Env, ProjectId } from "@paas/core/Project"
import { SshKeyId } from "@paas/core/SshKey"
import { Email, Password, type Principal, Username } from "@paas/core/User"
import * as Context from "effect/Context"
import * as Schema from "effect/Schema"

// --- the envelope ----------------------------------------------------------------------------

/** A plain success: `{"status":"OK"}`, with a message for a person when there is something to say. */
export const Ok = Schema.Struct({
  status: Schema.Literal("OK"),
  message: Schema.optional(Schema.String)
}).annotations({ identifier: "Ok" })

/** A success carrying data under `content`. */
export const ok = <A, I, R>(content: Schema.Schema<A, I, R>) =>
  Schema.Struct({
    status: Schema.Literal("OK"),
    message: Schema.optional(Schema.String),
    content
  })

// Every error keeps the envelope: a short status word, a message for a person, and sometimes
// details under `content`. Each class is one HTTP status.
const errorFields = <S extends string>(status: S) => ({
  status: Schema.Literal(status),
  message: Schema.String
})

/** 400: bad input; `content.field` names the field that broke a rule. */
export class Invalid extends Schema.Class<Invalid>("Invalid")(
  {
    ...errorFields("invalid"),
    content: Schema.optional(Schema.Struct({ field: Schema.String }))
  },
  HttpApiSchema.annotations({ status: 400 })
) {
  /** The rule `message` broken by `field`. */
  static field(field: string, message: string) {
    return new Invalid({ status: "invalid", message, content: { field } })
  }
}

/** 401: not authenticated (no session, an expired or invalid one). */
export class Unauthorized extends Schema.Class<Unauthorized>("Unauthorized")(
  errorFields("unauthorized"),
  HttpApiSchema.annotations({ status: 401 })
) {
  /** With a message saying why. */
  static of(message = "log in first: send a bearer token or the access cookie") {
    return new Unauthorized({ status: "unauthorized", message })
  }
}

/** 401 on login: bad credentials or an unconfirmed email. */
export class Refused extends Schema.Class<Refused>("Refused")(
  errorFields("refused"),
  HttpApiSchema.annotations({ status: 401 })
) {
  /** With a message saying why. */
  static of(message: string) {
    return new Refused({ status: "refused", message })
  }
}

/** 403: known, but not allowed (a non-admin on an admin route). */
export class Forbidden extends Schema.Class<Forbidden>("Forbidden")(
  errorFields("forbidden"),
  HttpApiSchema.annotations({ status: 403 })
) {
  /** With a message saying why. */
  static of(message = "this is for administrators only") {
    return new Forbidden({ status: "forbidden", message })
  }
}

/** 404: missing, or not the caller's (the two are indistinguishable on purpose). */
export class NotFound extends Schema.Class<NotFound>("NotFound")(
  errorFields("not_found"),
  HttpApiSchema.annotations({ status: 404 })
) {
  /** With a message saying what was not found. */
  static of(message: string) {
    return new NotFound({ status: "not_found", message })
  }
}

/** 409: clashes with what exists (a duplicate name, a key registered already, an app not running). */
export class Conflict extends Schema.Class<Conflict>("Conflict")(
  errorFields("conflict"),
  HttpApiSchema.annotations({ status: 409 })
) {
  /** With a message saying what clashed. */
  static of(message: string) {
    return new Conflict({ status: "conflict", message })
  }
}

/** 429: too many attempts; the `Retry-After` header says when to try again. */
export class TooManyRequests extends Schema.Class<TooManyRequests>("TooManyRequests")(
  errorFields("too_many_requests"),
  HttpApiSchema.annotations({ status: 429 })
) {}

/** 502: the app did not start (its build or health check failed); the previous release keeps serving. */
export class DeployFailed extends Schema.Class<DeployFailed>("DeployFailed")(
  {
    ...errorFields("deploy_failed"),
    content: Schema.optional(Schema.Struct({ release: Schema.Int, url: Schema.String }))
  },
  HttpApiSchema.annotations({ status: 502 })
) {}

/** 503: a service the platform depends on (the runtime, the mail server, the disk) failed. */
export class Unavailable extends Schema.Class<Unavailable>("Unavailable")(
  errorFields("unavailable"),
  HttpApiSchema.annotations({ status: 503 })
) {
  /** With a message saying what failed. */
  static of(message: string) {
    return new Unavailable({ status: "unavailable", message })
  }
}

// --- shapes ----------------------------------------------------------------------------------

/** A user as clients see it: never the password hash or the email tokens. */
export const UserView = Schema.Struct({
  id: Schema.String,
  username: Schema.String,
  email: Schema.String,
  isAdmin: Schema.Boolean,
  createdAt: Schema.Date,
  updatedAt: Schema.Date
}).annotations({ identifier: "User" })

/** An SSH public key as clients see it. */
export const SshKeyView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  value: Schema.String,
  fingerprint: Schema.String,
  createdAt: Schema.Date,
  updatedAt: Schema.Date
}).annotations({ identifier: "SshKey" })

/** A project as clients see it; `id` is also its repository's name and part of its host name. */
export const ProjectView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  config: Schema.Struct({
    env: Schema.Record({ key: Schema.String, value: Schema.String }),
    domains: Schema.Array(Schema.String)
  }),
  createdAt: Schema.Date,
  updatedAt: Schema.Date
}).annotations({ identifier: "Project" })

/** A build of a pushed commit; `log` only when one build is asked for. */
export const BuildView = Schema.Struct({
  id: Schema.String,
  commit: Schema.String,
  ref: Schema.String,
  status: BuildStatus,
  error: Schema.NullOr(Schema.String),
  createdAt: Schema.Date,
  startedAt: Schema.NullOr(Schema.Date),
  finishedAt: Schema.NullOr(Schema.Date),
  log: Schema.optional(Schema.String)
}).annotations({ identifier: "Build" })

/** A release: an image and the configuration it runs with, numbered per project. */
export const ReleaseView = Schema.Struct({
  id: Schema.String,
  number: Schema.Int,
  commit: Schema.String,
  image: Schema.String,
  description: Schema.String,
  config: Schema.Struct({
    env: Schema.Record({ key: Schema.String, value: Schema.String }),
    domains: Schema.Array(Schema.String)
  }),
  createdAt: Schema.Date
}).annotations({ identifier: "Release" })

/** The PaaSTech statuses of an app. */
export const ContainerStatus = Schema.Literal(
  "STATUS_UNKNOWN",
  "STATUS_STARTING",
  "STATUS_RUNNING",
  "STATUS_STOPPING",
  "STATUS_STOPPED"
)

/** What a deploy came to: the release, the app's status and its URL. */
export const DeployView = Schema.Struct({
  release: Schema.Int,
  status: ContainerStatus,
  url: Schema.String
}).annotations({ identifier: "Deploy" })

// --- authentication --------------------------------------------------------------------------

/** The cookie that carries the session, as PaaSTech's clients expect it. */
export const cookieName = "access"

/** `Authorization: Bearer <token>`. */
export const bearer = HttpApiSecurity.bearer.pipe(
  HttpApiSecurity.annotate(OpenApi.Description, "the accessToken returned by POST /auth/login")
)

/** The `access` cookie set by `POST /auth/login`. */
export const cookie = HttpApiSecurity.apiKey({ in: "cookie", key: cookieName })

/** The authenticated caller, provided to every handler behind `Authentication`. */
export class CurrentPrincipal extends Context.Tag("@paas/server/CurrentPrincipal")<
  CurrentPrincipal,
  Principal
>() {}

/** Accepts a bearer token or the `access` cookie; 401 otherwise. */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("@paas/server/Authentication", {
  failure: Unauthorized,
  provides: CurrentPrincipal,
  security: { bearer, cookie }
}) {}

// --- path parameters -------------------------------------------------------------------------

const ProjectPath = Schema.Struct({
  uuid: ProjectId.annotations({ message: () => "uuid must be a project id (a UUID)" })
})
const KeyPath = Schema.Struct({
  uuid: SshKeyId.annotations({ message: () => "uuid must be a key id (a UUID)" })
})
const TokenPath = Schema.Struct({
  token: Schema.UUID.annotations({ message: () => "token must be a UUID" })
})

/** An HTML page (the ones account emails link to). */
const Page = HttpApiSchema.Text({ contentType: "text/html" })

// --- routes ----------------------------------------------------------------------------------

/** Public: liveness. */
export class HealthGroup extends HttpApiGroup.make("health").add(
  HttpApiEndpoint.get("healthz", "/healthz").addSuccess(Ok)
) {}

/** Public account routes, plus logout. */
export class AuthGroup extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("register", "/auth/register")
      .setPayload(Schema.Struct({ username: Username, email: Email, password: Password }))
      .addSuccess(ok(UserView), { status: 201 })
      .addError(Invalid)
      .addError(Conflict)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.post("confirm", "/auth/confirm/:token")
      .setPath(TokenPath)
      .addSuccess(Ok, { status: 201 })
      .addError(Invalid)
  )
  .add(
    HttpApiEndpoint.get("confirmPage", "/auth/confirm/:token")
      .setPath(TokenPath)
      .addSuccess(Page)
      .addError(Invalid)
      .annotate(OpenApi.Description, "The page the confirmation email links to; its button sends the POST.")
  )
  .add(
    HttpApiEndpoint.post("login", "/auth/login")
      .setPayload(Schema.Struct({ email: Schema.String, password: Schema.String }))
      .addSuccess(ok(Schema.Struct({ accessToken: Schema.String })), { status: 201 })
      .addError(Invalid)
      .addError(Refused)
      .addError(TooManyRequests)
  )
  .add(
    HttpApiEndpoint.post("requestPasswordReset", "/auth/password/request")
      .setPayload(Schema.Struct({ email: Schema.String }))
      .addSuccess(Ok, { status: 201 })
      .addError(Invalid)
  )
  .add(
    HttpApiEndpoint.post("resetPassword", "/auth/password/reset/:token")
      .setPath(TokenPath)
      .setPayload(Schema.Struct({ password: Schema.String, passwordVerification: Schema.String }))
      .addSuccess(Ok, { status: 201 })
      .addError(Invalid)
  )
  .add(
    HttpApiEndpoint.get("resetPasswordPage", "/auth/password/reset/:token")
      .setPath(TokenPath)
      .addSuccess(Page)
      .addError(Invalid)
      .annotate(OpenApi.Description, "The page the reset email links to; its form sends the POST.")
  )
  .add(HttpApiEndpoint.post("logout", "/auth/logout").addSuccess(Ok).middleware(Authentication)) {}

/** Accounts. */
export class UsersGroup extends HttpApiGroup.make("users")
  .add(HttpApiEndpoint.get("me", "/users/my").addSuccess(ok(UserView)).addError(NotFound))
  .add(
    HttpApiEndpoint.get("list", "/users")
      .addSuccess(ok(Schema.Array(UserView)))
      .addError(Forbidden)
  )
  .add(
    HttpApiEndpoint.get("get", "/users/:username")
      .setPath(Schema.Struct({ username: Schema.String }))
      .addSuccess(ok(UserView))
      .addError(Forbidden)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.del("delete", "/users/:username")
      .setPath(Schema.Struct({ username: Schema.String }))
      .addSuccess(Ok)
      .addError(Forbidden)
      .addError(NotFound)
      .addError(Unavailable)
  )
  .middleware(Authentication) {}

/** SSH public keys. */
export class SshKeysGroup extends HttpApiGroup.make("sshkeys")
  .add(
    HttpApiEndpoint.post("add", "/sshkeys/my")
      .setPayload(Schema.Struct({ value: Schema.String, name: Schema.optional(Schema.String) }))
      .addSuccess(ok(SshKeyView), { status: 201 })
      .addError(Invalid)
      .addError(Conflict)
  )
  .add(HttpApiEndpoint.get("listMine", "/sshkeys/my").addSuccess(ok(Schema.Array(SshKeyView))))
  .add(HttpApiEndpoint.del("delete", "/sshkeys/my/:uuid").setPath(KeyPath).addSuccess(Ok).addError(NotFound))
  .add(
    HttpApiEndpoint.get("list", "/sshkeys")
      .addSuccess(ok(Schema.Array(SshKeyView)))
      .addError(Forbidden)
  )
  .middleware(Authentication) {}

/** Projects and their apps. */
export class ProjectsGroup extends HttpApiGroup.make("projects")
  .add(
    HttpApiEndpoint.get("list", "/projects")
      .addSuccess(ok(Schema.Array(ProjectView)))
      .addError(Forbidden)
  )
  .add(HttpApiEndpoint.get("listMine", "/projects/my").addSuccess(ok(Schema.Array(ProjectView))))
  .add(
    HttpApiEndpoint.post("create", "/projects")
      .setPayload(Schema.Struct({ name: Schema.String }))
      .addSuccess(ok(ProjectView), { status: 201 })
      .addError(Invalid)
      .addError(Conflict)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.post("status", "/projects/status")
      .setPayload(Schema.Struct({ container_names: Schema.Array(Schema.String) }))
      .addSuccess(
        ok(
          Schema.Struct({
            container_statuses: Schema.Array(
              Schema.Struct({ container_name: Schema.String, container_status: ContainerStatus })
            )
          })
        )
      )
      .addError(Invalid)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("get", "/projects/:uuid")
      .setPath(ProjectPath)
      .addSuccess(ok(ProjectView))
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.del("delete", "/projects/:uuid")
      .setPath(ProjectPath)
      .addSuccess(Ok)
      .addError(NotFound)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.patch("deploy", "/projects/:uuid/deploy")
      .setPath(ProjectPath)
      .setPayload(Schema.Struct({ env_vars: Env }))
      // The richer shape first: encoding tries them in order, and Ok would drop `content`.
      .addSuccess(ok(DeployView))
      .addSuccess(Ok)
      .addError(Invalid)
      .addError(NotFound)
      .addError(DeployFailed)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.put("domains", "/projects/:uuid/domains")
      .setPath(ProjectPath)
      .setPayload(Schema.Struct({ domains: Schema.Array(Schema.String) }))
      .addSuccess(ok(ProjectView))
      .addError(Invalid)
      .addError(NotFound)
      .addError(Conflict)
      .annotate(
        OpenApi.Description,
        "Extension: the custom domains the app also answers at (point their DNS at the router); replaces the list and redeploys a running app."
      )
  )
  .add(
    HttpApiEndpoint.post("stop", "/projects/:uuid/stop")
      .setPath(ProjectPath)
      .addSuccess(Ok)
      .addError(NotFound)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.get("logs", "/projects/:uuid/logs")
      .setPath(ProjectPath)
      .setUrlParams(
        Schema.Struct({
          tail: Schema.optional(
            Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 10_000)).annotations({
              message: () => "tail must be a whole number from 1 to 10000"
            })
          )
        })
      )
      .addSuccess(ok(Schema.Struct({ logs: Schema.String })))
      .addError(Invalid)
      .addError(NotFound)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.get("statistics", "/projects/:uuid/statistics")
      .setPath(ProjectPath)
      .addSuccess(
        ok(
          Schema.Struct({
            cpu_usage: Schema.Number,
            memory_usage: Schema.Number,
            memory_limit: Schema.Number
          })
        )
      )
      .addError(NotFound)
      .addError(Conflict)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.get("builds", "/projects/:uuid/builds")
      .setPath(ProjectPath)
      .addSuccess(ok(Schema.Array(BuildView)))
      .addError(NotFound)
      .annotate(OpenApi.Description, "Extension: the project's builds, newest first (without their logs).")
  )
  .add(
    HttpApiEndpoint.get("build", "/projects/:uuid/builds/:build")
      .setPath(Schema.Struct({ uuid: ProjectPath.fields.uuid, build: Schema.UUID }))
      .addSuccess(ok(BuildView))
      .addError(NotFound)
      .annotate(OpenApi.Description, "Extension: one build with its log.")
  )
  .add(
    HttpApiEndpoint.get("releases", "/projects/:uuid/releases")
      .setPath(ProjectPath)
      .addSuccess(ok(Schema.Array(ReleaseView)))
      .addError(NotFound)
      .annotate(OpenApi.Description, "Extension: the project's releases, newest first.")
  )
  .add(
    HttpApiEndpoint.post("rollback", "/projects/:uuid/rollback")
      .setPath(ProjectPath)
      .setPayload(
        Schema.Struct({
          release: Schema.Int.pipe(Schema.positive()).annotations({
            message: () => "release must be a release number (1, 2, …)"
          })
        })
      )
      .addSuccess(ok(DeployView))
      .addError(Invalid)
      .addError(NotFound)
      .addError(DeployFailed)
      .addError(Unavailable)
      .annotate(
        OpenApi.Description,
        "Extension: deploys a new release with the image and configuration of an earlier one."
      )
  )
  .middleware(Authentication) {}

/** The whole API. */
export class Api extends HttpApi.make("paas")
  .add(HealthGroup)
  .add(AuthGroup)
  .add(UsersGroup)
  .add(SshKeysGroup)
  .add(ProjectsGroup)
  .annotateContext(
    OpenApi.annotations({
      title: "PaaS API",
      description:
        "The PaaSTech-compatible API of the reference server. Every body is the envelope " +
        '`{"status": string, "message"?: string, "content"?: …}`.'
    })
  ) {}
