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

/** What a project keeps as its configuration (`config.env` in the API). */
export class ProjectConfig extends Schema.Class<ProjectConfig>("@paas/core/ProjectConfig")({
  env: Env
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
