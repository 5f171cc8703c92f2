/**
 * The HTTP API's public and account routes, in-process: the envelope, validation, login and its
 * cookie, rate limits, password resets, and what the protocol around the routes answers (404,
 * 405, 415, 413, OpenAPI, docs).
 */
import { assert, describe, it } from "@effect/vitest"
import { InMemoryMailer } from "@paas/core/testing"
import * as Effect from "effect/Effect"
import { account, layer, password, send } from "./support/api.js"

describe("HTTP API: protocol and accounts", () => {
  it.layer(layer())((it) => {
    it.effect("GET /healthz answers the plain envelope", () =>
      Effect.gen(function* () {
        const reply = yield* send("GET", "/healthz")
        assert.strictEqual(reply.status, 200)
        assert.deepStrictEqual(reply.body, { status: "OK" })
        assert.match(reply.headers["content-type"] ?? "", /application\/json/)
      })
    )

    it.effect("an unknown route is 404 with the envelope", () =>
      Effect.gen(function* () {
        const reply = yield* send("GET", "/nothing/here")
        assert.strictEqual(reply.status, 404)
        assert.strictEqual(reply.body.status, "not_found")
        assert.isString(reply.body.message)
      })
    )

    it.effect("a known path with the wrong method is 405 with Allow", () =>
      Effect.gen(function* () {
        const reply = yield* send("PUT", "/projects/my")
        assert.strictEqual(reply.status, 405)
        assert.strictEqual(reply.body.status, "method_not_allowed")
        assert.strictEqual(reply.headers.allow, "GET")
        const deploy = yield* send("GET", "/projects/3f1c2a52-6d5e-4a55-9f3b-2f0f6f1f5e11/deploy")
        assert.strictEqual(deploy.status, 405)
        assert.strictEqual(deploy.headers.allow, "PATCH")
      })
    )

    it.effect("a body that is not JSON is 415; malformed JSON is 400; over 1 MiB is 413", () =>
      Effect.gen(function* () {
        const form = yield* send("POST", "/auth/login", {
          raw: "email=a",
          contentType: "application/x-www-form-urlencoded"
        })
        assert.strictEqual(form.status, 415)
        assert.strictEqual(form.body.status, "unsupported_media_type")
        const broken = yield* send("POST", "/auth/login", {
          raw: '{"email": "a@',
          contentType: "application/json"
        })
        assert.strictEqual(broken.status, 400)
        assert.strictEqual(broken.body.status, "invalid")
        const big = yield* send("POST", "/auth/login", {
          raw: JSON.stringify({ email: "a@b.c", password: "x".repeat(1024 * 1024 + 10) })
        })
        assert.strictEqual(big.status, 413)
        assert.strictEqual(big.body.status, "payload_too_large")
      })
    )

    it.effect("a missing or mistyped field is 400 naming the field, without echoing the value", () =>
      Effect.gen(function* () {
        const missing = yield* send("POST", "/auth/login", { body: { email: "a@example.com" } })
        assert.strictEqual(missing.status, 400)
        assert.strictEqual(missing.body.status, "invalid")
        assert.strictEqual(missing.body.content.field, "password")
        assert.include(missing.body.message, "password")
        const typed = yield* send("POST", "/auth/login", {
          body: { email: "a@example.com", password: 12345678 }
        })
        assert.strictEqual(typed.status, 400)
        assert.strictEqual(typed.body.content.field, "password")
        assert.notInclude(typed.text, "12345678")
        const empty = yield* send("POST", "/auth/login")
        assert.strictEqual(empty.status, 400)
        assert.strictEqual(empty.body.status, "invalid")
      })
    )

    it.effect("GET /openapi.json describes every route; GET /docs serves a page", () =>
      Effect.gen(function* () {
        const spec = yield* send("GET", "/openapi.json")
        assert.strictEqual(spec.status, 200)
        const paths = Object.keys((spec.body as unknown as { paths: Record<string, unknown> }).paths)
        for (const path of [
          "/healthz",
          "/auth/register",
          "/auth/confirm/{token}",
          "/auth/login",
          "/auth/logout",
          "/auth/password/request",
          "/auth/password/reset/{token}",
          "/users/my",
          "/users",
          "/users/{username}",
          "/sshkeys/my",
          "/sshkeys/my/{uuid}",
          "/sshkeys",
          "/projects",
          "/projects/my",
          "/projects/{uuid}",
          "/projects/{uuid}/deploy",
          "/projects/{uuid}/domains",
          "/projects/{uuid}/stop",
          "/projects/{uuid}/logs",
          "/projects/{uuid}/statistics",
          "/projects/status"
        ])
          assert.include(paths, path)
        const docs = yield* send("GET", "/docs")
        assert.strictEqual(docs.status, 200)
        assert.match(docs.headers["content-type"] ?? "", /text\/html/)
      })
    )

    it.effect("register answers 201 with the user and never its secrets", () =>
      Effect.gen(function* () {
        const reply = yield* send("POST", "/auth/register", {
          body: { username: "ada", email: "ada@example.com", password }
        })
        assert.strictEqual(reply.status, 201)
        assert.strictEqual(reply.body.status, "OK")
        assert.deepStrictEqual(Object.keys(reply.body.content).sort(), [
          "createdAt",
          "email",
          "id",
          "isAdmin",
          "updatedAt",
          "username"
        ])
        assert.strictEqual(reply.body.content.username, "ada")
        assert.isFalse(reply.body.content.isAdmin)
        assert.notInclude(reply.text, password)
      })
    )

    it.effect("register validates each field and names it", () =>
      Effect.gen(function* () {
        const cases: Array<[Record<string, unknown>, string]> = [
          [{ username: "ab", email: "x@example.com", password }, "username"],
          [{ username: "1abc", email: "x@example.com", password }, "username"],
          [{ username: "abc-", email: "x@example.com", password }, "username"],
          [{ username: "a".repeat(31), email: "x@example.com", password }, "username"],
          [{ username: "valid", email: "not-an-email", password }, "email"],
          [{ username: "valid", email: `${"e".repeat(95)}@x.com`, password }, "email"],
          [{ username: "valid", email: "x@example.com", password: "Short1!" }, "password"],
          [{ username: "valid", email: "x@example.com", password: "alllowercase1!" }, "password"],
          [{ username: "valid", email: "x@example.com", password: `Aa1!${"x".repeat(69)}` }, "password"]
        ]
        for (const [body, field] of cases) {
          const reply = yield* send("POST", "/auth/register", { body })
          assert.strictEqual(reply.status, 400, JSON.stringify(body))
          assert.strictEqual(reply.body.status, "invalid")
          assert.strictEqual(reply.body.content.field, field)
          assert.include(reply.body.message, field)
        }
        // The boundaries are accepted: 3 and 30 characters, 72 bytes.
        for (const username of ["abc", `a${"b".repeat(28)}c`]) {
          const ok = yield* send("POST", "/auth/register", {
            body: { username, email: `${username}@example.com`, password: `Aa1!${"x".repeat(68)}` }
          })
          assert.strictEqual(ok.status, 201, ok.text)
        }
      })
    )

    it.effect("a taken username or email is 409", () =>
      Effect.gen(function* () {
        const first = yield* account()
        const sameName = yield* send("POST", "/auth/register", {
          body: { username: first.username, email: "other@example.com", password }
        })
        assert.strictEqual(sameName.status, 409)
        assert.strictEqual(sameName.body.status, "conflict")
        const sameEmail = yield* send("POST", "/auth/register", {
          body: { username: "someoneelse", email: first.email, password }
        })
        assert.strictEqual(sameEmail.status, 409)
      })
    )

    it.effect("confirmation: unknown or non-UUID tokens are 400; a token works once", () =>
      Effect.gen(function* () {
        const notUuid = yield* send("POST", "/auth/confirm/abc")
        assert.strictEqual(notUuid.status, 400)
        assert.strictEqual(notUuid.body.content.field, "token")
        const unknown = yield* send("POST", "/auth/confirm/6b1f5d4e-2c3a-4b5d-8e9f-0a1b2c3d4e5f")
        assert.strictEqual(unknown.status, 400)
        yield* send("POST", "/auth/register", {
          body: { username: "cleo", email: "cleo@example.com", password }
        })
        const outbox = yield* InMemoryMailer.Outbox
        const mail = yield* outbox.latestTo("cleo@example.com")
        assert.isDefined(mail)
        const token = InMemoryMailer.tokenIn(mail!.text)!
        assert.include(mail!.text, `/auth/confirm/${token}`)
        assert.strictEqual((yield* send("POST", `/auth/confirm/${token}`)).status, 201)
        assert.strictEqual((yield* send("POST", `/auth/confirm/${token}`)).status, 400)
      })
    )

    it.effect("the links in account emails open pages that spend nothing until their button is pressed", () =>
      Effect.gen(function* () {
        yield* send("POST", "/auth/register", {
          body: { username: "dana", email: "dana@example.com", password }
        })
        const outbox = yield* InMemoryMailer.Outbox
        const confirmToken = InMemoryMailer.tokenIn((yield* outbox.latestTo("dana@example.com"))!.text)!
        const opened = yield* send("GET", `/auth/confirm/${confirmToken}`)
        assert.strictEqual(opened.status, 200)
        assert.match(opened.headers["content-type"] ?? "", /^text\/html/)
        assert.include(opened.text, "Confirm my email")
        assert.notInclude(opened.text, confirmToken, "the page does not repeat the token")
        assert.strictEqual(opened.headers["cache-control"], "no-store")
        assert.strictEqual(opened.headers["referrer-policy"], "no-referrer")
        assert.include(opened.headers["content-security-policy"] ?? "", "default-src 'none'")
        // Opening the page twice (a link scanner, then the person) still leaves the token to spend.
        yield* send("GET", `/auth/confirm/${confirmToken}`)
        assert.strictEqual((yield* send("POST", `/auth/confirm/${confirmToken}`)).status, 201)
        assert.strictEqual((yield* send("GET", "/auth/confirm/not-a-uuid")).status, 400)

        yield* send("POST", "/auth/password/request", { body: { email: "dana@example.com" } })
        const resetToken = InMemoryMailer.tokenIn((yield* outbox.latestTo("dana@example.com"))!.text)!
        const form = yield* send("GET", `/auth/password/reset/${resetToken}`)
        assert.strictEqual(form.status, 200)
        assert.include(form.text, 'name="passwordVerification"')
        const newPassword = "Y3t-another-secret"
        const reset = yield* send("POST", `/auth/password/reset/${resetToken}`, {
          body: { password: newPassword, passwordVerification: newPassword }
        })
        assert.strictEqual(reset.status, 201)
      })
    )

    it.effect("login before confirming is refused; a wrong password is refused alike", () =>
      Effect.gen(function* () {
        yield* send("POST", "/auth/register", {
          body: { username: "dora", email: "dora@example.com", password }
        })
        const unconfirmed = yield* send("POST", "/auth/login", {
          body: { email: "dora@example.com", password }
        })
        assert.strictEqual(unconfirmed.status, 401)
        assert.strictEqual(unconfirmed.body.status, "refused")
        assert.include(unconfirmed.body.message, "confirm")
        const known = yield* account()
        const wrong = yield* send("POST", "/auth/login", {
          body: { email: known.email, password: "Wrong-pass1" }
        })
        assert.strictEqual(wrong.status, 401)
        assert.strictEqual(wrong.body.status, "refused")
        const nobody = yield* send("POST", "/auth/login", { body: { email: "nobody@example.com", password } })
        assert.strictEqual(nobody.status, 401)
        assert.strictEqual(nobody.body.message, wrong.body.message)
      })
    )

    it.effect("login sets the access cookie (HttpOnly, SameSite, Secure, 6 h) holding the token", () =>
      Effect.gen(function* () {
        const user = yield* account()
        const login = yield* send("POST", "/auth/login", { body: { email: user.email, password } })
        assert.strictEqual(login.status, 201)
        const token: string = login.body.content.accessToken
        const cookie = login.cookies.find((c) => c.startsWith("access="))
        assert.isDefined(cookie)
        assert.include(cookie!, `access=${token}`)
        assert.match(cookie!, /HttpOnly/i)
        assert.match(cookie!, /SameSite=Lax/i)
        assert.match(cookie!, /Secure/i)
        assert.match(cookie!, /Max-Age=21600/i)
        assert.match(cookie!, /Path=\//i)
        // Both the cookie and the bearer token authenticate.
        assert.strictEqual((yield* send("GET", "/users/my", { cookie: `access=${token}` })).status, 200)
        assert.strictEqual((yield* send("GET", "/users/my", { token })).status, 200)
      })
    )

    it.effect("authenticated routes refuse no token, a bad token and a bad cookie with 401", () =>
      Effect.gen(function* () {
        for (const options of [{}, { token: "nonsense" }, { cookie: "access=nonsense" }]) {
          const reply = yield* send("GET", "/users/my", options)
          assert.strictEqual(reply.status, 401)
          assert.strictEqual(reply.body.status, "unauthorized")
        }
        assert.strictEqual((yield* send("POST", "/auth/logout")).status, 401)
      })
    )

    it.effect("logout clears the cookie and ends that session, and only that one", () =>
      Effect.gen(function* () {
        const user = yield* account()
        const other = yield* send("POST", "/auth/login", { body: { email: user.email, password } })
        const otherToken: string = other.body.content.accessToken
        const reply = yield* send("POST", "/auth/logout", { token: user.token })
        assert.strictEqual(reply.status, 200)
        assert.deepStrictEqual(reply.body.status, "OK")
        const cleared = reply.cookies.find((c) => c.startsWith("access="))
        assert.isDefined(cleared)
        assert.match(cleared!, /^access=;/)
        assert.match(cleared!, /Max-Age=0/i)
        // A copy of the token kept by the client (or stolen) no longer opens anything.
        const after = yield* send("GET", "/users/my", { token: user.token })
        assert.strictEqual(after.status, 401)
        assert.strictEqual((yield* send("POST", "/auth/logout", { token: user.token })).status, 401)
        // The account's other session (another device) goes on.
        assert.strictEqual((yield* send("GET", "/users/my", { token: otherToken })).status, 200)
        // The cookie ends its session the same way.
        const cookieLogout = yield* send("POST", "/auth/logout", { cookie: `access=${otherToken}` })
        assert.strictEqual(cookieLogout.status, 200)
        assert.strictEqual((yield* send("GET", "/users/my", { token: otherToken })).status, 401)
        // Logging in again gives a session that works.
        const again = yield* send("POST", "/auth/login", { body: { email: user.email, password } })
        assert.strictEqual(
          (yield* send("GET", "/users/my", { token: again.body.content.accessToken })).status,
          200
        )
      })
    )

    it.effect("password reset: same answer for any email; the newest token works once", () =>
      Effect.gen(function* () {
        const user = yield* account()
        const outbox = yield* InMemoryMailer.Outbox
        const known = yield* send("POST", "/auth/password/request", { body: { email: user.email } })
        const unknown = yield* send("POST", "/auth/password/request", {
          body: { email: "ghost@example.com" }
        })
        assert.strictEqual(known.status, 201)
        assert.strictEqual(unknown.status, 201)
        assert.deepStrictEqual(known.body, unknown.body)
        const first = InMemoryMailer.tokenIn((yield* outbox.latestTo(user.email))!.text)!
        yield* send("POST", "/auth/password/request", { body: { email: user.email } })
        const second = InMemoryMailer.tokenIn((yield* outbox.latestTo(user.email))!.text)!
        assert.notStrictEqual(first, second)
        const newPassword = "An0ther-secret!"
        const mismatch = yield* send("POST", `/auth/password/reset/${second}`, {
          body: { password: newPassword, passwordVerification: "different" }
        })
        assert.strictEqual(mismatch.status, 400)
        assert.strictEqual(mismatch.body.content.field, "passwordVerification")
        const weak = yield* send("POST", `/auth/password/reset/${second}`, {
          body: { password: "weak", passwordVerification: "weak" }
        })
        assert.strictEqual(weak.status, 400)
        assert.strictEqual(weak.body.content.field, "password")
        const replaced = yield* send("POST", `/auth/password/reset/${first}`, {
          body: { password: newPassword, passwordVerification: newPassword }
        })
        assert.strictEqual(replaced.status, 400)
        const reset = yield* send("POST", `/auth/password/reset/${second}`, {
          body: { password: newPassword, passwordVerification: newPassword }
        })
        assert.strictEqual(reset.status, 201)
        const spent = yield* send("POST", `/auth/password/reset/${second}`, {
          body: { password: newPassword, passwordVerification: newPassword }
        })
        assert.strictEqual(spent.status, 400)
        assert.strictEqual(
          (yield* send("POST", "/auth/login", { body: { email: user.email, password: newPassword } })).status,
          201
        )
        assert.strictEqual(
          (yield* send("POST", "/auth/login", { body: { email: user.email, password } })).status,
          401
        )
      })
    )

    it.effect("the account registered with PAAS_ADMIN_EMAIL is an admin", () =>
      Effect.gen(function* () {
        const admin = yield* account("root", { email: "admin@example.com" })
        const me = yield* send("GET", "/users/my", { token: admin.token })
        assert.isTrue(me.body.content.isAdmin)
      })
    )
  })
})
