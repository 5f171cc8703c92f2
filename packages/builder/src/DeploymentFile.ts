/**
 * DeploymentFile: the optional `paas.yaml` at the root of a repository, saying how to build the
 * app and how it runs. Its key names are a contract with users: keys may be added, never renamed.
 *
 * ```yaml
 * build:
 *   method: auto            # auto | dockerfile | buildpacks | command | static
 *   command: npm run build
 *   output: dist
 * run:
 *   command: npm start
 *   port: 8080
 *   healthcheck: { path: /, timeout: 30s }
 *   memory: 256M
 *   cpus: 0.5
 *   replicas: 1
 *   readonly: false         # a read-only root filesystem (Docker runtime)
 * env:
 *   KEY: value
 * ```
 */
import { EnvName } from "@paas/core/Project"
import { RunSettings } from "@paas/core/Release"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as JSONSchema from "effect/JSONSchema"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as internal from "./internal/deploymentFile.js"
import { DURATION_PATTERN, parseDuration, parseSize, SIZE_PATTERN } from "./internal/units.js"
import * as Words from "./internal/words.js"

/** The file's name at the repository root. */
export const filename = "paas.yaml"

/** Annotation key: what a schema expects, phrased for "expected …, got …" messages. */
export const ExpectedId: unique symbol = Symbol.for("@paas/builder/DeploymentFile/Expected")

const expects = (text: string) => ({ [ExpectedId]: text })

const isInside = (path: string) => {
  if (path.length === 0 || path.length > 1024 || path.includes("\0") || path.startsWith("/")) return false
  let depth = 0
  for (const part of path.split("/")) {
    if (part === "..") depth--
    else if (part !== "" && part !== ".") depth++
    if (depth < 0) return false
  }
  return true
}

/** A path relative to the repository root that stays inside it. */
export const RelativePath = Schema.String.pipe(Schema.filter(isInside)).annotations({
  ...expects("a relative path inside the repository, such as dist"),
  jsonSchema: { minLength: 1, pattern: "^(?!/)" }
})

/** How the app is built. */
export const Method = Schema.Literal("auto", "dockerfile", "buildpacks", "command", "static").annotations({
  ...expects("one of auto, dockerfile, buildpacks, command, static"),
  description:
    "auto: detect the app (package.json, index.html, Procfile); dockerfile: build the Dockerfile; " +
    "buildpacks: Cloud Native Buildpacks; command: run build.command; static: serve build.output as files. " +
    "dockerfile and buildpacks need the Docker runtime."
})
/** How the app is built. */
export type Method = typeof Method.Type

/** An argument vector. */
export type Argv = readonly [string, ...Array<string>]

const argvFrom = (
  input: string | ReadonlyArray<string>,
  ast: Schema.Schema.AnyNoContext["ast"]
): Either.Either<Argv, ParseResult.ParseIssue> => {
  if (typeof input === "string")
    return Either.mapLeft(Words.split(input), (message) => new ParseResult.Type(ast, input, message))
  const [first, ...rest] = input
  if (first === undefined || first === "")
    return Either.left(new ParseResult.Type(ast, input, "the command is empty"))
  if (input.some((word) => word.includes("\0")))
    return Either.left(new ParseResult.Type(ast, input, "a command cannot contain a NUL character"))
  return Either.right([first, ...rest])
}

const commandJson = {
  anyOf: [
    { type: "string", minLength: 1 },
    { type: "array", items: { type: "string" }, minItems: 1 }
  ]
}
const commandHelp =
  "A string is split into words as a shell would (quotes work) but never runs a shell: " +
  'no $VARIABLES, pipes or globs; write sh -c "…" when you need a shell. A list is used as is.'

/**
 * A command: a string split into words like a shell would (quotes, no expansion, no pipes), or a
 * list of words. Decodes to an argument vector.
 */
export const Command = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.Array(Schema.String)),
  Schema.typeSchema(Schema.NonEmptyArray(Schema.String)),
  {
    strict: true,
    decode: (input, _, ast) => argvFrom(input, ast),
    encode: (argv) => ParseResult.succeed(argv)
  }
).annotations({
  ...expects('a command: a string such as "npm start" or a list such as [node, server.js]'),
  jsonSchema: { ...commandJson, description: commandHelp }
})

const MIN_MEMORY = 6 * 1024 * 1024
const memoryJson = {
  anyOf: [
    { type: "string", pattern: SIZE_PATTERN },
    { type: "integer", minimum: MIN_MEMORY }
  ],
  examples: ["256M", "1G", "512Mi"]
}
const memoryHelp =
  "A number is bytes; a string has a unit, all powers of 1024 as Docker reads them: " +
  "k, K, Ki, KiB, m, M, Mi, MiB, g, G, Gi, GiB, t, T, Ti, TiB (256M = 256 MiB). At least 6M."

/** A memory size (`256M`, `1G`, `512Mi`, bytes as a number); decodes to bytes, at least 6 MiB. */
export const Memory = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.Number),
  Schema.Int.pipe(Schema.greaterThanOrEqualTo(MIN_MEMORY)),
  {
    strict: true,
    decode: (input, _, ast) =>
      Option.match(
        Option.filter(parseSize(input), (bytes) => bytes >= MIN_MEMORY),
        { onNone: () => ParseResult.fail(new ParseResult.Type(ast, input)), onSome: ParseResult.succeed }
      ),
    encode: (bytes) => ParseResult.succeed(bytes)
  }
).annotations({
  ...expects("a size of at least 6M, such as 256M, 1G, 512Mi or a number of bytes"),
  jsonSchema: { ...memoryJson, description: memoryHelp }
})

const MAX_TIMEOUT = 3_600_000
const timeoutJson = {
  anyOf: [
    { type: "string", pattern: DURATION_PATTERN },
    { type: "number", exclusiveMinimum: 0, maximum: 3600 }
  ],
  examples: ["30s", "2m", "500ms"]
}
const timeoutHelp =
  "A number is seconds; a string is one or more parts with units ms, s, m, h (1m30s); at most 1h."

/** A duration (`30s`, `2m`, `500ms`, `1m30s`, seconds as a number); decodes to milliseconds. */
export const Timeout = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.Number),
  Schema.Int.pipe(Schema.between(1, MAX_TIMEOUT)),
  {
    strict: true,
    decode: (input, _, ast) =>
      Option.match(
        Option.filter(parseDuration(input), (ms) => ms >= 1 && ms <= MAX_TIMEOUT),
        { onNone: () => ParseResult.fail(new ParseResult.Type(ast, input)), onSome: ParseResult.succeed }
      ),
    encode: (ms) => ParseResult.succeed(ms)
  }
).annotations({
  ...expects("a duration from 1ms to 1h, such as 30s, 2m or 500ms"),
  jsonSchema: { ...timeoutJson, description: timeoutHelp }
})

// A schema whose JSON Schema is written by hand loses descriptions annotated on it later, so each
// use states its own through this.
const documented = <S extends Schema.Schema.Any>(
  schema: S,
  json: Record<string, unknown>,
  description: string,
  extra: Record<string, unknown> = {}
): S => schema.annotations({ jsonSchema: { ...json, description, ...extra } }) as S

/** An environment value: a string; numbers and booleans are taken as their text. */
export const EnvValue = Schema.transform(
  Schema.Union(Schema.String, Schema.Number, Schema.Boolean),
  Schema.String.pipe(Schema.filter((s) => !s.includes("\0"))),
  { strict: true, decode: (v) => String(v), encode: (s) => s }
).annotations({
  ...expects("a string (quote it to keep it exactly as written)"),
  jsonSchema: {
    type: ["string", "number", "boolean"],
    description: "Numbers and booleans are taken as text; quote values to keep them exactly as written."
  }
})

/** Environment variables: names to values. */
export const Env = Schema.Record({
  key: EnvName.annotations(expects("a variable name: letters, digits and _, not starting with a digit")),
  value: EnvValue
}).annotations(expects("a mapping of variable names to values"))

const section = <Fields extends Schema.Struct.Fields>(fields: Fields, description: string) =>
  Schema.Struct(fields).annotations({ ...expects("a mapping"), description })

const optional = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { exact: true })

/** The `build.buildpacks` section (used by the buildpacks builder). */
export const Buildpacks = section(
  {
    builder: optional(
      Schema.NonEmptyString.annotations({
        ...expects("a builder image name"),
        description: "The builder image, e.g. paketobuildpacks/builder-jammy-base."
      })
    ),
    buildpack: optional(
      Schema.transform(
        Schema.Union(Schema.NonEmptyString, Schema.Array(Schema.NonEmptyString)),
        Schema.typeSchema(Schema.Array(Schema.String)),
        { strict: true, decode: (v) => (typeof v === "string" ? [v] : v), encode: (v) => v }
      ).annotations({
        ...expects("a buildpack name or a list of them"),
        jsonSchema: {
          anyOf: [
            { type: "string", minLength: 1 },
            { type: "array", items: { type: "string", minLength: 1 } }
          ],
          description: "A buildpack (or a list) to use instead of the builder's detection."
        }
      })
    ),
    env: optional(Env.annotations({ description: "Build-time variables for the buildpacks (BP_*, …)." }))
  },
  "Settings for build.method buildpacks."
)

/** The `build` section. */
export const Build = section(
  {
    method: optional(Method),
    dockerfile: optional(
      RelativePath.annotations({
        description:
          "The Dockerfile, relative to the repository root. Default: the Dockerfile at the root of build.context."
      })
    ),
    context: optional(
      RelativePath.annotations({
        description: "The Docker build context, relative to the repository root.",
        default: "."
      })
    ),
    command: optional(
      documented(
        Command,
        commandJson,
        `The build command (method command, or instead of the detected one), e.g. npm run build. ${commandHelp}`
      )
    ),
    output: optional(
      RelativePath.annotations({
        description:
          "Method static: the folder to serve. Default: dist when the build produced it, else the root."
      })
    ),
    buildpacks: optional(Buildpacks)
  },
  "How the app is built."
)

/** The `run.healthcheck` section. */
export const Healthcheck = section(
  {
    path: optional(
      Schema.String.pipe(Schema.maxLength(2048), Schema.pattern(/^\/[\x21-\x7e]*$/)).annotations({
        ...expects("a path starting with /, such as /healthz"),
        description: "The HTTP path the platform checks before the app receives traffic.",
        default: "/"
      })
    ),
    timeout: optional(
      documented(Timeout, timeoutJson, `How long the app has to become healthy. ${timeoutHelp}`, {
        default: "30s"
      })
    )
  },
  "How the platform decides the app is up."
)

/** The `run` section. */
export const Run = section(
  {
    command: optional(documented(Command, commandJson, `The start command, e.g. npm start. ${commandHelp}`)),
    port: optional(
      Schema.Int.pipe(Schema.between(1, 65535)).annotations({
        ...expects("an integer from 1 to 65535"),
        description:
          "The port the app listens on; the platform also sets PORT to it. " +
          "Leave it out to let the platform choose and pass it as PORT."
      })
    ),
    healthcheck: optional(Healthcheck),
    memory: optional(documented(Memory, memoryJson, `Memory limit. ${memoryHelp}`)),
    cpus: optional(
      Schema.Number.pipe(Schema.positive(), Schema.lessThanOrEqualTo(1024)).annotations({
        ...expects("a positive number of CPUs, such as 0.5 or 2"),
        description: "CPU limit, in CPUs."
      })
    ),
    replicas: optional(
      Schema.Int.pipe(Schema.between(1, 32)).annotations({
        ...expects("an integer from 1 to 32"),
        description: "How many instances to run.",
        default: 1
      })
    ),
    readonly: optional(
      Schema.Boolean.annotations({
        ...expects("true or false"),
        description:
          "Run with a read-only root filesystem (with a writable /tmp), where the runtime can (Docker).",
        default: false
      })
    )
  },
  "How the app runs."
)

/** The whole file, decoded: commands as argument vectors, memory in bytes, timeout in ms. */
export const DeploymentFile = section(
  {
    build: optional(Build),
    run: optional(Run),
    env: optional(
      Env.annotations({ description: "Non-secret env defaults; the project's own env wins over them." })
    )
  },
  "paas.yaml: how to build and run the app."
).annotations({ title: "paas.yaml" })
/** The whole file, decoded. */
export type DeploymentFile = typeof DeploymentFile.Type

/** One thing wrong with a file: where, which field, and what. */
export class Issue extends Schema.Class<Issue>("@paas/builder/DeploymentFile/Issue")({
  /** 1-based line, when the problem has a place in the file. */
  line: Schema.NullOr(Schema.Int),
  /** The field, e.g. `run.port`; empty for the file as a whole. */
  path: Schema.String,
  message: Schema.String
}) {
  /** `paas.yaml line 7: run.port: expected an integer from 1 to 65535, got "http"` */
  format(file: string = filename): string {
    const where = this.line === null ? file : `${file} line ${this.line}`
    return this.path === "" ? `${where}: ${this.message}` : `${where}: ${this.path}: ${this.message}`
  }
}

/** The file is not valid YAML, or does not follow the schema; `issues` lists every problem, in line order. */
export class DeploymentFileError extends Schema.TaggedError<DeploymentFileError>()("DeploymentFileError", {
  file: Schema.String,
  issues: Schema.NonEmptyArray(Issue)
}) {
  override get message(): string {
    const [first, ...rest] = this.issues
    const more = rest.length === 0 ? "" : ` (and ${rest.length} more)`
    return `${first.format(this.file)}${more}`
  }
  /** One line per issue. */
  get lines(): ReadonlyArray<string> {
    return this.issues.map((issue) => issue.format(this.file))
  }
}

/** Parses and decodes the text of a deployment file. An empty file means "all defaults". */
export const parse = (
  text: string,
  file: string = filename
): Effect.Effect<DeploymentFile, DeploymentFileError> =>
  Either.match(internal.parse(text, DeploymentFile, ExpectedId), {
    onLeft: ([first, ...rest]) =>
      Effect.fail(
        new DeploymentFileError({ file, issues: [new Issue(first), ...rest.map((i) => new Issue(i))] })
      ),
    onRight: Effect.succeed
  })

/** Decodes a value already read (from JSON, say); issues have no line numbers. */
export const decode = (
  value: unknown,
  file: string = filename
): Effect.Effect<DeploymentFile, DeploymentFileError> =>
  Either.match(internal.decode(DeploymentFile, value, ExpectedId), {
    onLeft: ([first, ...rest]) =>
      Effect.fail(
        new DeploymentFileError({ file, issues: [new Issue(first), ...rest.map((i) => new Issue(i))] })
      ),
    onRight: Effect.succeed
  })

/**
 * The run settings the file asks for, over `RunSettings.defaults`; `command` is the file's
 * `run.command` unless `command` is given (a builder's resolved start command).
 */
export const toRunSettings = (file: DeploymentFile, command?: ReadonlyArray<string> | null): RunSettings => {
  const run = file.run ?? {}
  const defaults = RunSettings.defaults
  return new RunSettings({
    port: run.port ?? defaults.port,
    command: command !== undefined ? command : (run.command ?? defaults.command),
    healthcheckPath: run.healthcheck?.path ?? defaults.healthcheckPath,
    healthcheckTimeoutMs: run.healthcheck?.timeout ?? defaults.healthcheckTimeoutMs,
    memoryBytes: run.memory ?? defaults.memoryBytes,
    cpus: run.cpus ?? defaults.cpus,
    replicas: run.replicas ?? defaults.replicas,
    readOnlyRootFilesystem: run.readonly ?? defaults.readOnlyRootFilesystem,
    env: file.env ?? defaults.env
  })
}

/** The JSON Schema of the file (draft-07), for editors; published as `@paas/builder/paas.schema.json`. */
export const jsonSchema = (): Record<string, unknown> =>
  tidy(JSONSchema.make(DeploymentFile)) as Record<string, unknown>

// What Effect generates, made plainer for editors: definitions inlined, the titles it derives
// from refinements ("between(1, 65535)") and empty `required` lists dropped.
const tidy = (schema: JSONSchema.JsonSchema7Root): unknown => {
  const defs: Record<string, unknown> = schema.$defs ?? {}
  const go = (node: unknown, root: boolean): unknown => {
    if (Array.isArray(node)) return node.map((n) => go(n, false))
    if (node === null || typeof node !== "object") return node
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(node)) {
      if (key === "$defs" || (key === "title" && !root)) continue
      if (key === "required" && Array.isArray(value) && value.length === 0) continue
      if (key === "$ref" && typeof value === "string" && value.startsWith("#/$defs/")) {
        const target = go(defs[value.slice("#/$defs/".length)], false)
        if (target !== null && typeof target === "object") Object.assign(out, target, out)
        continue
      }
      out[key] = go(value, false)
    }
    return out
  }
  return go(schema, true)
}

/** The JSON Schema as the text of `paas.schema.json` (two-space indented, final newline). */
export const jsonSchemaText = (): string => `${JSON.stringify(jsonSchema(), null, 2)}\n`
