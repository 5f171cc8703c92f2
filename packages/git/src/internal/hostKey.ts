// The server's ed25519 host key: generated once, then read back on every start, so clients see
// the same host key across restarts.
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto"
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises"
import { dirname } from "node:path"
import * as Effect from "effect/Effect"
import ssh2 from "ssh2"

const { utils } = ssh2

/** A loaded host key: the private key for ssh2 and the public line and fingerprint to publish. */
export interface HostKey {
  readonly privateKey: string
  readonly publicKey: string
  readonly fingerprint: string
}

const errnoCode = (cause: unknown) =>
  typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : undefined

const describe = (privateKey: string): HostKey | Error => {
  const parsed = utils.parseKey(privateKey)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (key === undefined || key instanceof Error) return key ?? new Error("no key in the host key file")
  if (key.type !== "ssh-ed25519") return new Error(`the host key is ${key.type}, not ssh-ed25519`)
  const blob = key.getPublicSSH()
  return {
    privateKey,
    publicKey: `${key.type} ${blob.toString("base64")}`,
    fingerprint: `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`
  }
}

const sshString = (value: Buffer | string): Buffer => {
  const bytes = typeof value === "string" ? Buffer.from(value) : value
  const length = Buffer.alloc(4)
  length.writeUInt32BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/**
 * An ed25519 key in OpenSSH's private key format (unencrypted), from its 32-byte seed and 32-byte
 * public key. We write it ourselves because ssh2's `generateKeyPairSync("ed25519")` strips leading
 * zero bytes off the public key, so about one key in 256 comes out malformed (mscdex/ssh2#1390).
 */
export const encodeEd25519 = (seed: Buffer, publicKey: Buffer, comment = ""): string => {
  const type = "ssh-ed25519"
  const publicBlob = Buffer.concat([sshString(type), sshString(publicKey)])
  const check = randomBytes(4)
  const secret = Buffer.concat([
    check,
    check,
    publicBlob,
    sshString(Buffer.concat([seed, publicKey])),
    sshString(comment)
  ])
  // The private section is padded with 1, 2, 3… to the cipher's block size (8 for "none").
  const padding = Buffer.from(Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1))
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    Buffer.from([0, 0, 0, 1]),
    sshString(publicBlob),
    sshString(Buffer.concat([secret, padding]))
  ])
  const lines = body.toString("base64").match(/.{1,70}/g) ?? []
  return ["-----BEGIN OPENSSH PRIVATE KEY-----", ...lines, "-----END OPENSSH PRIVATE KEY-----", ""].join("\n")
}

/** A fresh ed25519 key pair from Node's own crypto: the OpenSSH private key and the public line. */
export const generateEd25519 = (comment = ""): { readonly private: string; readonly public: string } => {
  const { privateKey } = generateKeyPairSync("ed25519")
  const jwk = privateKey.export({ format: "jwk" })
  const seed = Buffer.from(jwk.d ?? "", "base64url")
  const publicKey = Buffer.from(jwk.x ?? "", "base64url")
  const publicBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(publicKey)])
  return {
    private: encodeEd25519(seed, publicKey, comment),
    public: `ssh-ed25519 ${publicBlob.toString("base64")}${comment === "" ? "" : ` ${comment}`}`
  }
}

/** Reads the key at `path`, or creates it (mode 0600, its directory 0700) if there is none. */
export const loadOrCreate = (path: string): Effect.Effect<HostKey, Error> =>
  Effect.tryPromise({
    try: async () => {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 })
      const generated = generateEd25519()
      try {
        // `wx`: never overwrite a key another process wrote meanwhile.
        await writeFile(path, generated.private, { mode: 0o600, flag: "wx" })
        await writeFile(`${path}.pub`, `${generated.public}\n`, { mode: 0o644 })
      } catch (cause) {
        if (errnoCode(cause) !== "EEXIST") throw cause
      }
      const mode = (await stat(path)).mode & 0o777
      // Like sshd, do not serve with a key others can read; tighten it rather than refuse to start.
      if ((mode & 0o077) !== 0) await chmod(path, 0o600)
      const key = describe(await readFile(path, "utf8"))
      if (key instanceof Error) throw key
      return key
    },
    catch: (cause) =>
      cause instanceof Error
        ? new Error(`host key ${path}: ${cause.message}`, { cause })
        : new Error(String(cause))
  })
