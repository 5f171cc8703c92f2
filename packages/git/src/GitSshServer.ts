/**
 * GitSshServer: `git push` and `git clone`/`fetch` over SSH. Keys are authenticated and each
 * repository authorised by the Platform; only `git-receive-pack` and `git-upload-pack` run, on a
 * path that must be a project id; a push is reported to the Platform in-process, which builds and
 * deploys it while the pusher watches the output as `remote:` lines.
 */

import type { Platform } from "@paas/core/Platform"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { GitRepoStore } from "./GitRepoStore.js"
import * as internal from "./internal/sshServer.js"

/** Where the server listens, where its host key lives, and its limits. */
export interface GitSshServerOptions {
  /** The address to listen on; `127.0.0.1` by default. */
  readonly host?: string | undefined
  /** The port; `0` picks a free one (read it back from the service). */
  readonly port: number
  /** The data directory: the host key is `<dataDir>/ssh_host_ed25519_key` unless `hostKeyPath` says otherwise. */
  readonly dataDir?: string | undefined
  /** The ed25519 host key file; generated (mode 0600) on first start. */
  readonly hostKeyPath?: string | undefined
  /** How many git commands one account may run at once; 5 by default. */
  readonly maxSessionsPerAccount?: number | undefined
  /** How many TCP connections the server holds at once; 64 by default. */
  readonly maxConnections?: number | undefined
  /** A connection that moves no data for this long is closed (a build in progress does not count as idle); 5 minutes by default. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** A connection must have authenticated within this time; 30 seconds by default. */
  readonly authTimeout?: Duration.DurationInput | undefined
  /** The most bytes one push may send; the push is refused beyond it. 1 GiB by default. */
  readonly maxPushBytes?: number | undefined
  /** The git executable; the repository store's by default. */
  readonly git?: string | undefined
}

/** Counters for monitoring, and for tests asserting that nothing ran. */
export interface GitSshServerStats {
  /** TCP connections open now. */
  readonly connections: number
  /** git processes running now. */
  readonly running: number
  /** git processes started since the server started. */
  readonly started: number
  /** Requests refused (commands, paths, authorisation, limits) since the server started. */
  readonly refused: number
}

/** The running server. */
export class GitSshServer extends Context.Tag("@paas/git/GitSshServer")<
  GitSshServer,
  {
    readonly host: string
    /** The port listened on (the chosen one when the options said 0). */
    readonly port: number
    /** The host key's public line (`ssh-ed25519 AAAA…`), for clients' known_hosts. */
    readonly hostPublicKey: string
    /** The host key's fingerprint (`SHA256:…`), as ssh prints it. */
    readonly hostKeyFingerprint: string
    readonly stats: Effect.Effect<GitSshServerStats>
  }
>() {}

/** The server could not start: bad options, an unreadable host key, a port in use. */
export class GitSshServerError extends Schema.TaggedError<GitSshServerError>()("GitSshServerError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** Default limits. */
export const defaults = internal.defaults

/** Starts the server in the current scope; closing the scope closes the listener and every connection. */
export const make: (
  options: GitSshServerOptions
) => Effect.Effect<GitSshServer["Type"], GitSshServerError, Platform | GitRepoStore | Scope.Scope> =
  internal.make

/** The server as a scoped layer. */
export const layer = (
  options: GitSshServerOptions
): Layer.Layer<GitSshServer, GitSshServerError, Platform | GitRepoStore> =>
  Layer.scoped(GitSshServer, make(options))
