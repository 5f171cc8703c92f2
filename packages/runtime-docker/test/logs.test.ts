import { assert, describe, it } from "@effect/vitest"
import { decodeAll, LogDecoder, parseTimestamp, sinceParameter } from "../src/internal/logs.js"

const frame = (stream: 1 | 2, text: string | Buffer) => {
  const payload = typeof text === "string" ? Buffer.from(text) : text
  const header = Buffer.alloc(8)
  header[0] = stream
  header.writeUInt32BE(payload.length, 4)
  return Buffer.concat([header, payload])
}

describe("log decoding", () => {
  it("parses RFC 3339 timestamps to nanoseconds, and back to the API's `since`", () => {
    assert.strictEqual(parseTimestamp("1970-01-01T00:00:01Z"), 1_000_000_000n)
    assert.strictEqual(parseTimestamp("2026-11-23T18:27:04.123456789Z"), 1795458424123456789n)
    // Docker trims trailing zeros of the fraction.
    assert.strictEqual(parseTimestamp("2026-11-23T18:27:04.5Z"), 1795458424500000000n)
    assert.strictEqual(parseTimestamp("2026-11-23T19:27:04.5+01:00"), 1795458424500000000n)
    assert.isUndefined(parseTimestamp("yesterday"))
    assert.strictEqual(sinceParameter(1795458424000000007n), "1795458424.000000007")
  })

  it("demultiplexes stdout and stderr, with the engine's timestamps", () => {
    const lines = decodeAll(
      Buffer.concat([
        frame(1, "2026-11-23T18:27:04.1Z hello\n"),
        frame(2, "2026-11-23T18:27:04.2Z oops\r\n"),
        frame(1, "2026-11-23T18:27:04.3Z \n")
      ])
    )
    assert.deepStrictEqual(
      lines.map((l) => [l.stream, l.line, l.at.toISOString()]),
      [
        ["stdout", "hello", "2026-11-23T18:27:04.100Z"],
        ["stderr", "oops", "2026-11-23T18:27:04.200Z"],
        ["stdout", "", "2026-11-23T18:27:04.300Z"]
      ]
    )
  })

  it("keeps frames, lines and multi-byte characters whole across arbitrary chunk boundaries", () => {
    const text = "2026-11-23T18:27:04Z héllo wörld ✓\n"
    const bytes = Buffer.concat([
      frame(1, Buffer.from(text).subarray(0, 27)),
      frame(2, "2026-11-23T18:27:05Z err\n"),
      frame(1, Buffer.from(text).subarray(27))
    ])
    for (let size = 1; size <= 13; size++) {
      const decoder = new LogDecoder()
      const out = []
      for (let i = 0; i < bytes.length; i += size) out.push(...decoder.push(bytes.subarray(i, i + size)))
      out.push(...decoder.end())
      assert.deepStrictEqual(
        out.map((l) => [l.stream, l.line]),
        [
          ["stderr", "err"],
          ["stdout", "héllo wörld ✓"]
        ],
        `chunks of ${size}`
      )
    }
  })

  it("flushes a last line without a newline, and stamps lines without a timestamp with the time read", () => {
    const decoder = new LogDecoder(() => new Date(42))
    assert.deepStrictEqual(decoder.push(frame(1, "no newline")), [])
    assert.deepStrictEqual(decoder.end(), [
      { at: new Date(42), stream: "stdout", line: "no newline", nanos: 42_000_000n }
    ])
  })
})
