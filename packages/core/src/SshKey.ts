/**
 * SSH public keys: how a `git push` is tied to an account.
 */
import * as Schema from "effect/Schema"
import { UserId } from "./User.js"

/** The id of a stored key (a UUID). */
export const SshKeyId = Schema.UUID.pipe(Schema.brand("SshKeyId"))
/** The id of a stored key (a UUID). */
export type SshKeyId = typeof SshKeyId.Type

/** `SHA256:<base64 without padding>`, as `ssh-keygen -l` prints it. */
export const Fingerprint = Schema.String.pipe(
  Schema.pattern(/^SHA256:[A-Za-z0-9+/]{43}$/),
  Schema.brand("Fingerprint")
)
/** `SHA256:<base64 without padding>`, as `ssh-keygen -l` prints it. */
export type Fingerprint = typeof Fingerprint.Type

/** A key's display name: at most 30 characters. */
export const KeyName = Schema.String.pipe(
  Schema.maxLength(30, { message: () => "name must be at most 30 characters" })
)

/** A stored public key. `value` is the normalised OpenSSH line (`<type> <base64> [comment]`). */
export class SshKey extends Schema.Class<SshKey>("@paas/core/SshKey")({
  id: SshKeyId,
  userId: UserId,
  name: Schema.String,
  value: Schema.String,
  fingerprint: Fingerprint,
  createdAt: Schema.DateFromSelf,
  updatedAt: Schema.DateFromSelf
}) {}

/** A public key as parsed from an OpenSSH line. */
export interface ParsedPublicKey {
  /** The key type, e.g. `ssh-ed25519`. */
  readonly type: string
  /** The wire-format public key blob. */
  readonly blob: Uint8Array
  readonly comment: string
  readonly fingerprint: Fingerprint
  /** `<type> <base64>[ <comment>]`, with surrounding whitespace removed. */
  readonly normalized: string
}
