/**
 * The versioned schema, in order. Add a migration as `NNNN_name.ts` and list it here; never edit
 * one that has shipped, since databases remember which ids they ran.
 */
import * as Migrator from "@effect/sql/Migrator"
import initial from "./0001_initial.js"
import sessions from "./0002_sessions.js"

/** The loader for `PgMigrator.layer`. */
export const loader: Migrator.Loader = Migrator.fromRecord({
  "0001_initial": initial,
  "0002_sessions": sessions
})
