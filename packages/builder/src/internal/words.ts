// A quote-aware word splitter for the commands app owners write as strings (`run.command`,
// `build.command`, a Procfile's `web:` line). It reads quotes the way a POSIX shell does, and
// nothing else: no variables, no globs, no pipes, no redirections. Rather than pass `$PORT` or `*`
// through as literal text (which would run, but not as the owner meant), unquoted shell syntax is
// refused with a message saying how to ask for a shell.

import * as Either from "effect/Either"

/** Characters that mean something to a shell wherever they appear unquoted. */
const SHELL_SYNTAX = new Set(["|", "&", ";", "<", ">", "(", ")", "$", "`", "*", "?"])
/** Characters that mean something to a shell at the start of a word. */
const SHELL_WORD_START = new Set(["#", "~"])
const SPACE = new Set([" ", "\t", "\n", "\r"])
// Inside double quotes a backslash only escapes these, as in sh; elsewhere it stays.
const DOUBLE_QUOTE_ESCAPES = new Set(['"', "\\", "$", "`", "\n"])

const shellHint = 'to run it through a shell, write sh -c "…" with the whole command quoted'

/**
 * Splits `text` into an argument vector. `Left` carries why it cannot be split (an unterminated
 * quote, shell syntax, an empty command).
 */
export const split = (text: string): Either.Either<readonly [string, ...Array<string>], string> => {
  const words: Array<string> = []
  let word = ""
  let inWord = false
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === "\0") return Either.left("a command cannot contain a NUL character")
    if (SPACE.has(c)) {
      if (inWord) words.push(word)
      word = ""
      inWord = false
      i++
      continue
    }
    if (c === "'") {
      const end = text.indexOf("'", i + 1)
      if (end === -1) return Either.left("unterminated single quote")
      word += text.slice(i + 1, end)
      inWord = true
      i = end + 1
      continue
    }
    if (c === '"') {
      let j = i + 1
      let closed = false
      while (j < text.length) {
        const d = text[j]!
        if (d === '"') {
          closed = true
          break
        }
        if (d === "\\" && j + 1 < text.length && DOUBLE_QUOTE_ESCAPES.has(text[j + 1]!)) {
          // A backslash-newline inside double quotes is a line continuation: both vanish.
          if (text[j + 1] !== "\n") word += text[j + 1]
          j += 2
          continue
        }
        word += d
        j++
      }
      if (!closed) return Either.left("unterminated double quote")
      inWord = true
      i = j + 1
      continue
    }
    if (c === "\\") {
      if (i + 1 >= text.length) return Either.left("a command cannot end with a backslash")
      const next = text[i + 1]!
      if (next !== "\n") {
        word += next
        inWord = true
      }
      i += 2
      continue
    }
    if (SHELL_SYNTAX.has(c) || (!inWord && SHELL_WORD_START.has(c))) {
      return Either.left(`"${c}" is shell syntax and commands run without a shell; ${shellHint}`)
    }
    word += c
    inWord = true
    i++
  }
  if (inWord) words.push(word)
  const [first, ...rest] = words
  return first === undefined ? Either.left("the command is empty") : Either.right([first, ...rest])
}

/** Quotes one argument so that `split` reads it back unchanged (for log lines). */
export const quote = (word: string): string =>
  /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`

/** An argument vector as one readable, re-splittable line. */
export const show = (argv: ReadonlyArray<string>): string => argv.map(quote).join(" ")
