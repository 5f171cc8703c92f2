// Sizes and durations as people write them in deployment files.
//
// Sizes: a whole number of bytes, or a number with a unit. Every unit is a power of 1024, the
// way Docker reads `--memory 256m`: k/K/Ki/KiB/kb, m/M/Mi/MiB/mb, g/G/Gi/GiB/gb, t/T/Ti/TiB/tb,
// and b for bytes. (Kubernetes reads `M` as 10^6; for a memory limit the difference is 5 %, and
// one reading for every spelling is easier to explain.)
//
// Durations: a number of seconds, or one or more number+unit parts with units ms, s, m, h
// (`500ms`, `30s`, `2m`, `1m30s`).

import * as Option from "effect/Option"

/** The size grammar, for the JSON Schema. */
export const SIZE_PATTERN = "^[0-9]+(\\.[0-9]+)?\\s*([bB]|[kKmMgGtT]([iI]?[bB]?))?$"
/** The duration grammar, for the JSON Schema. */
export const DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"

const SIZE = new RegExp(SIZE_PATTERN)
const DURATION = new RegExp(DURATION_PATTERN)
const DURATION_PART = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g

const POWERS: Readonly<Record<string, number>> = { b: 0, k: 1, m: 2, g: 3, t: 4 }
const MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Bytes from `256M`, `1G`, `512Mi`, `128k`, `1.5GiB` or a whole number; none when unreadable. */
export const parseSize = (input: string | number): Option.Option<number> => {
  if (typeof input === "number")
    return Number.isSafeInteger(input) && input >= 0 ? Option.some(input) : Option.none()
  const text = input.trim()
  const match = SIZE.exec(text)
  if (match === null) return Option.none()
  const number = Number.parseFloat(text)
  const unit = match[2]?.[0]?.toLowerCase() ?? "b"
  const bytes = Math.floor(number * 1024 ** (POWERS[unit] ?? 0))
  return Number.isSafeInteger(bytes) ? Option.some(bytes) : Option.none()
}

/** Milliseconds from `500ms`, `30s`, `2m`, `1m30s` or a number of seconds; none when unreadable. */
export const parseDuration = (input: string | number): Option.Option<number> => {
  if (typeof input === "number")
    return Number.isFinite(input) && input >= 0 ? Option.some(Math.round(input * 1000)) : Option.none()
  const text = input.trim()
  if (!DURATION.test(text)) return Option.none()
  let total = 0
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) total += Number(amount) * (MS[unit!] ?? 0)
  const ms = Math.round(total)
  return Number.isSafeInteger(ms) ? Option.some(ms) : Option.none()
}
