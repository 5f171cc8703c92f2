// Parses OpenSSH public key lines without a crypto library: enough to validate the shape, check the
// declared type against the blob and compute the fingerprint. Real drivers may check more.
import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import { ValidationError } from "../Errors.js"
import { Fingerprint, type ParsedPublicKey } from "../SshKey.js"

const KNOWN_TYPES = new Set([
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com"
])

const invalid = (message: string) => Effect.fail(new ValidationError({ field: "value", message }))

/** The fingerprint of a key blob, as `ssh-keygen -l` prints it. */
export const fingerprintOf = (blob: Uint8Array): Fingerprint =>
  Fingerprint.make(`SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`)

/** Parses `<type> <base64> [comment]`. */
export const parse = (line: string): Effect.Effect<ParsedPublicKey, ValidationError> => {
  const text = line.trim()
  if (text.length === 0) return invalid("value must be an OpenSSH public key")
  if (text.length > 16_384) return invalid("value is too long for a public key")
  if (text.includes("PRIVATE KEY"))
    return invalid("value is a private key: paste the public key (.pub) instead")
  const [type, base64, ...rest] = text.split(/\s+/)
  if (!type || !base64) return invalid("value must be '<type> <base64> [comment]'")
  if (!KNOWN_TYPES.has(type)) return invalid(`value has an unsupported key type: ${type}`)
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0)
    return invalid("value is not valid base64")
  const blob = Buffer.from(base64, "base64")
  if (blob.length < 4) return invalid("value is truncated")
  const nameLength = blob.readUInt32BE(0)
  if (nameLength > blob.length - 4) return invalid("value is truncated")
  const blobType = blob.subarray(4, 4 + nameLength).toString("latin1")
  if (blobType !== type) return invalid(`value declares ${type} but holds a ${blobType} key`)
  const minimum = type === "ssh-ed25519" ? 4 + 11 + 4 + 32 : 4 + nameLength + 8
  if (blob.length < minimum) return invalid("value is truncated")
  const comment = rest.join(" ")
  return Effect.succeed({
    type,
    blob: new Uint8Array(blob),
    comment,
    fingerprint: fingerprintOf(blob),
    normalized: comment ? `${type} ${base64} ${comment}` : `${type} ${base64}`
  })
}
