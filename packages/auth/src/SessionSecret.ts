/**
 * SessionSecret: the key that signs session tokens. It comes from `PAAS_JWT_SECRET` when that is
 * set; otherwise it is generated once and kept in the data directory, so sessions survive restarts
 * without anyone having to invent a secret.
 */
import { randomBytes } from "node:crypto"
import { link, mkdir, open, readFile, stat, unlink } from "node:fs/promises"
import { join } from "node:path"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

/** The file in the data directory that holds a generated secret. */
export const fileName = "jwt-secret"

/** The environment variable that, when set, holds the secret. */
export const variable = "PAAS_JWT_SECRET"

/** The shortest secret accepted, in bytes: HS256 wants a key at least as long as its hash. */
export const minBytes = 32

/** Whether a secret is long enough to sign sessions with. */
export const isStrongEnough = (secret: Redacted.Redacted<string>): boolean =>
  Buffer.byteLength(Redacted.value(secret), "utf8") >= minBytes

interface Loaded {
  readonly secret: string
  readonly created: boolean
  readonly groupOrWorldReadable: boolean
}

// Creates the file atomically and exclusively: the secret is written and synced under a temporary
// name, then hard-linked into place, so a crash never leaves a short file and two processes
// starting together end up with the same secret.
const readOrCreate = async (dataDir: string, path: string): Promise<Loaded> => {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const temporary = join(dataDir, `.${fileName}.${process.pid}.${randomBytes(4).toString("hex")}`)
  const generated = randomBytes(32).toString("base64url")
  const handle = await open(temporary, "wx", 0o600)
  try {
    await handle.writeFile(`${generated}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await link(temporary, path)
    return { secret: generated, created: true, groupOrWorldReadable: false }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
  } finally {
    await unlink(temporary).catch(() => undefined)
  }
  const [text, info] = await Promise.all([readFile(path, "utf8"), stat(path)])
  return { secret: text.trim(), created: false, groupOrWorldReadable: (info.mode & 0o077) !== 0 }
}

/**
 * Reads `<dataDir>/jwt-secret`, creating it the first time with 32 random bytes (base64url) and
 * mode 0600. Fails with a `ConfigError` naming `PAAS_JWT_SECRET` when the file cannot be read or
 * created, or holds fewer than 32 bytes.
 */
export const loadOrCreate = (
  dataDir: string
): Effect.Effect<Redacted.Redacted<string>, ConfigError.ConfigError> => {
  const path = join(dataDir, fileName)
  return Effect.tryPromise({
    try: () => readOrCreate(dataDir, path),
    catch: (cause) =>
      ConfigError.SourceUnavailable(
        [variable],
        `${variable} is unset and the secret file ${path} cannot be read or created`,
        Cause.fail(cause)
      )
  }).pipe(
    Effect.tap((loaded) =>
      loaded.created
        ? Effect.logInfo(`generated a new session secret in ${path}`)
        : loaded.groupOrWorldReadable
          ? Effect.logWarning(`the session secret ${path} is readable by other users: chmod 600 it`)
          : Effect.void
    ),
    Effect.flatMap((loaded) => {
      const secret = Redacted.make(loaded.secret)
      return isStrongEnough(secret)
        ? Effect.succeed(secret)
        : Effect.fail(
            ConfigError.InvalidData(
              [variable],
              `${path} holds fewer than ${minBytes} bytes: delete it to generate a new secret`
            )
          )
    })
  )
}

/**
 * The session secret from `PAAS_JWT_SECRET` (at least 32 bytes) when it is set and not empty,
 * otherwise from `loadOrCreate(dataDir)`.
 */
export const fromConfig = (
  dataDir: string
): Effect.Effect<Redacted.Redacted<string>, ConfigError.ConfigError> =>
  Effect.flatMap(Config.option(Config.redacted(variable)), (configured) =>
    Option.match(
      Option.filter(configured, (secret) => Redacted.value(secret).trim().length > 0),
      {
        onNone: () => loadOrCreate(dataDir),
        onSome: (secret) =>
          isStrongEnough(secret)
            ? Effect.succeed(secret)
            : Effect.fail(ConfigError.InvalidData([variable], `must be at least ${minBytes} bytes long`))
      }
    )
  )
