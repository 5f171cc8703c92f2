// Shared steps for the runtime-process tests: scratch directories, app fixtures, specs, HTTP
// requests over 127.0.0.1, and process checks through /proc.
import { randomUUID } from "node:crypto"
import { copyFile, mkdtemp, rm } from "node:fs/promises"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { ProjectId } from "@paas/core/Project"
import { type ReleaseId, RunSettings } from "@paas/core/Release"
import type { AppSpec } from "@paas/core/RuntimeDriver"
import * as Effect from "effect/Effect"
import { readStat } from "../src/internal/procfs.js"

/** A temporary directory removed when the scope closes. */
export const scratch = (prefix = "paas-rp-") =>
  Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), prefix))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )

/** A built app directory holding the fixture server as `server.mjs`. */
export const appDir = Effect.gen(function* () {
  const dir = yield* scratch("paas-app-")
  yield* Effect.promise(() =>
    copyFile(join(import.meta.dirname, "fixtures", "server.mjs"), join(dir, "server.mjs"))
  )
  return dir
})

/** A new app id. */
export const newAppId = () => randomUUID() as ProjectId

/** A spec running the fixture in `dir`; `run` and the rest override the defaults. */
export const specOf = (
  dir: string,
  options: {
    readonly appId?: ProjectId
    readonly env?: Record<string, string>
    readonly run?: Partial<ConstructorParameters<typeof RunSettings>[0]>
    readonly releaseNumber?: number
    readonly hosts?: ReadonlyArray<string>
  } = {}
): AppSpec => {
  const run = new RunSettings({
    ...RunSettings.defaults,
    command: [process.execPath, "server.mjs"],
    healthcheckPath: "/health",
    healthcheckTimeoutMs: 15_000,
    ...options.run
  })
  const env = options.env ?? {}
  return {
    appId: options.appId ?? newAppId(),
    releaseId: randomUUID() as ReleaseId,
    releaseNumber: options.releaseNumber ?? 1,
    image: dir,
    env,
    run,
    hosts: options.hosts ?? [],
    specHash: randomUUID().slice(0, 16)
  }
}

/** A response, read whole. */
export interface Response {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly body: string
}

/** One HTTP request over 127.0.0.1 on a fresh connection; fails on a network error. */
export const get = (
  port: number,
  path = "/",
  options: {
    readonly host?: string
    readonly headers?: Record<string, string>
    readonly method?: string
  } = {}
) =>
  Effect.async<Response, Error>((resume) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: options.method ?? "GET",
        agent: false,
        timeout: 20_000,
        headers: { ...(options.host === undefined ? {} : { host: options.host }), ...options.headers }
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () =>
          resume(
            Effect.succeed({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString("utf8")
            })
          )
        )
        res.on("error", (e) => resume(Effect.fail(e)))
      }
    )
    req.on("timeout", () => req.destroy(new Error("request timed out")))
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end()
    return Effect.sync(() => req.destroy())
  })

/** Whether a process exists and is not a zombie. */
export const alive = (pid: number) => {
  const stat = readStat(pid)
  return stat !== undefined && stat.state !== "Z"
}

/** Polls `check` every 50 ms until it holds; dies after `timeoutMs`. */
export const eventually = <E, R>(
  check: Effect.Effect<boolean, E, R>,
  what: string,
  timeoutMs = 15_000
): Effect.Effect<void, E, R> =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("50 millis")
    }
  })
