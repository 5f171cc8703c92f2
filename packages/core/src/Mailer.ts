/**
 * Mailer: sends the account emails (confirmation, password reset).
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { MailError } from "./Errors.js"

/** A message to one recipient, in plain text and optionally HTML. */
export interface Mail {
  readonly to: string
  readonly subject: string
  readonly text: string
  readonly html?: string
}

/** Sends mail. */
export class Mailer extends Context.Tag("@paas/core/Mailer")<
  Mailer,
  { readonly send: (mail: Mail) => Effect.Effect<void, MailError> }
>() {}
