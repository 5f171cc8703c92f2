// A minimal ustar writer and reader: enough for the in-memory drivers to hand builders a real tar
// stream, as `git archive` does, and to read one back.

const BLOCK = 512
const encoder = new TextEncoder()
const decoder = new TextDecoder()

const octal = (value: number, width: number) => `${value.toString(8).padStart(width - 1, "0")}\0`

const header = (name: string, size: number, mode: number): Uint8Array => {
  const block = new Uint8Array(BLOCK)
  const put = (text: string, offset: number) => block.set(encoder.encode(text), offset)
  if (encoder.encode(name).length > 100) throw new Error(`tar: path too long: ${name}`)
  put(name, 0)
  put(octal(mode, 8), 100)
  put(octal(0, 8), 108)
  put(octal(0, 8), 116)
  put(octal(size, 12), 124)
  put(octal(0, 12), 136)
  put("        ", 148) // checksum is computed with its own field as spaces
  put("0", 156)
  put("ustar\u000000", 257)
  let sum = 0
  for (const byte of block) sum += byte
  put(`${sum.toString(8).padStart(6, "0")}\0 `, 148)
  return block
}

/** Packs files (path → content) into a tar archive. */
export const pack = (files: Readonly<Record<string, string | Uint8Array>>): Uint8Array => {
  const parts: Array<Uint8Array> = []
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    const data = typeof content === "string" ? encoder.encode(content) : content
    parts.push(
      header(name, data.length, 0o644),
      data,
      new Uint8Array((BLOCK - (data.length % BLOCK)) % BLOCK)
    )
  }
  parts.push(new Uint8Array(BLOCK * 2))
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

/** Reads the regular files of a tar archive (path → content). */
export const unpack = (archive: Uint8Array): Map<string, Uint8Array> => {
  const files = new Map<string, Uint8Array>()
  let offset = 0
  let longName: string | undefined
  while (offset + BLOCK <= archive.length) {
    const block = archive.subarray(offset, offset + BLOCK)
    if (block.every((b) => b === 0)) break
    const field = (start: number, length: number) =>
      decoder.decode(block.subarray(start, start + length)).replace(/\0.*$/s, "")
    const size = Number.parseInt(field(124, 12).trim() || "0", 8)
    const type = field(156, 1)
    const prefix = field(345, 155)
    const name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100))
    const data = archive.subarray(offset + BLOCK, offset + BLOCK + size)
    longName = undefined
    if (type === "L") longName = decoder.decode(data).replace(/\0.*$/s, "")
    else if (type === "0" || type === "") files.set(name, data)
    offset += BLOCK + Math.ceil(size / BLOCK) * BLOCK
  }
  return files
}
