/**
 * OutboxMailer: the Mailer when no SMTP server is configured. Each message is logged, text
 * included, so the person running the server can read a confirmation token from the log, and
 * kept as an `.eml` file in an outbox folder that any mail client (or `cat`) opens.
 */
import { randomBytes } from "node:crypto"
import { mkdir, rename, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { MailError } from "@paas/core/Errors"
import { type Mail, Mailer } from "@paas/core/Mailer"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** Where messages are kept, and the sender written into them. */
export interface Options {
  /** The outbox folder; created (with its parents) if missing. */
  readonly directory: string
  /** The `From:` header; `PaaS <paas@localhost>` by default. */
  readonly from?: string
}

// Header values must stay on one line, and non-ASCII needs RFC 2047 encoding to be valid mail.
const headerValue = (value: string): string => {
  const line = value.replace(/[\r\n]+/g, " ")
  return /^[\x20-\x7e]*$/.test(line) ? line : `=?UTF-8?B?${Buffer.from(line, "utf8").toString("base64")}?=`
}

const render = (mail: Mail, from: string, date: Date, id: string): string => {
  const headers = [
    `From: ${headerValue(from)}`,
    `To: ${headerValue(mail.to)}`,
    `Subject: ${headerValue(mail.subject)}`,
    `Date: ${date.toUTCString()}`,
    `Message-ID: <${id}@paas.outbox>`,
    "MIME-Version: 1.0"
  ]
  const plain = ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
  if (mail.html === undefined) return `${[...headers, ...plain].join("\n")}\n\n${mail.text}\n`
  const boundary = `=_paas_${id}`
  return [
    ...headers,
    `Content-Type: multipart/alternative; boundary="${boundary}"`,
    "",
    `--${boundary}`,
    ...plain,
    "",
    mail.text,
    `--${boundary}`,
    "Content-Type: text/html; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    mail.html,
    `--${boundary}--`,
    ""
  ].join("\n")
}

/** A Mailer that logs each message and writes it to `<directory>/<timestamp>-<random>.eml`. */
export const make = (options: Options): Effect.Effect<Mailer["Type"], MailError> =>
  Effect.gen(function* () {
    const from = options.from ?? "PaaS <paas@localhost>"
    const ensureDirectory = Effect.tryPromise({
      try: () => mkdir(options.directory, { recursive: true }),
      catch: (cause) =>
        new MailError({ message: `cannot create the outbox folder ${options.directory}`, cause })
    })
    // Fail at start rather than at the first registration if the folder cannot exist.
    yield* ensureDirectory
    return Mailer.of({
      send: (mail) =>
        Effect.gen(function* () {
          const date = new Date(yield* Clock.currentTimeMillis)
          const id = randomBytes(6).toString("hex")
          // Sorts chronologically, and has no ':' so it is a valid name on every file system.
          const name = `${date.toISOString().replace(/:/g, "-")}-${id}.eml`
          const file = join(options.directory, name)
          // Logged first, so the token is readable even when the disk is full.
          yield* Effect.logInfo(`Mail to ${mail.to}: "${mail.subject}" (kept in ${file})\n${mail.text}`)
          yield* ensureDirectory
          // Written under a hidden name, then renamed: a reader never sees half a message.
          yield* Effect.tryPromise({
            try: async () => {
              const temporary = join(options.directory, `.${name}.tmp`)
              await writeFile(temporary, render(mail, from, date, id), { mode: 0o600 })
              await rename(temporary, file)
            },
            catch: (cause) => new MailError({ message: `cannot write ${file}`, cause })
          })
        })
    })
  })

/** The outbox Mailer as a layer. */
export const layer = (options: Options): Layer.Layer<Mailer, MailError> => Layer.effect(Mailer, make(options))
