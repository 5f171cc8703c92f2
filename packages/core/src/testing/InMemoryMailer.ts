/**
 * Mailer in memory: every message lands in an outbox a test can read; a test can make the next
 * send fail.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { MailError } from "../Errors.js"
import { type Mail, Mailer } from "../Mailer.js"

/** The outbox and failure switch of the in-memory mailer. */
export class Outbox extends Context.Tag("@paas/core/testing/Outbox")<
  Outbox,
  {
    /** Every message sent so far, oldest first. */
    readonly messages: Effect.Effect<ReadonlyArray<Mail>>
    /** The newest message to `to`, if any. */
    readonly latestTo: (to: string) => Effect.Effect<Mail | undefined>
    /** Makes the next send fail with `message`. */
    readonly failNext: (message: string) => Effect.Effect<void>
  }
>() {}

/** An empty outbox providing both the Mailer and its Outbox. */
export const layer: Layer.Layer<Mailer | Outbox> = Layer.effectContext(
  Effect.sync(() => {
    const sent: Array<Mail> = []
    let failure: string | undefined
    const mailer = Mailer.of({
      send: (mail) =>
        Effect.suspend(() => {
          if (failure !== undefined) {
            const message = failure
            failure = undefined
            return Effect.fail(new MailError({ message }))
          }
          sent.push(mail)
          return Effect.void
        })
    })
    const outbox = Outbox.of({
      messages: Effect.sync(() => [...sent]),
      latestTo: (to) => Effect.sync(() => sent.findLast((m) => m.to === to)),
      failNext: (message) =>
        Effect.sync(() => {
          failure = message
        })
    })
    return Context.make(Mailer, mailer).pipe(Context.add(Outbox, outbox))
  })
)

/** The first UUID in a text (the token in a confirmation or reset mail). */
export const tokenIn = (text: string): string | undefined =>
  /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.exec(text)?.[0]
