// Shared test helpers: scratch directories, child processes, captured logs, and just enough MIME
// decoding to read what nodemailer put on the wire.
import { execFile } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"

/** A fresh directory, removed with everything in it when the scope closes. */
export const scratchDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "paas-auth-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

/** Runs a program to completion; dies (the test fails) if it exits non-zero. */
export const run = (file: string, args: ReadonlyArray<string>) =>
  Effect.async<string>((resume) => {
    const child = execFile(file, args, { encoding: "utf8" }, (error, stdout, stderr) =>
      resume(
        error
          ? Effect.dieMessage(`${file} ${args.join(" ")}: ${error.message}\n${stderr}`)
          : Effect.succeed(stdout)
      )
    )
    return Effect.sync(() => child.kill())
  })

/** Runs `effect` with a logger that records every message, and returns them with its result. */
export const captureLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const lines: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      const parts = Array.isArray(message) ? message : [message]
      lines.push(`${logLevel.label} ${parts.map(String).join(" ")}`)
    })
    return Effect.map(Effect.provide(effect, Logger.add(logger)), (result) => ({ result, lines }))
  })

/** The first UUID in a text. */
export const uuidIn = (text: string): string | undefined =>
  /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.exec(text)?.[0]

/** A MIME entity: lower-cased header names, and its decoded body. */
export interface Part {
  readonly headers: Record<string, string>
  readonly body: string
  readonly parts: ReadonlyArray<Part>
}

const decodeBody = (encoding: string | undefined, body: string): string => {
  switch (encoding?.toLowerCase()) {
    case "base64":
      return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8")
    case "quoted-printable":
      return Buffer.from(
        body
          .replace(/=\r?\n/g, "")
          .replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
        "latin1"
      ).toString("utf8")
    default:
      return body
  }
}

/** Parses a raw message (headers, body, nested multipart parts) as sent over SMTP. */
export const parseMime = (raw: string): Part => {
  const text = raw.replace(/\r\n/g, "\n")
  const split = text.indexOf("\n\n")
  const head = split === -1 ? text : text.slice(0, split)
  const rawBody = split === -1 ? "" : text.slice(split + 2)
  const headers: Record<string, string> = {}
  for (const line of head.replace(/\n[ \t]+/g, " ").split("\n")) {
    const colon = line.indexOf(":")
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const boundary = /boundary="?([^";]+)"?/i.exec(headers["content-type"] ?? "")?.[1]
  if (boundary === undefined)
    return { headers, body: decodeBody(headers["content-transfer-encoding"], rawBody), parts: [] }
  const parts = rawBody
    .split(`--${boundary}`)
    .slice(1)
    .filter((chunk) => !chunk.startsWith("--"))
    .map((chunk) => parseMime(chunk.replace(/^\n/, "").replace(/\n$/, "")))
  return { headers, body: "", parts }
}
