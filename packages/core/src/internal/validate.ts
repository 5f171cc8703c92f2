// Turns Schema decoding failures into the ValidationError the API reports: the field and the rule.
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ValidationError } from "../Errors.js"

/** Decodes `input`, failing with the first broken rule and the field it concerns. */
export const validate =
  <A, I>(schema: Schema.Schema<A, I>, field?: string) =>
  (input: unknown): Effect.Effect<A, ValidationError> =>
    Schema.decodeUnknown(schema, { errors: "first", onExcessProperty: "ignore" })(input).pipe(
      Effect.mapError((error) => {
        const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
        const name = field ?? (issue?.path[0] !== undefined ? String(issue.path[0]) : "body")
        const message = issue?.message ?? "is invalid"
        // Schema's own messages ("is missing", "is unexpected, …") need the field in front of them.
        const path = [...(field === undefined ? [] : [field]), ...(issue?.path ?? []).map(String)].join(".")
        return new ValidationError({
          field: name,
          message: message.startsWith("is ") ? `${path || name} ${message}` : message
        })
      })
    )
