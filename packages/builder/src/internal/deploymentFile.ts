// Reading a deployment file: YAML (with the `yaml` package, keeping positions) decoded with an
// Effect Schema, and every problem turned into one line that names the line and the field.
//
// Schema's own formatters describe types ("Expected number, actual \"http\""); users need the
// field and the rule, so the parse issue tree is walked here: the nearest schema annotated with
// what it expects (`ExpectedId`) gives "expected …, got …", and the path gives the YAML node whose
// line is reported.

import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import type * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import { isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml"

/** One problem found: where (1-based line, when known), which field, what. */
export interface IssueFields {
  readonly line: number | null
  readonly path: string
  readonly message: string
}

type Issues = readonly [IssueFields, ...Array<IssueFields>]
type Path = ReadonlyArray<PropertyKey>

/** Bigger than any sensible deployment file; refused before parsing. */
export const MAX_BYTES = 64 * 1024
// Aliases can blow a small document up exponentially; a deployment file needs few, if any.
const MAX_ALIAS_COUNT = 64

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/

/** `run.port`, `run.command[1]`, `env["A B"]`. */
export const formatPath = (path: Path): string =>
  path
    .map((segment, i) =>
      typeof segment === "number"
        ? `[${segment}]`
        : typeof segment === "string" && IDENTIFIER.test(segment)
          ? `${i === 0 ? "" : "."}${segment}`
          : `[${JSON.stringify(String(segment))}]`
    )
    .join("")

/** A value as a message shows it: short, one line, strings quoted. */
export const showValue = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)
  if (value === null || value === undefined) return "nothing"
  if (Array.isArray(value)) return "a list"
  if (typeof value === "object") return "a mapping"
  return String(value)
}

const expectedOf = (ast: AST.AST, id: symbol): string | undefined => {
  const value = ast.annotations[id]
  return typeof value === "string" ? value : undefined
}

const describeAst = (ast: AST.AST): string => {
  switch (ast._tag) {
    case "StringKeyword":
      return "a string"
    case "NumberKeyword":
      return "a number"
    case "BooleanKeyword":
      return "true or false"
    case "TypeLiteral":
      return "a mapping"
    case "TupleType":
      return "a list"
    case "Literal":
      return JSON.stringify(ast.literal)
    default:
      return String(ast)
  }
}

interface Found {
  readonly path: Path
  readonly message: string
}

const leaf = (path: Path, expected: string, actual: unknown): Found => ({
  path,
  message: `expected ${expected}, got ${showValue(actual)}`
})

// The message a transformation failed with, when it gave one (e.g. why a command cannot be split).
const customMessage = (issue: ParseResult.ParseIssue): string | undefined => {
  switch (issue._tag) {
    case "Type":
      return issue.message
    case "Transformation":
    case "Refinement":
    case "Pointer":
      return customMessage(issue.issue)
    default:
      return undefined
  }
}

const walk = (
  issue: ParseResult.ParseIssue,
  path: Path,
  parent: AST.AST | undefined,
  id: symbol
): Array<Found> => {
  switch (issue._tag) {
    case "Pointer":
      return walk(
        issue.issue,
        [...path, ...(Array.isArray(issue.path) ? issue.path : [issue.path])],
        parent,
        id
      )
    case "Composite": {
      const expected = expectedOf(issue.ast, id)
      if (AST.isUnion(issue.ast)) return [leaf(path, expected ?? describeAst(issue.ast), issue.actual)]
      const issues = Array.isArray(issue.issues) ? issue.issues : [issue.issues as ParseResult.ParseIssue]
      return issues.flatMap((i) => walk(i, path, issue.ast, id))
    }
    case "Refinement": {
      const expected = expectedOf(issue.ast, id)
      return expected === undefined
        ? walk(issue.issue, path, parent, id)
        : [leaf(path, expected, issue.actual)]
    }
    case "Transformation": {
      const expected = expectedOf(issue.ast, id)
      if (issue.kind === "Transformation") {
        const message = customMessage(issue.issue)
        if (message !== undefined) return [{ path, message }]
      }
      return expected === undefined
        ? walk(issue.issue, path, parent, id)
        : [leaf(path, expected, issue.actual)]
    }
    case "Type":
      return [
        issue.message !== undefined
          ? { path, message: issue.message }
          : leaf(path, expectedOf(issue.ast, id) ?? describeAst(issue.ast), issue.actual)
      ]
    case "Unexpected": {
      const keyRule =
        parent !== undefined && AST.isTypeLiteral(parent) && parent.indexSignatures.length > 0
          ? expectedOf(parent.indexSignatures[0]!.parameter, id)
          : undefined
      if (keyRule !== undefined) return [{ path, message: `invalid key: expected ${keyRule}` }]
      const known =
        parent !== undefined && AST.isTypeLiteral(parent)
          ? parent.propertySignatures.map((p) => String(p.name))
          : []
      return [
        {
          path,
          message: known.length > 0 ? `unknown key (known keys: ${known.join(", ")})` : "unknown key"
        }
      ]
    }
    case "Missing":
      return [{ path, message: "is required" }]
    case "Forbidden":
      return [{ path, message: issue.message ?? "cannot be checked" }]
  }
}

const keyText = (key: unknown): string => (isScalar(key) ? String(key.value) : String(key))

// The line of the YAML node at `path`, or of its nearest ancestor present in the file. A mapping
// entry is reported at its key, which is where people look for it.
const locate = (contents: Node | null, path: Path, lineOf: (offset: number) => number): number | null => {
  let node: unknown = contents
  let line: number | null = contents?.range ? lineOf(contents.range[0]) : null
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(segment))
      if (pair === undefined) break
      const key = pair.key as Node | null
      if (key?.range) line = lineOf(key.range[0])
      node = pair.value
    } else if (isSeq(node) && typeof segment === "number") {
      const item = node.items[segment] as Node | undefined
      if (item === undefined) break
      if (item.range) line = lineOf(item.range[0])
      node = item
    } else break
    if (isAlias(node)) break
  }
  return line
}

// `key:` with nothing after it means "unset" in a section; under `env` it stays null and is
// reported, since an empty variable is more likely a slip than a wish.
const dropNulls = (value: unknown, parentKey: PropertyKey | undefined): unknown => {
  if (Array.isArray(value)) return value.map((v) => dropNulls(v, undefined))
  if (value === null || typeof value !== "object") return value
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    if (v === null && parentKey !== "env") continue
    out[key] = dropNulls(v, key)
  }
  return out
}

const byLine = (a: IssueFields, b: IssueFields) => (a.line ?? 0) - (b.line ?? 0)

const decodeWith = <A, I>(
  schema: Schema.Schema<A, I>,
  value: unknown,
  id: symbol,
  lineOf: (path: Path) => number | null
): Either.Either<A, Issues> => {
  const result = ParseResult.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(
    dropNulls(value ?? {}, undefined)
  )
  if (Either.isRight(result)) return Either.right(result.right)
  const found = walk(result.left, [], undefined, id)
  const issues = found
    .map((f) => ({ line: lineOf(f.path), path: formatPath(f.path), message: f.message }))
    .sort(byLine)
  const [first, ...rest] = issues
  return Either.left(first === undefined ? [{ line: null, path: "", message: "invalid" }] : [first, ...rest])
}

/** Decodes a value that was not read from YAML (no line numbers). */
export const decode = <A, I>(
  schema: Schema.Schema<A, I>,
  value: unknown,
  id: symbol
): Either.Either<A, Issues> => decodeWith(schema, value, id, () => null)

/** Parses YAML text and decodes it. */
export const parse = <A, I>(
  text: string,
  schema: Schema.Schema<A, I>,
  id: symbol
): Either.Either<A, Issues> => {
  if (Buffer.byteLength(text) > MAX_BYTES)
    return Either.left([{ line: null, path: "", message: `the file is larger than ${MAX_BYTES / 1024} KiB` }])
  const lineCounter = new LineCounter()
  const lineAt = (offset: number) => lineCounter.linePos(offset).line
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    strict: true,
    version: "1.2",
    schema: "core",
    merge: false
  })
  const problems = [...doc.errors, ...doc.warnings]
  if (problems.length > 0) {
    const [first, ...rest] = problems
      .map((e) => ({ line: lineAt(e.pos[0]), path: "", message: e.message.split("\n")[0] ?? e.message }))
      .sort(byLine)
    return Either.left([first!, ...rest])
  }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
  } catch (e) {
    return Either.left([{ line: null, path: "", message: e instanceof Error ? e.message : String(e) }])
  }
  return decodeWith(schema, value, id, (path) => locate(doc.contents as Node | null, path, lineAt))
}
