// git's pkt-line framing, as much as the server needs to speak after receive-pack has finished.
//
// receive-pack answers a push with its report inside a side-band stream that ends with a flush-pkt
// (`0000`); the client prints band-2 packets as `remote: …` lines until it sees that flush. By
// holding the final flush back until the Platform has reported the build, our own band-2 lines
// reach the pusher's terminal exactly like a hook's output would.

const FLUSH = Buffer.from("0000", "latin1")
/** Band-2 payloads stay under the 1000-byte packets of plain `side-band`, so any client reads them. */
const MAX_MESSAGE_BYTES = 990

/** Follows receive-pack's stdout packet by packet, forwarding everything but the final flush. */
export class ReceivePackOutput {
  private readonly header = Buffer.alloc(4)
  private headerLength = 0
  private payloadLeft = 0
  private payloadStart = false
  private phase: "advertisement" | "response" = "advertisement"
  // Anything that does not parse as pkt-lines is passed through untouched from then on.
  private broken = false
  /** Whether the response is side-band multiplexed; known once its first packet arrives. */
  sideband: boolean | undefined = undefined
  /** True while the flush-pkt ending a side-band response is being held back. */
  holding = false

  /** Takes a chunk of receive-pack's stdout; returns what to forward now. */
  push(chunk: Buffer): Buffer {
    if (this.broken) return chunk
    const out: Array<Buffer> = []
    if (this.holding) {
      // More output after the "final" flush: it was not final after all.
      this.holding = false
      out.push(FLUSH)
    }
    let segment = 0
    let i = 0
    while (i < chunk.length) {
      if (this.payloadLeft > 0) {
        if (this.payloadStart) {
          this.payloadStart = false
          if (this.phase === "response" && this.sideband === undefined) {
            const band = chunk[i]
            this.sideband = band === 1 || band === 2 || band === 3
          }
        }
        const n = Math.min(this.payloadLeft, chunk.length - i)
        i += n
        this.payloadLeft -= n
        continue
      }
      // A header: payload bytes so far are forwarded; header bytes wait until the header is whole.
      if (segment < i) out.push(chunk.subarray(segment, i))
      this.header[this.headerLength++] = chunk[i++] ?? 0
      segment = i
      if (this.headerLength < 4) continue
      this.headerLength = 0
      const text = this.header.toString("latin1")
      if (!/^[0-9a-f]{4}$/.test(text)) {
        this.broken = true
        out.push(Buffer.from(this.header), chunk.subarray(i))
        return Buffer.concat(out)
      }
      const length = Number.parseInt(text, 16)
      if (length === 0) {
        if (this.phase === "advertisement") {
          this.phase = "response"
          out.push(FLUSH)
        } else if (this.sideband === true) {
          this.holding = true
        } else out.push(FLUSH)
      } else if (length < 4) {
        out.push(Buffer.from(this.header))
      } else {
        out.push(Buffer.from(this.header))
        this.payloadLeft = length - 4
        this.payloadStart = true
      }
    }
    if (segment < i) out.push(chunk.subarray(segment, i))
    // A held flush may be followed by nothing at all, so nothing about it is forwarded yet.
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out)
  }

  /** Whether messages can go into the side-band stream now (the final flush is held). */
  get canWriteMessages(): boolean {
    return this.holding && !this.broken
  }

  /** What is still held back, to be written after the messages. */
  finish(): Buffer {
    const rest: Array<Buffer> = []
    if (this.headerLength > 0) rest.push(Buffer.from(this.header.subarray(0, this.headerLength)))
    if (this.holding) rest.push(FLUSH)
    this.holding = false
    this.headerLength = 0
    return Buffer.concat(rest)
  }
}

/** One line of text as band-2 (progress) packets, which git prints as `remote: <line>`. */
export const sidebandMessage = (line: string): Buffer => {
  const data = Buffer.from(`${line}\n`, "utf8")
  const packets: Array<Buffer> = []
  for (let offset = 0; offset < data.length; offset += MAX_MESSAGE_BYTES) {
    const part = data.subarray(offset, offset + MAX_MESSAGE_BYTES)
    packets.push(Buffer.from((part.length + 5).toString(16).padStart(4, "0"), "latin1"), Buffer.of(2), part)
  }
  return Buffer.concat(packets)
}

/** Makes build output safe for a terminal: one line per entry, no control characters but tab. */
export const terminalLines = (text: string): Array<string> => {
  const lines = text.split(/\r\n|\r|\n/)
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop()
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
  return lines.map((line) => line.replace(/[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]/g, "?"))
}
