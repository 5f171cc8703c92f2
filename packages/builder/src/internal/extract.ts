// Unpacking a commit's tree (a tar stream, as `git archive` writes it) into a fresh directory,
// refusing anything that could land outside it.
//
// The rules, stricter than tar's and enough for anything git can store:
// - names are relative, without `..` segments and without NUL;
// - regular files, directories and symbolic links only (no hard links, devices or fifos);
// - nothing is written through a symbolic link: every parent of an entry must be a directory this
//   extraction created, and files are created with O_EXCL, so no entry replaces another;
// - a link's target is relative, climbs (`..`) only at its start and no higher than the root, and
//   never climbs again after naming something. With every link obeying this, each resolves inside
//   the root however links point at links.
// Modes are kept (executables stay executable), without setuid, setgid or sticky bits.

import { chmod, mkdir, open, symlink } from "node:fs/promises"
import { join } from "node:path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import tar from "tar-stream"

/** The archive is unsafe or could not be unpacked. */
export class ExtractError extends Data.TaggedError("ExtractError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** Limits for one extraction. */
export interface ExtractLimits {
  readonly maxBytes: number
  readonly maxEntries: number
}

/** What was unpacked: how many regular files, and their bytes. */
export interface Extracted {
  readonly files: number
  readonly bytes: number
}

const MAX_NAME = 4096

type Kind = "dir" | "file" | "symlink"

class Refused extends Error {}

function refuse(name: string, why: string): never {
  throw new Refused(`refusing archive entry ${JSON.stringify(name.slice(0, 200))}: ${why}`)
}

/** The entry's path as segments, or a refusal. An empty result is the root itself. */
export const entryPath = (name: string): Array<string> => {
  if (name.length > MAX_NAME) return refuse(name, "name too long")
  if (name.includes("\0")) return refuse(name, "NUL in name")
  if (name.startsWith("/")) return refuse(name, "absolute path")
  const parts = name.split("/").filter((p) => p !== "" && p !== ".")
  if (parts.includes("..")) return refuse(name, "'..' in path")
  return parts
}

/** Whether a link at `parts` (its own path) pointing at `target` stays inside the root. */
export const isSafeLinkTarget = (parts: ReadonlyArray<string>, target: string): boolean => {
  if (target === "" || target.length > MAX_NAME || target.includes("\0") || target.startsWith("/"))
    return false
  const depth = parts.length - 1
  let climbs = 0
  let named = false
  for (const segment of target.split("/")) {
    if (segment === "" || segment === ".") continue
    if (segment === "..") {
      if (named) return false
      climbs++
      if (climbs > depth) return false
    } else named = true
  }
  return true
}

const unpack = async (extractor: tar.Extract, root: string, limits: ExtractLimits): Promise<Extracted> => {
  const kinds = new Map<string, Kind>([["", "dir"]])
  let entries = 0
  let files = 0
  let bytes = 0
  for await (const entry of extractor) {
    const header = entry.header
    const name = header.name
    const parts = entryPath(name)
    if (++entries > limits.maxEntries) refuse(name, `more than ${limits.maxEntries} entries`)
    const type = header.type ?? "file"
    const kind: Kind | undefined =
      type === "file" || type === "contiguous-file"
        ? "file"
        : type === "directory"
          ? "dir"
          : type === "symlink"
            ? "symlink"
            : undefined
    if (kind === undefined) refuse(name, type === "link" ? "hard link" : `unsupported entry type ${type}`)
    if (parts.length === 0) {
      if (kind !== "dir") refuse(name, "no name")
      entry.resume()
      continue
    }
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/")
      const existing = kinds.get(prefix)
      if (existing === undefined) {
        await mkdir(join(root, prefix), { mode: 0o755 })
        kinds.set(prefix, "dir")
      } else if (existing !== "dir") refuse(name, `${prefix} is not a directory`)
    }
    const path = parts.join("/")
    const target = join(root, path)
    const existing = kinds.get(path)
    if (existing !== undefined && !(existing === "dir" && kind === "dir")) refuse(name, "duplicate entry")
    const mode = (header.mode ?? (kind === "dir" ? 0o755 : 0o644)) & 0o777
    if (kind === "dir") {
      if (existing === undefined) await mkdir(target)
      await chmod(target, mode | 0o700)
      entry.resume()
    } else if (kind === "symlink") {
      const link = header.linkname ?? ""
      if (!isSafeLinkTarget(parts, link)) refuse(name, `link target ${JSON.stringify(link)} leaves the tree`)
      await symlink(link, target)
      entry.resume()
    } else {
      const file = await open(target, "wx", 0o600)
      try {
        for await (const chunk of entry as AsyncIterable<Buffer>) {
          bytes += chunk.length
          if (bytes > limits.maxBytes) refuse(name, `the tree is larger than ${limits.maxBytes} bytes`)
          await file.write(chunk)
        }
      } finally {
        await file.close()
      }
      await chmod(target, mode | 0o600)
      files++
    }
    kinds.set(path, kind)
  }
  return { files, bytes }
}

/** Unpacks `source` into `root`, an existing empty directory. */
export const extract = <E>(
  source: Stream.Stream<Uint8Array, E>,
  root: string,
  limits: ExtractLimits
): Effect.Effect<Extracted, ExtractError | E> =>
  Effect.suspend(() => {
    const extractor = tar.extract()
    const write = (chunk: Uint8Array) =>
      Effect.async<void>((resume) => {
        if (
          extractor.destroyed ||
          extractor.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
        ) {
          resume(Effect.void)
          return
        }
        const go = () => {
          extractor.off("drain", go)
          extractor.off("close", go)
          resume(Effect.void)
        }
        extractor.on("drain", go)
        extractor.on("close", go)
      })
    const produce = Stream.runForEach(source, write).pipe(
      Effect.zipRight(Effect.sync(() => extractor.end(null))),
      Effect.onInterrupt(() => Effect.sync(() => extractor.destroy()))
    )
    const consume = Effect.tryPromise({
      try: (signal) => {
        signal.addEventListener("abort", () => extractor.destroy())
        return unpack(extractor, root, limits)
      },
      catch: (cause) =>
        cause instanceof Refused
          ? new ExtractError({ message: cause.message })
          : new ExtractError({
              message: `could not unpack the source: ${cause instanceof Error ? cause.message : String(cause)}`,
              cause
            })
    })
    return Effect.map(Effect.all([produce, consume], { concurrency: 2 }), ([, extracted]) => extracted)
  })
