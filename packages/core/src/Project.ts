/**
 * Projects: an app, its git repository (named by the project id) and its configuration.
 */
import * as Schema from "effect/Schema"
import { UserId } from "./User.js"

/** The id of a project (a UUID); also its repository's name and part of its host name. */
export const ProjectId = Schema.UUID.pipe(Schema.brand("ProjectId"))
/** The id of a project (a UUID); also its repository's name and part of its host name. */
export type ProjectId = typeof ProjectId.Type

/** 1–30 characters. */
export const ProjectName = Schema.String.pipe(
  Schema.minLength(1, { message: () => "name must not be empty" }),
  Schema.maxLength(30, { message: () => "name must be at most 30 characters" })
)

/** An environment variable name as POSIX shells accept it. */
export const EnvName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,254}$/, {
    message: () => "env_vars keys must be letters, digits and '_' and not start with a digit"
  })
)

/** Environment variables: names to string values. */
export const Env = Schema.Record({ key: EnvName, value: Schema.String }).annotations({
  // A name that breaks the rule is an error, not a key silently dropped.
  parseOptions: { onExcessProperty: "error" }
})
/** Environment variables: names to string values. */
export type Env = typeof Env.Type

const LABEL = "(?!-)[a-z0-9-]{1,63}(?<!-)"

/** A custom host name an app also answers at: lower-case DNS labels, at least two, no trailing dot. */
export const Domain = Schema.String.pipe(
  Schema.maxLength(253, { message: () => "domains must be at most 253 characters" }),
  Schema.pattern(new RegExp(`^${LABEL}(\\.${LABEL})+$`), {
    message: () => "domains must be host names like app.example.com (letters, digits, '-' and dots)"
  }),
  // A top-level label is never all digits: that would be an IP address, not a name.
  Schema.filter(
    (s) => /[a-z]/.test(s.slice(s.lastIndexOf(".") + 1)) || "domains must be names, not IP addresses"
  )
)

/** At most this many custom domains per project. */
export const MAX_DOMAINS = 20

/**
 * What a project keeps as its configuration: `config.env` in the API, and the custom domains its
 * app answers at besides `<project-id>.user-app.<base domain>`.
 */
export class ProjectConfig extends Schema.Class<ProjectConfig>("@paas/core/ProjectConfig")({
  env: Env,
  // Optional in stored configurations: those written before domains existed have none.
  domains: Schema.optionalWith(Schema.Array(Domain), { default: () => [] })
}) {}

/** A project record. */
export class Project extends Schema.Class<Project>("@paas/core/Project")({
  id: ProjectId,
  ownerId: UserId,
  name: Schema.String,
  config: ProjectConfig,
  createdAt: Schema.DateFromSelf,
  updatedAt: Schema.DateFromSelf
}) {}
