// Build contexts for the engine: the commit's tree, unpacked safely on disk (extract.ts), packed
// again as the tar stream the engine reads, with `.dockerignore` applied, optionally under a
// prefix and with extra files (a generated Dockerfile) beside it.
//
// Unpacking first costs a copy on disk, but paas.yaml decides which Dockerfile and which
// sub-directory to use, and it may come last in the archive: the tree has to be looked at before
// anything is sent. It also keeps one set of safety rules for every builder.

import { createReadStream } from "node:fs"
import { lstat, readdir, readFile, readlink, realpath, stat } from "node:fs/promises"
import { join, relative, sep } from "node:path"
import { Readable } from "node:stream"
import tar, { type Header } from "tar-stream"
import * as dockerignore from "./dockerignore.js"

/** A file added to the context from memory. */
export interface ExtraFile {
  /** Its path in the context (relative, `/`-separated). */
  readonly name: string
  readonly content: string
}

/** What goes into a context. */
export interface ContextSpec {
  /** The directory whose contents are sent; none sends only `extra`. */
  readonly root: string | undefined
  /** Put the directory's contents under this folder of the context instead of at its root. */
  readonly prefix?: string | undefined
  /** Files added from memory; a file of the directory with the same context path is left out. */
  readonly extra: ReadonlyArray<ExtraFile>
  /** Paths (relative to `root`) sent even when `.dockerignore` leaves them out, as the CLI does. */
  readonly alwaysSend: ReadonlySet<string>
}

/** A context being packed: the stream to send, and why packing stopped early, if it did. */
export interface PackedContext {
  readonly stream: Readable
  readonly failure: () => Error | undefined
}

const MAX_SMALL_FILE = 1024 * 1024

/** The text of a small regular file, refusing directories, devices and anything over 1 MiB. */
export const readSmallFile = async (path: string): Promise<string> => {
  const info = await stat(path)
  if (!info.isFile()) throw new Error("not a regular file")
  if (info.size > MAX_SMALL_FILE) throw new Error(`larger than ${MAX_SMALL_FILE} bytes`)
  return readFile(path, "utf8")
}

/** Whether `path` exists once links are followed, and what it is. */
export const kindOf = async (path: string): Promise<"file" | "directory" | "other" | "missing"> => {
  try {
    const info = await stat(path)
    return info.isFile() ? "file" : info.isDirectory() ? "directory" : "other"
  } catch {
    return "missing"
  }
}

/** Whether `path`, links followed, stays inside `root` (both absolute). */
export const staysInside = async (root: string, path: string): Promise<boolean> => {
  try {
    const [base, real] = await Promise.all([realpath(root), realpath(path)])
    return real === base || real.startsWith(base + sep)
  } catch {
    return false
  }
}

/** `path` relative to `root` when it is inside it (without following links), else undefined. */
export const insidePath = (root: string, path: string): string | undefined => {
  const rel = relative(root, path)
  if (rel === "" || rel.startsWith("..") || rel.startsWith(sep)) return undefined
  return rel.split(sep).join("/")
}

const headerBase = { uid: 0, gid: 0, uname: "", gname: "" }

/** Packs `spec` into a tar stream, lazily: files are read as the engine takes the stream. */
export const packContext = (spec: ContextSpec): PackedContext => {
  const pack = tar.pack()
  let failure: Error | undefined
  const extraNames = new Set(spec.extra.map((f) => f.name))
  const contextName = (rel: string) => (spec.prefix === undefined ? rel : `${spec.prefix}/${rel}`)

  const add = (header: Partial<Header> & { readonly name: string }, content?: string) =>
    new Promise<void>((resolve, reject) => {
      if (pack.destroyed) return reject(new Error("the build stopped reading its context"))
      if (content === undefined) pack.entry(header, (e) => (e ? reject(e) : resolve()))
      else pack.entry(header, content, (e) => (e ? reject(e) : resolve()))
    })

  const addFile = (header: Partial<Header> & { readonly name: string }, path: string) =>
    new Promise<void>((resolve, reject) => {
      if (pack.destroyed) return reject(new Error("the build stopped reading its context"))
      const sink = pack.entry(header, (e) => (e ? reject(e) : resolve()))
      const source = createReadStream(path)
      const fail = (e: Error) => {
        source.destroy()
        sink.destroy(e)
        reject(e)
      }
      source.on("error", fail)
      sink.on("error", fail)
      source.on("data", (chunk) => {
        if (!sink.write(chunk)) {
          source.pause()
          sink.once("drain", () => source.resume())
        }
      })
      source.on("end", () => sink.end(undefined))
    })

  const produce = async () => {
    const root = spec.root
    const ignoreText =
      root === undefined ? "" : await readSmallFile(join(root, ".dockerignore")).catch(() => "")
    const patterns = dockerignore.parse(ignoreText)
    // Only a re-including pattern can bring something back from an ignored folder.
    const mayReinclude = patterns.some((p) => p.negate)
    for (const file of spec.extra)
      await add({ ...headerBase, name: file.name, mode: 0o644, mtime: new Date() }, file.content)
    if (spec.prefix !== undefined && root !== undefined)
      await add({ ...headerBase, name: spec.prefix, type: "directory", mode: 0o755, mtime: new Date() })

    const walk = async (dir: string, rel: string): Promise<void> => {
      const names = (await readdir(dir)).sort()
      for (const name of names) {
        const path = rel === "" ? name : `${rel}/${name}`
        if (extraNames.has(contextName(path))) continue
        const full = join(dir, name)
        const info = await lstat(full)
        const ignored = !spec.alwaysSend.has(path) && dockerignore.isIgnored(patterns, path)
        const header = { ...headerBase, name: contextName(path), mode: info.mode & 0o7777, mtime: info.mtime }
        if (info.isDirectory()) {
          if (!ignored) await add({ ...header, type: "directory" })
          if (!ignored || mayReinclude) await walk(full, path)
          continue
        }
        if (ignored) continue
        if (info.isSymbolicLink()) await add({ ...header, type: "symlink", linkname: await readlink(full) })
        else if (info.isFile()) await addFile({ ...header, type: "file", size: info.size }, full)
        // Nothing else can be here: the unpacker creates only files, folders and links.
      }
    }
    if (root !== undefined) await walk(root, "")
    pack.finalize()
  }

  produce().catch((e: unknown) => {
    failure = e instanceof Error ? e : new Error(String(e))
    pack.destroy(failure)
  })
  // tar-stream's packs are streamx streams; dockerode pipes Node streams.
  return { stream: Readable.from(pack), failure: () => failure }
}
