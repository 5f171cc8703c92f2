/**
 * The HTTP API in-process: the real server (`Http.layer`) on a random port of 127.0.0.1, over the
 * Platform on in-memory drivers with the real PasswordAuth, and a raw client that shows exactly
 * what a client sees (status, headers, envelope).
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as PasswordAuth from "@paas/auth/PasswordAuth"
import { Platform } from "@paas/core/Platform"
import type { PlatformSettings } from "@paas/core/PlatformConfig"
import { InMemoryMailer, TestPlatform } from "@paas/core/testing"
import { Principal } from "@paas/core/User"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Http from "../../src/Http.js"

/**
 * The API's envelope as tests read it. `content` stays untyped on purpose: each test reads the
 * fields of the route it calls (dozens of shapes), and a wrong read fails its assertion anyway.
 */
export interface Envelope {
  readonly status?: string
  readonly message?: string
  // biome-ignore lint/suspicious/noExplicitAny: see above; the shapes are checked by the assertions
  readonly content?: any
}

/** What a client saw. */
export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly cookies: ReadonlyArray<string>
  readonly body: Envelope
  readonly text: string
}

/** How to send a request. */
export interface Send {
  readonly body?: unknown
  /** A body sent as is, with `contentType`. */
  readonly raw?: string
  readonly contentType?: string
  readonly token?: string
  readonly cookie?: string
  readonly headers?: Record<string, string>
}

/** The server under test with the in-memory platform. */
export const layer = (config: Partial<PlatformSettings> = {}, http: Partial<Http.HttpOptions> = {}) =>
  Http.layer({ ...Http.defaults, devMode: false, ...http }).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provideMerge(
      TestPlatform.layer({
        config: { adminEmail: Option.some("admin@example.com"), ...config },
        auth: Layer.orDie(
          PasswordAuth.layer({
            secret: Redacted.make("a-test-secret-that-is-long-enough-for-hs256"),
            argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 }
          })
        )
      })
    )
  )

/** Sends one request and reads everything back. */
export const send = (method: "GET" | "POST" | "PATCH" | "DELETE" | "PUT", path: string, options: Send = {}) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    let request = HttpClientRequest.make(method)(path)
    if (options.raw !== undefined)
      request = HttpClientRequest.bodyText(request, options.raw, options.contentType ?? "application/json")
    else if (options.body !== undefined) request = yield* HttpClientRequest.bodyJson(request, options.body)
    if (options.token !== undefined) request = HttpClientRequest.bearerToken(request, options.token)
    if (options.cookie !== undefined) request = HttpClientRequest.setHeader(request, "cookie", options.cookie)
    if (options.headers !== undefined) request = HttpClientRequest.setHeaders(request, options.headers)
    const response = yield* client.execute(request)
    const text = yield* response.text
    let body: Reply["body"] = {}
    try {
      body = JSON.parse(text)
    } catch {
      body = {}
    }
    const raw = response.headers["set-cookie"] as unknown
    const cookies = raw === undefined ? [] : Array.isArray(raw) ? (raw as Array<string>) : [String(raw)]
    return { status: response.status, headers: response.headers, cookies, body, text } satisfies Reply
  }).pipe(Effect.scoped, Effect.orDie)

let counter = 0
/** A strong password that passes the rules. */
export const password = "Sup3r-secret!"

/** Registers, confirms (token from the in-memory outbox) and logs in a fresh account. */
export const account = (name?: string, options: { readonly email?: string } = {}) =>
  Effect.gen(function* () {
    counter += 1
    const username = name ?? `user${counter}${Math.random().toString(36).slice(2, 6)}`
    const email = options.email ?? `${username}@example.com`
    const registered = yield* send("POST", "/auth/register", { body: { username, email, password } })
    if (registered.status !== 201) return yield* Effect.dieMessage(`register: ${registered.text}`)
    const outbox = yield* InMemoryMailer.Outbox
    const mail = yield* outbox.latestTo(email)
    const token = mail && InMemoryMailer.tokenIn(mail.text)
    if (token === undefined) return yield* Effect.dieMessage("no confirmation mail")
    const confirmed = yield* send("POST", `/auth/confirm/${token}`)
    if (confirmed.status !== 201) return yield* Effect.dieMessage(`confirm: ${confirmed.text}`)
    const login = yield* send("POST", "/auth/login", { body: { email, password } })
    if (login.status !== 201) return yield* Effect.dieMessage(`login: ${login.text}`)
    const user = (yield* send("GET", "/users/my", { token: login.body.content.accessToken })).body.content
    return {
      username,
      email,
      id: user.id as string,
      token: login.body.content.accessToken as string,
      principal: new Principal({ userId: user.id, isAdmin: user.isAdmin })
    }
  })

/** The admin (registered with PAAS_ADMIN_EMAIL of the test layer), created on first use. */
export const admin = Effect.gen(function* () {
  const email = "admin@example.com"
  const login = yield* send("POST", "/auth/login", { body: { email, password } })
  if (login.status !== 201) return yield* account("admin", { email })
  const token: string = login.body.content.accessToken
  const user = (yield* send("GET", "/users/my", { token })).body.content
  return {
    username: user.username as string,
    email,
    id: user.id as string,
    token,
    principal: new Principal({ userId: user.id, isAdmin: user.isAdmin })
  }
})

/** The Platform behind the server, to arrange state the API cannot (a push, say). */
export const platform = Platform
