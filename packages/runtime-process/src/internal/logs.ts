// One log per app, shared by all its instances so that it survives redeploys: the last lines in
// memory (for `tail`), a feed for followers, and an append-only file that rotates at a size limit.
import {
  closeSync,
  createWriteStream,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  type WriteStream
} from "node:fs"
import type { LogLine } from "@paas/core/RuntimeDriver"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"

/** A line with its position in the app's log, so a follower can skip what it already read. */
interface Entry {
  readonly seq: number
  readonly line: LogLine
}

// How much of an existing file is read back at start, to give `tail` something after a restart.
const RELOAD_BYTES = 256 * 1024
// A slow follower loses the oldest lines rather than growing memory without bound.
const FOLLOW_BUFFER = 4_096
const FILE_LINE = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (stdout|stderr) (.*)$/

/** Where an app's log file is, and how much of it is kept. */
export interface AppLogOptions {
  readonly path: string
  readonly maxLines: number
  readonly maxFileBytes: number
}

/** The log of one app. */
export class AppLog {
  private readonly buffer: Array<Entry> = []
  private seq = 0
  private file: WriteStream | undefined
  private fileBytes = 0
  private closed = false

  private constructor(
    private readonly options: AppLogOptions,
    private readonly feed: PubSub.PubSub<Entry>
  ) {}

  /** Opens an app's log, reading back the end of its file from an earlier run. */
  static readonly make = (options: AppLogOptions): Effect.Effect<AppLog> =>
    Effect.map(PubSub.sliding<Entry>(FOLLOW_BUFFER), (feed) => {
      const log = new AppLog(options, feed)
      log.reload()
      return log
    })

  /** Appends a line: to memory, to the followers and to the file. Never fails. */
  write(stream: LogLine["stream"], line: string, at = new Date()): void {
    if (this.closed) return
    const entry: Entry = { seq: ++this.seq, line: { at, stream, line } }
    this.buffer.push(entry)
    // Trim in batches: a splice per line would make each write O(maxLines).
    if (this.buffer.length > this.options.maxLines * 1.25)
      this.buffer.splice(0, this.buffer.length - this.options.maxLines)
    this.feed.unsafeOffer(entry)
    this.append(`${at.toISOString()} ${stream} ${line}\n`)
  }

  /** The last `tail` lines (all kept lines when undefined). */
  lines(tail?: number): Array<LogLine> {
    return this.entries(tail).map((e) => e.line)
  }

  /** The past lines, then (with `follow`) new ones as they come, each exactly once. */
  stream(tail: number | undefined, follow: boolean): Stream.Stream<LogLine> {
    if (!follow) return Stream.suspend(() => Stream.fromIterable(this.lines(tail)))
    return Stream.unwrapScoped(
      Effect.map(PubSub.subscribe(this.feed), (subscription) => {
        // Subscribed first, then the snapshot: a line written in between shows up in both, and the
        // sequence number drops the second copy, so nothing is lost and nothing is repeated.
        const past = this.entries(tail)
        const last = past.length > 0 ? past[past.length - 1]!.seq : this.seq
        return Stream.concat(
          Stream.fromIterable(past.map((e) => e.line)),
          Stream.fromQueue(subscription).pipe(
            Stream.filter((e) => e.seq > last),
            Stream.map((e) => e.line)
          )
        )
      })
    )
  }

  /** Ends the followers' streams and closes the file. */
  close(): Effect.Effect<void> {
    this.closed = true
    const file = this.file
    this.file = undefined
    return Effect.zipRight(
      PubSub.shutdown(this.feed),
      file === undefined
        ? Effect.void
        : Effect.async<void>((resume) => {
            file.end(() => resume(Effect.void))
          }).pipe(Effect.timeoutOption("2 seconds"), Effect.asVoid)
    )
  }

  private entries(tail?: number): Array<Entry> {
    const keep = Math.min(tail ?? this.options.maxLines, this.options.maxLines)
    return keep <= 0 ? [] : this.buffer.slice(-keep)
  }

  private append(text: string) {
    try {
      if (this.file === undefined) this.open()
      this.file!.write(text)
      this.fileBytes += Buffer.byteLength(text)
      if (this.fileBytes >= this.options.maxFileBytes) this.rotate()
    } catch {
      // The disk is full or the directory went away: the in-memory log still works, and the next
      // line tries to open the file again.
      this.file = undefined
    }
  }

  // The stream writes through a descriptor opened here, synchronously, so a rename never races
  // with an open still in flight: buffered data lands in the renamed file, as it should.
  private open() {
    const fd = openSync(this.options.path, "a", 0o600)
    this.fileBytes = fstatSync(fd).size
    const file = createWriteStream("", { fd })
    // A write error must not crash the server; the next rotation or restart opens a new file.
    file.on("error", () => {
      if (this.file === file) this.file = undefined
    })
    this.file = file
  }

  private rotate() {
    const file = this.file
    this.file = undefined
    file?.end()
    renameSync(this.options.path, `${this.options.path}.1`)
  }

  private reload() {
    let fd: number | undefined
    try {
      const size = statSync(this.options.path).size
      const start = Math.max(0, size - RELOAD_BYTES)
      const bytes = Buffer.alloc(size - start)
      fd = openSync(this.options.path, "r")
      readSync(fd, bytes, 0, bytes.length, start)
      const lines = bytes.toString("utf8").split("\n")
      // The first line may be cut in the middle when reading from an offset.
      if (start > 0) lines.shift()
      for (const text of lines.slice(-this.options.maxLines)) {
        const match = FILE_LINE.exec(text)
        if (match === null) continue
        this.buffer.push({
          seq: ++this.seq,
          line: { at: new Date(match[1]!), stream: match[2] as LogLine["stream"], line: match[3]! }
        })
      }
    } catch {
      // No earlier log: nothing to read back.
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
  }
}

/** Splits a byte stream into lines; overlong lines are cut so one line cannot hold unbounded memory. */
export class LineSplitter {
  private partial = ""
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLength = 16 * 1024
  ) {}

  push(chunk: string) {
    const all = this.partial + chunk
    let start = 0
    let nl = all.indexOf("\n")
    while (nl >= 0) {
      this.emit(all.slice(start, nl))
      start = nl + 1
      nl = all.indexOf("\n", start)
    }
    let text = all.slice(start)
    while (text.length > this.maxLength) {
      this.emit(text.slice(0, this.maxLength))
      text = text.slice(this.maxLength)
    }
    this.partial = text
  }

  end() {
    if (this.partial !== "") this.emit(this.partial)
    this.partial = ""
  }

  private emit(line: string) {
    const text = line.endsWith("\r") ? line.slice(0, -1) : line
    for (let i = 0; i < text.length; i += this.maxLength) this.onLine(text.slice(i, i + this.maxLength))
    if (text.length === 0) this.onLine("")
  }
}
