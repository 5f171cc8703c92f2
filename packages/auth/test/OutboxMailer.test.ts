import { randomUUID } from "node:crypto"
import { readdir, readFile, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Mailer } from "@paas/core/Mailer"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as OutboxMailer from "../src/OutboxMailer.js"
import { captureLogs, parseMime, scratchDir, uuidIn } from "./support.js"

const listEml = (dir: string) =>
  Effect.promise(async () => (await readdir(dir)).filter((name) => name.endsWith(".eml")).sort())

describe("OutboxMailer", () => {
  it.scoped("logs the mail with its token and writes it as a readable .eml file", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.parse("2030-01-02T03:04:05.678Z"))
      const outbox = join(yield* scratchDir, "outbox", "not-yet-there")
      const token = randomUUID()
      const { lines } = yield* captureLogs(
        Effect.flatMap(Mailer, (mailer) =>
          mailer.send({
            to: "alice@example.com",
            subject: "Confirm your email",
            text: `Confirm here:\n\nhttp://127.0.0.1:3000/auth/confirm/${token}\n\nToken: ${token}\n`,
            html: `<p>Token: <code>${token}</code></p>`
          })
        ).pipe(Effect.provide(OutboxMailer.layer({ directory: outbox })))
      )

      const logged = lines.find((line) => line.startsWith("INFO") && line.includes("alice@example.com"))
      assert.isDefined(logged)
      assert.include(logged, "Confirm your email")
      assert.strictEqual(uuidIn(logged ?? ""), token)

      const files = yield* listEml(outbox)
      assert.lengthOf(files, 1)
      assert.match(files[0]!, /^2030-01-02T03-04-05\.678Z-[0-9a-f]{12}\.eml$/)
      assert.include(logged, files[0]!)
      // Nothing half-written is left beside it.
      assert.deepStrictEqual(yield* Effect.promise(() => readdir(outbox)), files)

      const content = yield* Effect.promise(() => readFile(join(outbox, files[0]!), "utf8"))
      const message = parseMime(content)
      assert.strictEqual(message.headers.to, "alice@example.com")
      assert.strictEqual(message.headers.subject, "Confirm your email")
      assert.strictEqual(message.headers.from, "PaaS <paas@localhost>")
      assert.strictEqual(message.headers.date, "Wed, 02 Jan 2030 03:04:05 GMT")
      const [text, html] = message.parts
      assert.match(text?.headers["content-type"] ?? "", /^text\/plain; charset=utf-8/)
      assert.include(text?.body, `Token: ${token}`)
      assert.match(html?.headers["content-type"] ?? "", /^text\/html/)
      assert.include(html?.body, `<code>${token}</code>`)
    })
  )

  it.scoped("keeps one file per mail, in order, recreating the folder if it disappears", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.parse("2030-01-01T00:00:00Z"))
      const outbox = join(yield* scratchDir, "outbox")
      const mailer = yield* OutboxMailer.make({ directory: outbox, from: "Ops <ops@example.com>" })
      yield* mailer.send({ to: "a@example.com", subject: "first", text: "1" })
      yield* TestClock.adjust("1 second")
      yield* mailer.send({ to: "b@example.com", subject: "second", text: "2" })
      const files = yield* listEml(outbox)
      assert.lengthOf(files, 2)
      const subjects = yield* Effect.forEach(files, (file) =>
        Effect.promise(() => readFile(join(outbox, file), "utf8")).pipe(
          Effect.map((content) => parseMime(content).headers.subject)
        )
      )
      assert.deepStrictEqual(subjects, ["first", "second"])

      yield* Effect.promise(() => rm(outbox, { recursive: true }))
      yield* mailer.send({ to: "c@example.com", subject: "third", text: "3" })
      const after = yield* listEml(outbox)
      assert.lengthOf(after, 1)
      const content = yield* Effect.promise(() => readFile(join(outbox, after[0]!), "utf8"))
      assert.include(content, "From: Ops <ops@example.com>")
      assert.match(parseMime(content).headers["content-type"] ?? "", /^text\/plain/)
      assert.strictEqual(parseMime(content).body, "3\n")
    })
  )

  it.scoped("keeps headers on one line and encodes non-ASCII subjects", () =>
    Effect.gen(function* () {
      const outbox = yield* scratchDir
      const mailer = yield* OutboxMailer.make({ directory: outbox })
      yield* mailer.send({ to: "x@example.com\r\nBcc: evil@example.com", subject: "Zoë ✓", text: "hi" })
      const [file] = yield* listEml(outbox)
      const content = yield* Effect.promise(() => readFile(join(outbox, file!), "utf8"))
      assert.notMatch(content, /^Bcc:/m)
      const subject = parseMime(content).headers.subject ?? ""
      const encoded = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]+)\?=$/.exec(subject)?.[1]
      assert.strictEqual(Buffer.from(encoded ?? "", "base64").toString("utf8"), "Zoë ✓")
    })
  )

  it.scoped("fails with a MailError when the folder cannot be created", () =>
    Effect.gen(function* () {
      const dir = yield* scratchDir
      const blocker = join(dir, "a-file")
      yield* Effect.promise(() => writeFile(blocker, ""))
      const error = yield* Effect.flip(OutboxMailer.make({ directory: join(blocker, "outbox") }))
      assert.strictEqual(error._tag, "MailError")
      assert.strictEqual((error.cause as NodeJS.ErrnoException).code, "ENOTDIR")
    })
  )
})
