import { randomUUID } from "node:crypto"
import { type AddressInfo, createServer } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Mailer } from "@paas/core/Mailer"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { SMTPServer } from "smtp-server"
import * as SmtpMailer from "../src/SmtpMailer.js"
import { parseMime } from "./support.js"

interface Received {
  readonly from: string
  readonly to: ReadonlyArray<string>
  readonly user: string | undefined
  readonly raw: string
}

// A real SMTP server on 127.0.0.1 and a free port; it keeps every message and every closed
// connection, and stops with the scope.
const smtpServer = (options: { readonly users?: Record<string, string> } = {}) =>
  Effect.gen(function* () {
    const messages = yield* Queue.unbounded<Received>()
    const closed = yield* Queue.unbounded<string>()
    const server = new SMTPServer({
      authOptional: true,
      allowInsecureAuth: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onAuth: (auth, _session, callback) =>
        options.users !== undefined && options.users[auth.username ?? ""] === auth.password
          ? callback(null, { user: auth.username })
          : callback(new Error("bad credentials")),
      onData: (stream, session, callback) => {
        const chunks: Array<Buffer> = []
        stream.on("data", (chunk: Buffer) => chunks.push(chunk))
        stream.on("end", () => {
          Queue.unsafeOffer(messages, {
            from: session.envelope.mailFrom === false ? "" : session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
            user: session.user as string | undefined,
            raw: Buffer.concat(chunks).toString("utf8")
          })
          callback()
        })
      },
      onClose: (session) => Queue.unsafeOffer(closed, session.id)
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number>((resume) => {
        server.listen(0, "127.0.0.1", () =>
          resume(Effect.succeed((server.server.address() as AddressInfo).port))
        )
      }),
      () => Effect.async<void>((resume) => server.close(() => resume(Effect.void)))
    )
    return { port, messages, closed }
  })

// A port nothing listens on: bound once by us, then released.
const closedPort = Effect.async<number>((resume) => {
  const probe = createServer()
  probe.listen(0, "127.0.0.1", () => {
    const { port } = probe.address() as AddressInfo
    probe.close(() => resume(Effect.succeed(port)))
  })
})

const from = "PaaS <noreply@paas.test>"

describe("SmtpMailer", () => {
  it.scoped("delivers subject, recipient, and text and HTML parts carrying the token", () =>
    Effect.gen(function* () {
      const smtp = yield* smtpServer()
      const token = randomUUID()
      yield* Effect.flatMap(Mailer, (mailer) =>
        mailer.send({
          to: "alice@example.com",
          subject: "Confirm your email",
          text: `Confirm here:\n\nhttp://127.0.0.1:3000/auth/confirm/${token}\n\nToken: ${token}\n`,
          html: `<p>Confirm here:</p><p>Token: <code>${token}</code></p>`
        })
      ).pipe(Effect.provide(SmtpMailer.layer({ url: Redacted.make(`smtp://127.0.0.1:${smtp.port}`), from })))
      const received = yield* Queue.take(smtp.messages)
      assert.strictEqual(received.from, "noreply@paas.test")
      assert.deepStrictEqual(received.to, ["alice@example.com"])
      const message = parseMime(received.raw)
      assert.strictEqual(message.headers.subject, "Confirm your email")
      assert.strictEqual(message.headers.to, "alice@example.com")
      assert.strictEqual(message.headers.from, from)
      assert.match(message.headers["content-type"] ?? "", /^multipart\/alternative/)
      const text = message.parts.find((p) => p.headers["content-type"]?.startsWith("text/plain"))
      const html = message.parts.find((p) => p.headers["content-type"]?.startsWith("text/html"))
      assert.include(text?.body, `/auth/confirm/${token}`)
      assert.include(text?.body, `Token: ${token}`)
      assert.include(html?.body, `<code>${token}</code>`)
    })
  )

  it.scoped("sends a text-only mail as one text/plain body, and non-ASCII intact", () =>
    Effect.gen(function* () {
      const smtp = yield* smtpServer()
      const mailer = yield* SmtpMailer.make({ url: Redacted.make(`smtp://127.0.0.1:${smtp.port}`), from })
      yield* mailer.send({ to: "bob@example.com", subject: "Réinitialisez — reset", text: "Bonjour Zoë ✓\n" })
      const message = parseMime((yield* Queue.take(smtp.messages)).raw)
      assert.match(message.headers["content-type"] ?? "", /^text\/plain/)
      assert.lengthOf(message.parts, 0)
      assert.include(message.body, "Bonjour Zoë ✓")
    })
  )

  it.scoped("logs in with the credentials in the URL", () =>
    Effect.gen(function* () {
      const smtp = yield* smtpServer({ users: { mailer: "p@ss word" } })
      const url = `smtp://mailer:${encodeURIComponent("p@ss word")}@127.0.0.1:${smtp.port}`
      const mailer = yield* SmtpMailer.make({ url: Redacted.make(url), from })
      yield* mailer.send({ to: "carol@example.com", subject: "Hi", text: "hello" })
      assert.strictEqual((yield* Queue.take(smtp.messages)).user, "mailer")

      const wrong = yield* SmtpMailer.make({
        url: Redacted.make(`smtp://mailer:nope@127.0.0.1:${smtp.port}`),
        from
      })
      const error = yield* Effect.flip(wrong.send({ to: "carol@example.com", subject: "Hi", text: "hello" }))
      assert.strictEqual(error._tag, "MailError")
      assert.isDefined(error.cause)
      assert.notInclude(error.message, "nope")
    })
  )

  it.scoped("fails with a MailError carrying the cause when the server is unreachable", () =>
    Effect.gen(function* () {
      const port = yield* closedPort
      const mailer = yield* SmtpMailer.make({ url: Redacted.make(`smtp://127.0.0.1:${port}`), from })
      const error = yield* Effect.flip(mailer.send({ to: "dave@example.com", subject: "Hi", text: "x" }))
      assert.strictEqual(error._tag, "MailError")
      assert.include(error.message, "dave@example.com")
      assert.strictEqual((error.cause as NodeJS.ErrnoException).code, "ESOCKET")
      assert.include(String((error.cause as Error).message), "ECONNREFUSED")
    })
  )

  it.scoped("refuses a URL that is not smtp:// or smtps:// without quoting it", () =>
    Effect.gen(function* () {
      for (const url of ["not a url with secret-pass", "http://user:secret-pass@mail.example.com"]) {
        const error = yield* Effect.flip(SmtpMailer.make({ url: Redacted.make(url), from }))
        assert.strictEqual(error._tag, "MailError")
        assert.notInclude(error.message, "secret-pass")
      }
    })
  )

  it.scoped("closes the transporter, and its pooled connection, when the layer is released", () =>
    Effect.gen(function* () {
      const smtp = yield* smtpServer()
      const scope = yield* Scope.make()
      const mailer = yield* SmtpMailer.make({
        url: Redacted.make(`smtp://127.0.0.1:${smtp.port}?pool=true`),
        from
      }).pipe(Scope.extend(scope))
      yield* mailer.send({ to: "erin@example.com", subject: "One", text: "1" })
      yield* mailer.send({ to: "erin@example.com", subject: "Two", text: "2" })
      assert.strictEqual((yield* Queue.takeAll(smtp.messages)).length, 2)
      // The pool keeps its connection open while the layer lives...
      assert.strictEqual(yield* Queue.size(smtp.closed), 0)
      yield* Scope.close(scope, Exit.void)
      // ...and closing the scope hangs up.
      assert.isString(yield* Queue.take(smtp.closed))
    })
  )
})
