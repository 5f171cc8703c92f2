// `.dockerignore`, read the way the docker CLI reads it. The CLI filters the build context before
// sending it; the engine's classic builder does not, so a builder that talks to the engine API has
// to filter itself, or `COPY . .` would copy what the file leaves out.
//
// The rules: one pattern per line, `#` starts a comment line, surrounding blanks are dropped, a
// leading `!` re-includes, paths are cleaned and relative to the context (a leading `/` means the
// same). `*` is any run of characters but `/`, `?` one such character, `[…]` a class, `**` any
// number of directories, `\` escapes. A pattern that matches a directory also matches everything
// under it. The last matching pattern wins.

import { posix } from "node:path"

/** One compiled pattern. */
interface Pattern {
  readonly negate: boolean
  readonly regex: RegExp
}

const SPECIAL = new Set([".", "+", "(", ")", "{", "}", "|", "^", "$"])

/** The regular expression of one cleaned pattern (no `!`), anchored at both ends. */
export const compile = (pattern: string): RegExp => {
  let out = "^"
  let i = 0
  while (i < pattern.length) {
    const c = pattern[i]!
    if (c === "*") {
      if (pattern[i + 1] === "*") {
        i += 2
        if (pattern[i] === "/") {
          // `**/` : zero or more whole directories.
          i++
          out += "(?:.*/)?"
        } else out += ".*"
        continue
      }
      out += "[^/]*"
    } else if (c === "?") out += "[^/]"
    else if (c === "\\" && i + 1 < pattern.length) {
      i++
      out += `\\${pattern[i]}`
    } else if (c === "[") {
      const end = pattern.indexOf("]", i + 2)
      if (end === -1) out += "\\["
      else {
        let body = pattern.slice(i + 1, end)
        if (body.startsWith("!")) body = `^${body.slice(1)}`
        out += `[${body.replace(/\\/g, "\\\\")}]`
        i = end
      }
    } else if (SPECIAL.has(c) || c === "]") out += `\\${c}`
    else out += c
    i++
  }
  return new RegExp(`${out}$`, "s")
}

/** The patterns of a `.dockerignore` text, in order. */
export const parse = (text: string): ReadonlyArray<Pattern> => {
  const patterns: Array<Pattern> = []
  for (const raw of text.replace(/^\uFEFF/, "").split(/\r?\n/)) {
    if (raw.startsWith("#")) continue
    let line = raw.trim()
    if (line === "") continue
    const negate = line.startsWith("!")
    if (negate) line = line.slice(1).trim()
    if (line === "") continue
    let cleaned = posix.normalize(line)
    while (cleaned.startsWith("/")) cleaned = cleaned.slice(1)
    if (cleaned.endsWith("/")) cleaned = cleaned.slice(0, -1)
    if (cleaned === "" || cleaned === ".") continue
    try {
      patterns.push({ negate, regex: compile(cleaned) })
    } catch {
      // A pattern the CLI would also reject as malformed: it excludes nothing.
    }
  }
  return patterns
}

/** Whether `path` (relative, `/`-separated, no leading `./`) is left out of the context. */
export const isIgnored = (patterns: ReadonlyArray<Pattern>, path: string): boolean => {
  if (patterns.length === 0) return false
  const parts = path.split("/")
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"))
  let ignored = false
  for (const pattern of patterns) {
    if (candidates.some((candidate) => pattern.regex.test(candidate))) ignored = !pattern.negate
  }
  return ignored
}
