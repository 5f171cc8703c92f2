import { assert, describe, it } from "@effect/vitest"
import { ReceivePackOutput, sidebandMessage, terminalLines } from "../src/internal/pktline.js"

const pkt = (payload: string | Buffer) => {
  const data = typeof payload === "string" ? Buffer.from(payload, "latin1") : payload
  return Buffer.concat([Buffer.from((data.length + 4).toString(16).padStart(4, "0"), "latin1"), data])
}
const band = (n: number, text: string) => pkt(Buffer.concat([Buffer.of(n), Buffer.from(text, "latin1")]))
const FLUSH = Buffer.from("0000", "latin1")

const advertisement = Buffer.concat([
  pkt(`${"a".repeat(40)} refs/heads/main\0report-status side-band-64k\n`),
  pkt(`${"b".repeat(40)} refs/heads/dev\n`),
  FLUSH
])
const sidebandResponse = Buffer.concat([
  band(2, "Resolving deltas: 100% (1/1)\n"),
  band(1, Buffer.concat([pkt("unpack ok\n"), pkt("ok refs/heads/main\n"), FLUSH]).toString("latin1")),
  FLUSH
])
const plainResponse = Buffer.concat([pkt("unpack ok\n"), pkt("ok refs/heads/main\n"), FLUSH])

/** Feeds `stream` in pieces of `size` bytes; returns what was forwarded and the parser. */
const feed = (stream: Buffer, size: number) => {
  const parser = new ReceivePackOutput()
  const out: Array<Buffer> = []
  for (let i = 0; i < stream.length; i += size) out.push(parser.push(stream.subarray(i, i + size)))
  return { parser, forwarded: Buffer.concat(out) }
}

describe("ReceivePackOutput", () => {
  it("holds back only the flush that ends a side-band response, however the output is split", () => {
    const stream = Buffer.concat([advertisement, sidebandResponse])
    for (const size of [1, 2, 3, 4, 5, 7, 64, stream.length]) {
      const { parser, forwarded } = feed(stream, size)
      assert.isTrue(parser.sideband, `size ${size}`)
      assert.isTrue(parser.canWriteMessages, `size ${size}`)
      assert.deepStrictEqual(forwarded, stream.subarray(0, stream.length - 4), `size ${size}`)
      assert.deepStrictEqual(parser.finish(), FLUSH)
      assert.isFalse(parser.canWriteMessages)
    }
  })

  it("forwards the advertisement's flush at once, so the client can start", () => {
    const { forwarded, parser } = feed(advertisement, 3)
    assert.deepStrictEqual(forwarded, advertisement)
    assert.isFalse(parser.canWriteMessages)
    assert.deepStrictEqual(parser.finish(), Buffer.alloc(0))
  })

  it("passes a response without side-band through untouched", () => {
    const stream = Buffer.concat([advertisement, plainResponse])
    for (const size of [1, 5, stream.length]) {
      const { parser, forwarded } = feed(stream, size)
      assert.isFalse(parser.sideband)
      assert.isFalse(parser.canWriteMessages)
      assert.deepStrictEqual(forwarded, stream)
    }
  })

  it("releases a held flush when more output follows it", () => {
    const parser = new ReceivePackOutput()
    const first = parser.push(Buffer.concat([advertisement, sidebandResponse]))
    const more = band(2, "late\n")
    const second = parser.push(more)
    assert.deepStrictEqual(
      Buffer.concat([first, second]),
      Buffer.concat([advertisement, sidebandResponse, more])
    )
    assert.isFalse(parser.canWriteMessages)
  })

  it("passes anything that is not pkt-lines through and never holds it", () => {
    const parser = new ReceivePackOutput()
    const junk = Buffer.from("fatal: not a git repository\n0000", "latin1")
    assert.deepStrictEqual(parser.push(junk), junk)
    assert.deepStrictEqual(parser.push(FLUSH), FLUSH)
    assert.isFalse(parser.canWriteMessages)
  })
})

describe("side-band messages", () => {
  it("frames a line as band-2 packets of at most 1000 bytes", () => {
    assert.deepStrictEqual(sidebandMessage("hello"), Buffer.from("000b\x02hello\n", "latin1"))
    const long = sidebandMessage("x".repeat(2500))
    let offset = 0
    let text = ""
    while (offset < long.length) {
      const length = Number.parseInt(long.subarray(offset, offset + 4).toString("latin1"), 16)
      assert.isAtMost(length, 1000)
      assert.strictEqual(long[offset + 4], 2)
      text += long.subarray(offset + 5, offset + length).toString("utf8")
      offset += length
    }
    assert.strictEqual(text, `${"x".repeat(2500)}\n`)
  })

  it("makes build output safe for a terminal", () => {
    assert.deepStrictEqual(terminalLines("a\r\nb\rc\nd\n"), ["a", "b", "c", "d"])
    assert.deepStrictEqual(terminalLines("\x1b[31mred\x1b[0m\tok\x07"), ["?[31mred?[0m\tok?"])
    assert.deepStrictEqual(terminalLines(""), [""])
  })
})
