// The local builder: a commit becomes a directory on this machine plus the command that starts it,
// for the process runtime.
//
//   <root>/<project-id>/<build-id>   the app directory, the "image"; the runtime starts run.command in it
//   <root>/.npm-cache                npm's cache, shared by every build so that repeated installs are quick
//   <root>/.work/<build-id>          HOME and TMPDIR of one build, removed when it ends
//
// A failed or interrupted build leaves neither its directory nor any process behind.

import { lstat, mkdir, readdir, readFile, realpath, rm, rmdir, stat } from "node:fs/promises"
import { dirname, join, resolve, sep } from "node:path"
import type { BuildFailed } from "@paas/core/Errors"
import type { BuildRequest, BuiltImage } from "@paas/core/ImageBuilder"
import type { ProjectId } from "@paas/core/Project"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as DeploymentFile from "../DeploymentFile.js"
import type { LocalBuilder, LocalBuilderOptions } from "../LocalBuilder.js"
import { buildRecorder, describeBytes, describeOutcome, errorText } from "./buildLog.js"
import { type AppPlan, detect, staticFolder } from "./detect.js"
import { extract } from "./extract.js"
import { run } from "./process.js"
import { show } from "./words.js"

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const MAX_SMALL_FILE = 1024 * 1024
/** The variable that marks every process of a build (see process.ts). */
export const MARKER_VARIABLE = "PAAS_BUILD_ID"

/** The root directory could not be prepared (the public module turns this into LocalBuilderError). */
export class SetupFailed extends Data.TaggedError("SetupFailed")<{
  readonly message: string
  readonly cause: unknown
}> {}

const isDirectory = (path: string) =>
  stat(path).then(
    (s) => s.isDirectory(),
    () => false
  )

/** The PATH of build commands: the server's own node first, then the usual system directories. */
export const buildPath = (): string =>
  [...new Set([dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin"])].join(":")

/**
 * The environment of a build command, made from scratch: never the server's own variables. The
 * app's variables (paas.yaml `env`, then the project's) may change the defaults but not where
 * the build lives.
 */
export const buildEnv = (options: {
  readonly appEnv: Readonly<Record<string, string>>
  readonly projectEnv: Readonly<Record<string, string>>
  readonly home: string
  readonly tmp: string
  readonly npmCache: string
  readonly buildId: string
}): Record<string, string> => ({
  CI: "true",
  npm_config_update_notifier: "false",
  npm_config_fund: "false",
  npm_config_audit: "false",
  ...options.appEnv,
  ...options.projectEnv,
  PATH: buildPath(),
  HOME: options.home,
  TMPDIR: options.tmp,
  npm_config_cache: options.npmCache,
  [MARKER_VARIABLE]: options.buildId
})

/** Builds the local builder over `options.root`, created if missing. */
export const make = (
  options: LocalBuilderOptions,
  staticServer: string
): Effect.Effect<LocalBuilder["Type"], SetupFailed> =>
  Effect.gen(function* () {
    const root = resolve(options.root)
    const npmCache = join(root, ".npm-cache")
    const work = join(root, ".work")
    const limits = {
      maxBytes: options.maxSourceBytes ?? 2 * 1024 * 1024 * 1024,
      maxEntries: options.maxSourceEntries ?? 200_000
    }
    const graceMs = options.killGraceMs ?? 1_500
    yield* Effect.tryPromise({
      try: async () => {
        await mkdir(root, { recursive: true, mode: 0o700 })
        await mkdir(npmCache, { recursive: true })
        // What is left in .work belongs to builds a crash interrupted: nothing uses it any more.
        await rm(work, { recursive: true, force: true })
        await mkdir(work, { recursive: true })
      },
      catch: (cause) => new SetupFailed({ message: `cannot prepare the build directory ${root}`, cause })
    })

    // App directories being built: `prune` never removes them.
    const active = new Set<string>()

    const appDirectory = (project: string, build: string) => join(root, project, build)

    const build = (
      request: BuildRequest,
      log: (line: string) => Effect.Effect<void>
    ): Effect.Effect<BuiltImage, BuildFailed> => {
      const { say, failed, fail, io } = buildRecorder(log)

      if (!UUID.test(request.projectId) || !UUID.test(request.buildId))
        return fail("the project and build ids must be UUIDs")
      const appDir = appDirectory(request.projectId, request.buildId)
      const scratch = join(work, request.buildId)

      const readSmall = (name: string) =>
        io(`reading ${name}`, async () => {
          const path = join(appDir, name)
          const info = await stat(path)
          if (!info.isFile()) throw new Error("not a regular file")
          if (info.size > MAX_SMALL_FILE) throw new Error(`larger than ${MAX_SMALL_FILE} bytes`)
          return readFile(path, "utf8")
        })

      const steps = Effect.gen(function* () {
        yield* io("preparing the build directory", async () => {
          await rm(appDir, { recursive: true, force: true })
          await mkdir(appDir, { recursive: true })
          await mkdir(join(scratch, "home"), { recursive: true })
          await mkdir(join(scratch, "tmp"), { recursive: true })
        })

        const extracted = yield* extract(request.source, appDir, limits).pipe(
          Effect.catchTags({
            ExtractError: (e) => fail(e.message),
            RepositoryError: (e) => fail(`cannot read commit ${request.commit}: ${e.message}`)
          })
        )
        yield* say(`Unpacked ${extracted.files} files (${describeBytes(extracted.bytes)})`)

        const files = new Set(yield* io("listing the build directory", () => readdir(appDir)))

        let deployment: DeploymentFile.DeploymentFile | undefined
        if (files.has(DeploymentFile.filename)) {
          const text = yield* readSmall(DeploymentFile.filename)
          const parsed = yield* Effect.either(DeploymentFile.parse(text))
          if (Either.isLeft(parsed)) {
            for (const line of parsed.left.lines) yield* say(line)
            return yield* fail(parsed.left.message)
          }
          deployment = parsed.right
          yield* say(`Using ${DeploymentFile.filename}`)
        } else {
          for (const other of ["paas.yml", ".paas.yaml", ".paas.yml"])
            if (files.has(other))
              yield* say(`${other} is ignored: the deployment file is ${DeploymentFile.filename}`)
        }

        const method = deployment?.build?.method ?? "auto"
        if (method === "dockerfile" || method === "buildpacks")
          return yield* fail(
            `build.method ${method} needs the Docker runtime (PAAS_RUNTIME=docker); ` +
              "with the process runtime, use method auto, command or static"
          )

        let packageJson: unknown
        if (files.has("package.json")) {
          const text = yield* readSmall("package.json")
          packageJson = yield* Effect.try({
            try: () => JSON.parse(text) as unknown,
            catch: (e) => failed(`package.json is not valid JSON: ${errorText(e)}`)
          })
        }
        const procfile = files.has("Procfile") ? yield* readSmall("Procfile") : undefined

        const detected = detect({
          files,
          ...(packageJson !== undefined ? { packageJson } : {}),
          ...(procfile !== undefined ? { procfile } : {}),
          ...(deployment !== undefined ? { deployment } : {})
        })
        if (Either.isLeft(detected)) return yield* fail(detected.left)
        const plan: AppPlan = detected.right
        for (const note of plan.notes) yield* say(note)

        const env = buildEnv({
          appEnv: deployment?.env ?? {},
          projectEnv: request.env,
          home: join(scratch, "home"),
          tmp: join(scratch, "tmp"),
          npmCache,
          buildId: request.buildId
        })
        for (const argv of [plan.install, plan.build]) {
          if (argv === null) continue
          yield* say(`$ ${show(argv)}`)
          const outcome = yield* run(argv, {
            cwd: appDir,
            env,
            log: say,
            marker: `${MARKER_VARIABLE}=${request.buildId}`,
            graceMs
          })
          const failure = describeOutcome(argv, outcome)
          if (failure !== undefined) return yield* fail(failure)
        }

        let command: ReadonlyArray<string>
        if (plan.start === null) {
          const folder = staticFolder(plan, yield* Effect.promise(() => isDirectory(join(appDir, "dist"))))
          const served = yield* io(`finding the folder to serve (${folder})`, async () => {
            const real = await realpath(join(appDir, folder))
            const base = await realpath(appDir)
            if (real !== base && !real.startsWith(base + sep)) throw new Error("it is outside the app")
            if (!(await lstat(real)).isDirectory()) throw new Error("not a directory")
            return real
          })
          command = [process.execPath, staticServer, served]
          yield* say(`Serving ${folder === "." ? "the repository root" : folder} as a static site`)
        } else command = plan.start

        if (deployment?.run?.port !== undefined)
          yield* say(
            `run.port ${deployment.run.port}: every instance listens on this port, so a new release cannot start ` +
              "beside the old one on this machine; leave run.port out to let the platform choose"
          )
        yield* say(`Start command: ${show(command)}`)
        return { image: appDir, run: DeploymentFile.toRunSettings(deployment ?? {}, command) }
      })

      return Effect.acquireUseRelease(
        Effect.sync(() => active.add(appDir)),
        () => steps,
        (_, exit) =>
          Effect.promise(async () => {
            active.delete(appDir)
            await rm(scratch, { recursive: true, force: true }).catch(() => undefined)
            if (Exit.isFailure(exit)) {
              await rm(appDir, { recursive: true, force: true }).catch(() => undefined)
              await rmdir(dirname(appDir)).catch(() => undefined)
            }
          })
      )
    }

    const prune = (project: ProjectId, keep: ReadonlyArray<string>): Effect.Effect<void> =>
      Effect.gen(function* () {
        if (!UUID.test(project)) return
        const dir = join(root, project)
        const kept = new Set(keep.map((k) => resolve(k)))
        const entries = yield* Effect.promise(() => readdir(dir).catch(() => [] as Array<string>))
        for (const entry of entries) {
          const path = join(dir, entry)
          if (kept.has(path) || active.has(path)) continue
          yield* Effect.tryPromise(() => rm(path, { recursive: true, force: true })).pipe(
            Effect.catchAll((e) => Effect.logWarning(`could not remove ${path}`, e))
          )
        }
        // Only succeeds once the project has nothing left.
        yield* Effect.promise(() => rmdir(dir).catch(() => undefined))
      })

    return { root, appDirectory, build, prune }
  })
