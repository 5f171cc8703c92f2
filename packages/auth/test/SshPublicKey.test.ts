import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { AuthProvider } from "@paas/core/AuthProvider"
import type { ValidationError } from "@paas/core/Errors"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as PasswordAuth from "../src/PasswordAuth.js"
import * as SshPublicKey from "../src/SshPublicKey.js"
import { run, scratchDir } from "./support.js"

// Keys made by the real ssh-keygen, and what `ssh-keygen -l` says about them.
interface Generated {
  readonly publicLine: string
  readonly privateKey: string
  readonly fingerprint: string
}

const specs = {
  ed25519: ["-t", "ed25519"],
  ecdsa256: ["-t", "ecdsa", "-b", "256"],
  ecdsa384: ["-t", "ecdsa", "-b", "384"],
  ecdsa521: ["-t", "ecdsa", "-b", "521"],
  rsa2048: ["-t", "rsa", "-b", "2048"],
  rsa3072: ["-t", "rsa"],
  rsa1024: ["-t", "rsa", "-b", "1024"],
  dsa: ["-t", "dsa"],
  rsaPem: ["-t", "rsa", "-b", "2048", "-m", "PEM"],
  ecdsaPkcs8: ["-t", "ecdsa", "-m", "PKCS8"],
  encrypted: ["-t", "ed25519", "-N", "correct horse battery staple"]
} as const

type KeyName = keyof typeof specs

class Keys extends Context.Tag("test/Keys")<
  Keys,
  { readonly dir: string; readonly keys: Record<KeyName, Generated> }
>() {}

const fingerprintByKeygen = (dir: string, line: string, name: string) =>
  Effect.gen(function* () {
    const file = join(dir, name)
    yield* Effect.promise(() => writeFile(file, `${line}\n`))
    const printed = yield* run("ssh-keygen", ["-l", "-E", "sha256", "-f", file])
    const fingerprint = /SHA256:[A-Za-z0-9+/]+/.exec(printed)?.[0]
    if (fingerprint === undefined) return yield* Effect.dieMessage(`no fingerprint in: ${printed}`)
    return fingerprint
  })

const KeysLive = Layer.scoped(
  Keys,
  Effect.gen(function* () {
    const dir = yield* scratchDir
    const entries = yield* Effect.forEach(
      Object.entries(specs) as Array<[KeyName, ReadonlyArray<string>]>,
      ([name, args]) =>
        Effect.gen(function* () {
          const file = join(dir, name)
          const withPassphrase = args.includes("-N") ? [] : ["-N", ""]
          yield* run("ssh-keygen", ["-q", ...args, ...withPassphrase, "-C", `${name}@test host`, "-f", file])
          const [publicLine, privateKey] = yield* Effect.promise(() =>
            Promise.all([readFile(`${file}.pub`, "utf8"), readFile(file, "utf8")])
          )
          const printed = yield* run("ssh-keygen", ["-l", "-E", "sha256", "-f", `${file}.pub`])
          const fingerprint = /SHA256:[A-Za-z0-9+/]+/.exec(printed)?.[0] ?? ""
          return [name, { publicLine: publicLine.trim(), privateKey, fingerprint }] as const
        }),
      { concurrency: 4 }
    )
    return { dir, keys: Object.fromEntries(entries) as Record<KeyName, Generated> }
  })
)

const refusal = (line: string) =>
  Effect.flip(SshPublicKey.parse(line)).pipe(
    Effect.tap((error: ValidationError) => Effect.sync(() => assert.strictEqual(error.field, "value")))
  )

// Builds the wire format: each field as a uint32 length and its bytes.
const sshBlob = (...fields: ReadonlyArray<string | Uint8Array>) =>
  Buffer.concat(
    fields.flatMap((field) => {
      const bytes = typeof field === "string" ? Buffer.from(field, "latin1") : Buffer.from(field)
      const length = Buffer.alloc(4)
      length.writeUInt32BE(bytes.length)
      return [length, bytes]
    })
  )

const fieldsOf = (base64: string) => {
  const blob = Buffer.from(base64, "base64")
  const fields: Array<Buffer> = []
  for (let offset = 0; offset < blob.length; ) {
    const length = blob.readUInt32BE(offset)
    fields.push(blob.subarray(offset + 4, offset + 4 + length))
    offset += 4 + length
  }
  return fields
}

const base64Of = (line: string) => line.split(" ")[1]!

it.layer(KeysLive, { timeout: 60_000 })("SshPublicKey with keys from ssh-keygen", (it) => {
  describe("accepts", () => {
    for (const name of ["ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa2048", "rsa3072"] as const) {
      it.effect(`${name}, with the fingerprint ssh-keygen prints`, () =>
        Effect.gen(function* () {
          const { dir, keys } = yield* Keys
          const key = keys[name]
          const parsed = yield* SshPublicKey.parse(key.publicLine)
          const [type, base64] = key.publicLine.split(" ")
          assert.strictEqual(parsed.type, type)
          assert.match(key.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/)
          assert.strictEqual(parsed.fingerprint, key.fingerprint)
          assert.deepStrictEqual(Buffer.from(parsed.blob), Buffer.from(base64!, "base64"))
          assert.strictEqual(parsed.comment, `${name}@test host`)
          assert.strictEqual(parsed.normalized, key.publicLine)
          // What we store is a line ssh-keygen reads back as the same key.
          assert.strictEqual(
            yield* fingerprintByKeygen(dir, parsed.normalized, `${name}.normalized.pub`),
            key.fingerprint
          )
        })
      )
    }

    it.effect("surrounding whitespace, tabs between fields and a missing comment", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        const [type, base64] = keys.ed25519.publicLine.split(" ")
        const spaced = yield* SshPublicKey.parse(`  \t${type}\t  ${base64}   my  laptop  \n`)
        assert.strictEqual(spaced.normalized, `${type} ${base64} my  laptop`)
        assert.strictEqual(spaced.comment, "my  laptop")
        const bare = yield* SshPublicKey.parse(`${type} ${base64}`)
        assert.strictEqual(bare.comment, "")
        assert.strictEqual(bare.normalized, `${type} ${base64}`)
        assert.strictEqual(bare.fingerprint, keys.ed25519.fingerprint)
      })
    )

    it.effect("a line of exactly 16 KiB", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        const line = `${keys.ed25519.publicLine} `
        const padded = line + "x".repeat(SshPublicKey.maxLineBytes - Buffer.byteLength(line))
        assert.strictEqual(Buffer.byteLength(padded), 16 * 1024)
        const parsed = yield* SshPublicKey.parse(padded)
        assert.strictEqual(parsed.fingerprint, keys.ed25519.fingerprint)
      })
    )

    it.effect("through PasswordAuth's AuthProvider", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        const auth = yield* AuthProvider
        const parsed = yield* auth.parsePublicKey(keys.ecdsa256.publicLine)
        assert.strictEqual(parsed.fingerprint, keys.ecdsa256.fingerprint)
        const error = yield* Effect.flip(auth.parsePublicKey(keys.ed25519.privateKey))
        assert.strictEqual(error._tag, "ValidationError")
      }).pipe(Effect.provide(PasswordAuth.layer({ secret: Redacted.make("x".repeat(32)) })))
    )
  })

  describe("refuses private keys", () => {
    for (const name of ["ed25519", "rsaPem", "ecdsaPkcs8", "encrypted"] as const) {
      it.effect(`${name} private key`, () =>
        Effect.gen(function* () {
          const { keys } = yield* Keys
          const error = yield* refusal(keys[name].privateKey)
          assert.match(error.message, /private key/)
        })
      )
    }

    it.effect("a private key pasted into one line, or its body without the armour", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        const pem = keys.ed25519.privateKey
        assert.match((yield* refusal(pem.replace(/\n/g, " "))).message, /private key/)
        const body = pem
          .split("\n")
          .filter((line) => line.length > 0 && !line.startsWith("-----"))
          .join("")
        assert.match((yield* refusal(body)).message, /private key/)
        assert.match((yield* refusal(`ssh-ed25519 ${body}`)).message, /private key/)
      })
    )
  })

  describe("refuses", () => {
    it.effect("a declared type that differs from the blob's", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        const ed = base64Of(keys.ed25519.publicLine)
        assert.strictEqual(
          (yield* refusal(`ssh-rsa ${ed} x`)).message,
          "value declares ssh-rsa but holds a key of type ssh-ed25519"
        )
        const p384 = base64Of(keys.ecdsa384.publicLine)
        assert.match((yield* refusal(`ecdsa-sha2-nistp256 ${p384}`)).message, /declares ecdsa-sha2-nistp256/)
        // The curve is named twice in an ECDSA blob; both must agree with the declared type.
        const [, , point] = fieldsOf(base64Of(keys.ecdsa384.publicLine))
        const forged = sshBlob("ecdsa-sha2-nistp256", "nistp384", point!).toString("base64")
        assert.match((yield* refusal(`ecdsa-sha2-nistp256 ${forged}`)).message, /another curve/)
      })
    )

    it.effect("bad base64", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        const good = base64Of(keys.ed25519.publicLine)
        assert.strictEqual(
          (yield* refusal(`ssh-ed25519 ${good.slice(0, 20)}!*${good.slice(22)}`)).message,
          "value is not valid base64"
        )
        assert.strictEqual((yield* refusal(`ssh-ed25519 ${good}=`)).message, "value is not valid base64")
        // Base64 whose unused bits are set decodes leniently in Node, but is not what ssh-keygen wrote.
        const ecdsa = base64Of(keys.ecdsa256.publicLine)
        assert.isTrue(ecdsa.endsWith("="))
        const lastChar = ecdsa.at(-2)!
        const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        const sloppy = `${ecdsa.slice(0, -2)}${alphabet[alphabet.indexOf(lastChar) ^ 1]}=`
        assert.strictEqual(
          (yield* refusal(`ecdsa-sha2-nistp256 ${sloppy}`)).message,
          "value is not valid base64"
        )
      })
    )

    it.effect("truncated blobs", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        for (const name of ["ed25519", "rsa2048", "ecdsa256"] as const) {
          const [type, base64] = keys[name].publicLine.split(" ")
          const blob = Buffer.from(base64!, "base64")
          // Cut inside the key material, then re-encoded: well-formed base64 of too few bytes.
          const cut = blob.subarray(0, blob.length - 7).toString("base64")
          assert.strictEqual((yield* refusal(`${type} ${cut}`)).message, "value is truncated")
          // Cut as a copy-paste would: the base64 itself stops short.
          assert.match((yield* refusal(`${type} ${base64!.slice(0, 45)}`)).message, /truncated|base64/)
        }
        assert.strictEqual((yield* refusal("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5")).message, "value is truncated")
        const onlyType = sshBlob("ssh-ed25519").toString("base64")
        assert.strictEqual((yield* refusal(`ssh-ed25519 ${onlyType}`)).message, "value is truncated")
      })
    )

    it.effect("trailing data after the key, and key material of the wrong size", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        const fields = fieldsOf(base64Of(keys.ed25519.publicLine))
        const extra = sshBlob(...fields, "extra").toString("base64")
        assert.match((yield* refusal(`ssh-ed25519 ${extra}`)).message, /trailing data/)
        const short = sshBlob("ssh-ed25519", fields[1]!.subarray(0, 31)).toString("base64")
        assert.match((yield* refusal(`ssh-ed25519 ${short}`)).message, /32 bytes/)
      })
    )

    it.effect("an ECDSA point that is not on its curve", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        const [type, curve, point] = fieldsOf(base64Of(keys.ecdsa256.publicLine))
        const bent = Buffer.from(point!)
        bent[40] = bent[40]! ^ 0xff
        const line = `ecdsa-sha2-nistp256 ${sshBlob(type!, curve!, bent).toString("base64")}`
        assert.strictEqual((yield* refusal(line)).message, "value is not a valid ecdsa-sha2-nistp256 key")
      })
    )

    it.effect("unsupported types: DSA, security keys, certificates, unknown names", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        assert.match((yield* refusal(keys.dsa.publicLine)).message, /DSA/)
        // ssh-keygen needs a FIDO token to make one, so build the blob: type, key, application.
        const sk = sshBlob("sk-ssh-ed25519@openssh.com", Buffer.alloc(32, 7), "ssh:").toString("base64")
        assert.match((yield* refusal(`sk-ssh-ed25519@openssh.com ${sk} yubikey`)).message, /security-key/)
        const ed = base64Of(keys.ed25519.publicLine)
        assert.match((yield* refusal(`ssh-ed25519-cert-v01@openssh.com ${ed}`)).message, /certificate/)
        const unknown = yield* refusal(`ssh-foo ${ed}`)
        assert.strictEqual(
          unknown.message,
          "value has an unsupported key type 'ssh-foo' (accepted: ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, ssh-rsa)"
        )
        // authorized_keys options are not part of a key.
        assert.match((yield* refusal(`no-pty ${keys.ed25519.publicLine}`)).message, /unsupported key type/)
      })
    )

    it.effect("RSA keys under 2048 bits", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        assert.strictEqual(
          (yield* refusal(keys.rsa1024.publicLine)).message,
          "value is a 1024-bit RSA key: RSA keys must have at least 2048 bits"
        )
      })
    )

    it.effect("lines over 16 KiB, several lines, control characters, empty and partial input", () =>
      Effect.gen(function* () {
        const { keys } = yield* Keys
        const line = `${keys.ed25519.publicLine} `
        const long = line + "x".repeat(SshPublicKey.maxLineBytes + 1 - Buffer.byteLength(line))
        assert.match((yield* refusal(long)).message, /too long/)
        const two = `${keys.ed25519.publicLine}\n${keys.ecdsa256.publicLine}`
        assert.strictEqual((yield* refusal(two)).message, "value must be a single line")
        assert.match((yield* refusal(`${keys.ed25519.publicLine}\u0000`)).message, /control characters/)
        assert.match((yield* refusal("   ")).message, /OpenSSH public key/)
        assert.match((yield* refusal("ssh-ed25519")).message, /<type> <base64> \[comment\]/)
        assert.match(
          (yield* refusal("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----")).message,
          /not a PEM/
        )
      })
    )
  })
})

describe("SshPublicKey.fingerprint", () => {
  it("hashes the blob with SHA-256 and drops the base64 padding", () => {
    const fingerprint = SshPublicKey.fingerprint(new Uint8Array())
    // sha256("") in base64 is 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
    assert.strictEqual(fingerprint, "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU")
  })
})
