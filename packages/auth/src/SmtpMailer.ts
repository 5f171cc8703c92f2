/**
 * SmtpMailer: the Mailer over SMTP, with nodemailer. One transporter lives as long as the layer;
 * closing the layer's scope closes it (and its pooled connections, with `?pool=true`).
 */
import { MailError } from "@paas/core/Errors"
import { type Mail, Mailer } from "@paas/core/Mailer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import nodemailer from "nodemailer"

/** Where to send mail, and as whom. */
export interface Options {
  /** `smtp://[user:pass@]host[:port]` or `smtps://…`; nodemailer's query options apply (`?pool=true`). */
  readonly url: Redacted.Redacted<string>
  /** The sender, e.g. `PaaS <noreply@example.com>`. */
  readonly from: string
}

// The URL carries a password: check its shape here so no error message ever has to quote it.
const checkUrl = (url: string): MailError | undefined => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return new MailError({ message: "the SMTP URL is not a URL: use smtp://user:pass@host:port" })
  }
  if (parsed.protocol !== "smtp:" && parsed.protocol !== "smtps:")
    return new MailError({
      message: `the SMTP URL must start with smtp:// or smtps://, not ${parsed.protocol}//`
    })
  if (parsed.hostname === "") return new MailError({ message: "the SMTP URL has no host" })
  return undefined
}

/** A Mailer over one nodemailer transporter, closed when the scope closes. */
export const make = (options: Options): Effect.Effect<Mailer["Type"], MailError, Scope.Scope> =>
  Effect.gen(function* () {
    const url = Redacted.value(options.url)
    const invalid = checkUrl(url)
    if (invalid !== undefined) return yield* invalid
    const transporter = yield* Effect.acquireRelease(
      Effect.try({
        try: () => nodemailer.createTransport(url),
        catch: (cause) => new MailError({ message: "could not set up the SMTP transport", cause })
      }),
      (transporter) => Effect.sync(() => transporter.close())
    )
    return Mailer.of({
      send: (mail: Mail) =>
        Effect.tryPromise({
          try: () =>
            transporter.sendMail({
              from: options.from,
              to: mail.to,
              subject: mail.subject,
              text: mail.text,
              ...(mail.html === undefined ? {} : { html: mail.html })
            }),
          catch: (cause) =>
            new MailError({
              message: `could not send "${mail.subject}" to ${mail.to}: ${cause instanceof Error ? cause.message : String(cause)}`,
              cause
            })
        }).pipe(Effect.asVoid)
    })
  })

/** The SMTP Mailer as a scoped layer. */
export const layer = (options: Options): Layer.Layer<Mailer, MailError> => Layer.scoped(Mailer, make(options))
