import { generateKeyPairSync, verify } from "node:crypto"
import { readFile, stat, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import ssh2 from "ssh2"
import { encodeEd25519, generateEd25519, loadOrCreate } from "../src/internal/hostKey.js"
import { exec, scratch } from "./support.js"

const raw = (jwkField: string | undefined) => Buffer.from(jwkField ?? "", "base64url")

/** A Node ed25519 key whose public key starts with a zero byte: the case ssh2's own generator gets wrong. */
const keyWithLeadingZero = () => {
  // About one key in 256 qualifies; 20,000 tries miss with a probability below 10^-34.
  for (let attempt = 0; attempt < 20_000; attempt++) {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519")
    const jwk = privateKey.export({ format: "jwk" })
    if (raw(jwk.x)[0] === 0) return { seed: raw(jwk.d), pub: raw(jwk.x), publicKey }
  }
  throw new Error("no ed25519 key with a leading zero byte in 20,000 tries")
}

describe("host key", () => {
  it.scoped("encodes a key whose public key starts with a zero byte so ssh2 and OpenSSH both read it", () =>
    Effect.gen(function* () {
      const key = keyWithLeadingZero()
      const pem = encodeEd25519(key.seed, key.pub, "host")
      const parsed = ssh2.utils.parseKey(pem)
      if (parsed instanceof Error || Array.isArray(parsed))
        return assert.fail(`ssh2 refused the key: ${parsed}`)
      assert.strictEqual(parsed.type, "ssh-ed25519")
      // The key ssh2 loaded signs what Node's public key verifies: the same key pair.
      const data = Buffer.from("a session id")
      assert.isTrue(verify(null, data, key.publicKey, parsed.sign(data)))

      const dir = yield* scratch()
      const file = join(dir, "key")
      yield* Effect.promise(() => writeFile(file, pem, { mode: 0o600 }))
      const derived = yield* exec("ssh-keygen", ["-y", "-f", file])
      assert.strictEqual(derived.exitCode, 0, derived.stderr)
      assert.strictEqual(
        derived.stdout.trim().split(" ").slice(0, 2).join(" "),
        `ssh-ed25519 ${parsed.getPublicSSH().toString("base64")}`
      )
    })
  )

  it("generates keys ssh2 can always read", () => {
    for (let i = 0; i < 1000; i++) {
      const pair = generateEd25519()
      const parsed = ssh2.utils.parseKey(pair.private)
      assert.isFalse(parsed instanceof Error, String(parsed))
      assert.isFalse(ssh2.utils.parseKey(pair.public) instanceof Error, pair.public)
    }
  })

  it.scoped("is created once, private to the server, and read back unchanged on the next start", () =>
    Effect.gen(function* () {
      const dir = yield* scratch()
      const path = join(dir, "data", "ssh_host_ed25519_key")
      const first = yield* loadOrCreate(path)
      assert.strictEqual((yield* Effect.promise(() => stat(path))).mode & 0o777, 0o600)
      const published = yield* Effect.promise(() => readFile(`${path}.pub`, "utf8"))
      assert.strictEqual(published.trim(), first.publicKey)
      const second = yield* loadOrCreate(path)
      assert.deepStrictEqual(second, first)
      assert.match(first.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/)
    })
  )

  it.scoped("refuses a file that is not an ed25519 key", () =>
    Effect.gen(function* () {
      const dir = yield* scratch()
      const path = join(dir, "key")
      yield* Effect.promise(() => writeFile(path, "not a key\n", { mode: 0o600 }))
      const error = yield* Effect.flip(loadOrCreate(path))
      assert.include(error.message, path)
    })
  )
})
