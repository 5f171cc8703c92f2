// Shared steps for the builder tests: scratch directories, tar archives made with tar-stream,
// build requests, apps started with execa (and killed by the test's scope), bounded HTTP polling.
import { randomUUID } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { BuildId, CommitSha } from "@paas/core/Build"
import type { BuildRequest } from "@paas/core/ImageBuilder"
import type { Env, ProjectId } from "@paas/core/Project"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { execa } from "execa"
import tar from "tar-stream"
import { buildPath } from "../src/internal/localBuilder.js"

/** A temporary directory removed when the scope closes. */
export const scratch = (prefix = "paas-builder-") =>
  Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), prefix))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )

/** One archive entry: a file's content, or a header for anything else. */
export type Entry =
  | string
  | {
      readonly content?: string
      readonly mode?: number
      readonly type?: "file" | "directory" | "symlink" | "link" | "character-device" | "fifo"
      readonly linkname?: string
    }

/** A tar archive with these entries, in this order. */
export const tarball = (entries: Readonly<Record<string, Entry>> | ReadonlyArray<readonly [string, Entry]>) =>
  Effect.promise(
    () =>
      new Promise<Uint8Array>((resolve, reject) => {
        const pack = tar.pack()
        const chunks: Array<Uint8Array> = []
        pack.on("data", (chunk) => chunks.push(chunk as Uint8Array))
        pack.on("end", () => resolve(Buffer.concat(chunks)))
        pack.on("error", reject)
        const list = Array.isArray(entries) ? entries : Object.entries(entries)
        for (const [name, entry] of list) {
          if (typeof entry === "string") pack.entry({ name, mode: 0o644 }, entry)
          else {
            const type = entry.type ?? "file"
            const header = {
              name,
              type,
              mode: entry.mode ?? (type === "directory" ? 0o755 : 0o644),
              ...(entry.linkname !== undefined ? { linkname: entry.linkname } : {})
            }
            if (type === "file") pack.entry(header, entry.content ?? "")
            else pack.entry(header)
          }
        }
        pack.finalize()
      })
  )

/** A build request for a fresh project and build. */
export const request = (
  archive: Uint8Array,
  options: { readonly env?: Env; readonly projectId?: ProjectId } = {}
): BuildRequest => ({
  projectId: options.projectId ?? (randomUUID() as ProjectId),
  buildId: randomUUID() as BuildId,
  commit: "0123456789abcdef0123456789abcdef01234567" as CommitSha,
  // Several chunks, as git archive sends them.
  source: Stream.fromIterable(
    Array.from({ length: Math.ceil(archive.length / 1000) }, (_, i) =>
      archive.subarray(i * 1000, (i + 1) * 1000)
    )
  ),
  env: options.env ?? {}
})

/** A log callback that keeps every line. */
export const collect = () => {
  const lines: Array<string> = []
  return { lines, log: (line: string) => Effect.sync(() => void lines.push(line)) }
}

/** A port nobody listens on right now. */
export const freePort = Effect.promise(
  () =>
    new Promise<number>((resolve, reject) => {
      const server = createServer()
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        server.close(() => resolve(port))
      })
    })
)

/** Polls `url` until it answers (any status), for at most `timeoutMs`. */
export const waitForHttp = (url: string, init: RequestInit = {}, timeoutMs = 20_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        const response = await fetch(url, { ...init, signal: AbortSignal.timeout(2_000) })
        return { status: response.status, headers: response.headers, body: await response.text() }
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`${url} did not answer: ${String(e)}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  })

/** Starts an app the way the process runtime would (cwd = image, env = app env + PORT); killed with the scope. */
export const startApp = (image: string, command: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const [file, ...args] = command
      return execa(file!, args, {
        cwd: image,
        env: { PATH: buildPath(), ...env },
        extendEnv: false,
        stdin: "ignore",
        reject: false,
        all: true
      })
    }),
    (child) =>
      Effect.promise(async () => {
        child.kill("SIGTERM")
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
        await child
        clearTimeout(timer)
      })
  )

/** True when no live process has this pid (a zombie, dead and waiting to be reaped, counts as gone). */
export const isGone = (pid: number): boolean => {
  if (!existsSync(`/proc/${pid}`)) return true
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]
    return state === "Z" || state === "X"
  } catch {
    return true
  }
}

/** Polls `check` every 25 ms until true, for at most `timeoutMs`. */
export const eventually = (check: () => boolean, timeoutMs = 10_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) return false
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    return true
  })
