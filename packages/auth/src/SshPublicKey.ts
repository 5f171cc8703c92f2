/**
 * SshPublicKey: parses and validates the OpenSSH public key lines users upload, and fingerprints
 * them the way `ssh-keygen -l` does. A key accepted here is one the git server (ssh2) can
 * authenticate, so every check below mirrors something that would otherwise fail at `git push`.
 */
import { createHash, createPublicKey } from "node:crypto"
import { ValidationError } from "@paas/core/Errors"
import type { ParsedPublicKey } from "@paas/core/SshKey"
import { Fingerprint } from "@paas/core/SshKey"
import * as Effect from "effect/Effect"
import ssh2 from "ssh2"

// Named ESM imports of ssh2 fail: it is CommonJS without static export names.
const { utils } = ssh2

/** The longest line accepted, in bytes; a 16384-bit RSA key (OpenSSH's maximum) is ~2.8 KB. */
export const maxLineBytes = 16 * 1024

/** The smallest RSA modulus accepted, in bits (OpenSSH's own minimum is 1024; NIST's is 2048). */
export const minRsaBits = 2048

/** The largest RSA modulus accepted, in bits (OpenSSH refuses larger ones). */
export const maxRsaBits = 16384

/** The key types accepted, in the order they are suggested to users. */
export const acceptedTypes: ReadonlyArray<string> = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "ssh-rsa"
]

// Coordinate sizes of the NIST curves: an uncompressed point is 0x04 || X || Y.
const ecdsaCoordinateBytes: Record<string, number> = { nistp256: 32, nistp384: 48, nistp521: 66 }

const refuse = (message: string) => new ValidationError({ field: "value", message })

/** The fingerprint of a wire-format key blob, exactly as `ssh-keygen -l` prints it. */
export const fingerprint = (blob: Uint8Array): Fingerprint =>
  Fingerprint.make(`SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`)

// The armour of every private key format users paste by mistake: PEM (PKCS#1, PKCS#8, SEC1),
// OpenSSH's own, and PuTTY's. A body without its armour starts with "openssh-key-v1\0" in base64.
const privateKeyMarkers = [
  /-----\s*BEGIN[A-Z0-9 ]*PRIVATE KEY\s*-----/i,
  /PuTTY-User-Key-File-\d+:/,
  /(?:^|\s)b3BlbnNzaC1rZXktdjE/
]

const typeMessage = (type: string): string => {
  if (type === "ssh-dss") return "value is a DSA key, which OpenSSH no longer accepts: use ssh-ed25519"
  if (type.startsWith("sk-"))
    return `value is a security-key (${type}) key, which the git server cannot verify yet: use ssh-ed25519`
  if (type.includes("-cert-")) return "value is an SSH certificate: paste the plain public key instead"
  return `value has an unsupported key type '${type.slice(0, 64)}' (accepted: ${acceptedTypes.join(", ")})`
}

// Reads the SSH wire-format strings of a blob; undefined when one runs past the end.
const readStrings = (blob: Buffer): { readonly fields: Array<Buffer>; readonly rest: number } | undefined => {
  const fields: Array<Buffer> = []
  let offset = 0
  while (offset < blob.length) {
    if (blob.length - offset < 4) return undefined
    const length = blob.readUInt32BE(offset)
    if (length > blob.length - offset - 4) return undefined
    fields.push(blob.subarray(offset + 4, offset + 4 + length))
    offset += 4 + length
  }
  return { fields, rest: blob.length - offset }
}

// Checks the blob's fields for its type; returns the reason it is refused, if it is.
const checkStructure = (type: string, fields: ReadonlyArray<Buffer>): string | undefined => {
  if (type === "ssh-ed25519") {
    if (fields.length < 2) return "value is truncated"
    if (fields.length > 2) return "value has trailing data after the key"
    if (fields[1]!.length !== 32) return "value is not a valid ssh-ed25519 key (the key must be 32 bytes)"
    return undefined
  }
  if (type === "ssh-rsa") {
    if (fields.length < 3) return "value is truncated"
    if (fields.length > 3) return "value has trailing data after the key"
    return undefined
  }
  // ecdsa-sha2-<curve>: the curve is named twice, in the type and in its own field.
  const curve = type.slice("ecdsa-sha2-".length)
  if (fields.length < 3) return "value is truncated"
  if (fields.length > 3) return "value has trailing data after the key"
  if (fields[1]!.toString("latin1") !== curve)
    return `value declares ${type} but holds a key on another curve`
  const point = fields[2]!
  if (point.length !== 1 + 2 * ecdsaCoordinateBytes[curve]! || point[0] !== 0x04)
    return `value is not a valid ${type} key (bad curve point)`
  return undefined
}

/**
 * Parses one OpenSSH public key line (`<type> <base64> [comment]`). Refuses, with a
 * `ValidationError` on the field `value`: private keys, lines over 16 KiB, bad base64, truncated
 * or malformed blobs, a declared type that differs from the blob's, unsupported types (DSA,
 * certificates, security keys) and RSA keys under 2048 bits.
 */
export const parse = (line: string): Effect.Effect<ParsedPublicKey, ValidationError> =>
  Effect.suspend(() => {
    const result = parseSync(line)
    return result instanceof ValidationError ? Effect.fail(result) : Effect.succeed(result)
  })

// Plain code so each rule reads top to bottom; `parse` lifts it into Effect.
const parseSync = (line: string): ParsedPublicKey | ValidationError => {
  if (Buffer.byteLength(line, "utf8") > maxLineBytes)
    return refuse(`value is too long for a public key (at most ${maxLineBytes} bytes)`)
  const text = line.trim()
  if (text.length === 0) return refuse("value must be an OpenSSH public key")
  if (privateKeyMarkers.some((marker) => marker.test(text)))
    return refuse("value is a private key: never share it; paste the public key (the .pub file) instead")
  if (/^-{4,5}\s*BEGIN/.test(text))
    return refuse(
      "value must be an OpenSSH public key line ('<type> <base64> [comment]'), not a PEM or RFC 4716 block"
    )
  if (/[\r\n]/.test(text)) return refuse("value must be a single line")
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) return refuse("value contains control characters")

  const match = /^(\S+)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(text)
  if (match === null) return refuse("value must be an OpenSSH public key line: '<type> <base64> [comment]'")
  const [, type, base64, rawComment] = match as unknown as [string, string, string, string | undefined]
  if (!acceptedTypes.includes(type)) return refuse(typeMessage(type))

  // Canonical base64 only: Buffer.from ignores bad characters and padding, ssh-keygen does not.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return refuse("value is not valid base64")
  // Unpadded base64 of the wrong length is what a line cut short by copy and paste looks like.
  if (base64.length % 4 !== 0)
    return refuse(base64.includes("=") ? "value is not valid base64" : "value is truncated")
  const blob = Buffer.from(base64, "base64")
  if (blob.toString("base64") !== base64) return refuse("value is not valid base64")

  const walked = readStrings(blob)
  if (walked === undefined || walked.fields.length === 0) return refuse("value is truncated")
  const blobType = walked.fields[0]!.toString("latin1")
  if (blobType !== type)
    return refuse(
      /^[\x21-\x7e]{1,64}$/.test(blobType)
        ? `value declares ${type} but holds a key of type ${blobType}`
        : `value declares ${type} but holds another kind of key`
    )
  const structural = checkStructure(type, walked.fields)
  if (structural !== undefined) return refuse(structural)

  // ssh2 is what authenticates pushes: what it cannot parse, or re-encodes differently, would
  // never match at the git server.
  const parsed = utils.parseKey(`${type} ${base64}`)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (key === undefined || key instanceof Error) return refuse(`value is not a valid ${type} key`)
  if (key.isPrivateKey()) return refuse("value is a private key: paste the public key instead")
  if (!key.getPublicSSH().equals(blob)) return refuse(`value is not a canonical ${type} key encoding`)
  // OpenSSL checks what ssh2 does not: that an EC point is on its curve, that an RSA key is sane.
  let details: ReturnType<typeof createPublicKey>["asymmetricKeyDetails"]
  try {
    details = createPublicKey(key.getPublicPEM()).asymmetricKeyDetails
  } catch {
    return refuse(`value is not a valid ${type} key`)
  }
  if (type === "ssh-rsa") {
    const bits = details?.modulusLength ?? 0
    if (bits < minRsaBits)
      return refuse(`value is a ${bits}-bit RSA key: RSA keys must have at least ${minRsaBits} bits`)
    if (bits > maxRsaBits) return refuse(`value is a ${bits}-bit RSA key: at most ${maxRsaBits} bits`)
  }

  const comment = rawComment?.trim() ?? ""
  return {
    type,
    blob: new Uint8Array(blob),
    comment,
    fingerprint: fingerprint(blob),
    normalized: comment.length > 0 ? `${type} ${base64} ${comment}` : `${type} ${base64}`
  }
}
