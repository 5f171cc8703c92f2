// URL checks shared by the configuration and the database layers, without the database's imports
// (the configuration is read before anything heavy is loaded).
import * as Redacted from "effect/Redacted"

/** Whether a database URL is one PostgreSQL clients take: `postgres://` or `postgresql://`. */
export const isPostgresUrl = (url: Redacted.Redacted): boolean => {
  try {
    const { protocol } = new URL(Redacted.value(url))
    return protocol === "postgres:" || protocol === "postgresql:"
  } catch {
    return false
  }
}
