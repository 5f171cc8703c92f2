// The server's ed25519 host key: generated once, then read back on every start, so clients see
// the same host key across restarts.
import { createHash } from "node:crypto"
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

/** Reads the key at `path`, or creates it (mode 0600, its directory 0700) if there is none. */
export const loadOrCreate = (path: string): Effect.Effect<HostKey, Error> =>
  Effect.tryPromise({
    try: async () => {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 })
      const generated = utils.generateKeyPairSync("ed25519")
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
