// Docker's log format: without a TTY the engine multiplexes stdout and stderr into frames of an
// 8-byte header (stream type, 3 bytes of padding, big-endian length) and a payload. With
// `timestamps` every line starts with an RFC 3339 timestamp in nanoseconds and a space.
import type { LogLine } from "@paas/core/RuntimeDriver"

/** A log line with the engine's timestamp in nanoseconds since the epoch, to order and resume. */
export interface TimedLine extends LogLine {
  readonly nanos: bigint
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/

/** Nanoseconds since the epoch of an RFC 3339 timestamp, or undefined when it is not one. */
export const parseTimestamp = (text: string): bigint | undefined => {
  const m = TIMESTAMP.exec(text)
  if (m === null) return undefined
  const ms = Date.parse(`${m[1]}${m[3]}`)
  if (Number.isNaN(ms)) return undefined
  const fraction = BigInt((m[2] ?? "").padEnd(9, "0"))
  return BigInt(ms) * 1_000_000n + fraction
}

/** The `since` parameter of the logs API (seconds with a fraction) for a time in nanoseconds. */
export const sinceParameter = (nanos: bigint): string =>
  `${nanos / 1_000_000_000n}.${(nanos % 1_000_000_000n).toString().padStart(9, "0")}`

const STREAMS = { 1: "stdout", 2: "stderr" } as const

/**
 * Turns chunks of a multiplexed log stream into lines. Frames may split anywhere, and a line may
 * span frames, so both are buffered until complete; bytes are decoded only once a line is whole,
 * so a multi-byte character split across frames stays intact.
 */
export class LogDecoder {
  private pending: Buffer = Buffer.alloc(0)
  private readonly partial: { stdout: Array<Buffer>; stderr: Array<Buffer> } = { stdout: [], stderr: [] }

  constructor(private readonly now: () => Date = () => new Date()) {}

  /** The complete lines in `chunk` and what came before it. */
  push(chunk: Uint8Array): Array<TimedLine> {
    this.pending = this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk])
    const out: Array<TimedLine> = []
    let offset = 0
    while (this.pending.length - offset >= 8) {
      const type = this.pending[offset]!
      const size = this.pending.readUInt32BE(offset + 4)
      if (this.pending.length - offset - 8 < size) break
      const payload = this.pending.subarray(offset + 8, offset + 8 + size)
      offset += 8 + size
      // Type 0 (stdin) never carries output; anything else would mean the stream is not multiplexed.
      const stream = type === 1 || type === 2 ? STREAMS[type] : "stdout"
      this.split(stream, payload, out)
    }
    this.pending = this.pending.subarray(offset)
    return out
  }

  /** Whatever is left once the stream ends (a last line without a newline). */
  end(): Array<TimedLine> {
    const out: Array<TimedLine> = []
    for (const stream of ["stdout", "stderr"] as const) {
      const rest = this.partial[stream]
      if (rest.length > 0) {
        this.partial[stream] = []
        out.push(this.line(stream, Buffer.concat(rest)))
      }
    }
    return out
  }

  private split(stream: "stdout" | "stderr", payload: Buffer, out: Array<TimedLine>) {
    let start = 0
    for (let nl = payload.indexOf(10, start); nl !== -1; nl = payload.indexOf(10, start)) {
      const parts = this.partial[stream]
      const piece = payload.subarray(start, nl)
      const whole = parts.length === 0 ? piece : Buffer.concat([...parts, piece])
      this.partial[stream] = []
      out.push(this.line(stream, whole))
      start = nl + 1
    }
    if (start < payload.length) this.partial[stream].push(Buffer.from(payload.subarray(start)))
  }

  private line(stream: "stdout" | "stderr", bytes: Buffer): TimedLine {
    let text = bytes.toString("utf8")
    if (text.endsWith("\r")) text = text.slice(0, -1)
    const space = text.indexOf(" ")
    const nanos = space > 0 ? parseTimestamp(text.slice(0, space)) : undefined
    if (nanos === undefined) {
      const at = this.now()
      return { at, stream, line: text, nanos: BigInt(at.getTime()) * 1_000_000n }
    }
    return { at: new Date(Number(nanos / 1_000_000n)), stream, line: text.slice(space + 1), nanos }
  }
}

/** Every line of a complete multiplexed buffer (the logs API without `follow`). */
export const decodeAll = (buffer: Uint8Array): Array<TimedLine> => {
  const decoder = new LogDecoder()
  return [...decoder.push(buffer), ...decoder.end()]
}
