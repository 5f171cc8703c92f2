// The Docker builder: a commit becomes an image in the local engine.
//
//   1. The commit's tree is unpacked into <workDir>/<build-id>-XXXX/source (extract.ts: safe paths,
//      limits), removed when the build ends whatever happens.
//   2. paas.yaml picks the method, the context folder and the Dockerfile.
//   3. The context is packed again (dockerContext.ts, `.dockerignore` applied) and sent to the
//      engine's classic builder with the tag, the labels, the build arguments the Dockerfile
//      declares and the resource limits; its progress stream is the build log.
//      Or `pack build` runs and a one-line Dockerfile adds the labels to its image.
//
// The engine keeps every step's layer as cache (no `nocache`), so the next build of the same
// project reuses whatever did not change; `prune` removes the images a project no longer needs.

import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises"
import { join, posix } from "node:path"
import type { BuildFailed } from "@paas/core/Errors"
import type { BuildRequest, BuiltImage } from "@paas/core/ImageBuilder"
import type { ProjectId } from "@paas/core/Project"
import type Docker from "dockerode"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as DeploymentFile from "../DeploymentFile.js"
import type { DockerBuilder, DockerBuilderSettings } from "../DockerBuilder.js"
import { buildRecorder, describeBytes, describeOutcome, errorText } from "./buildLog.js"
import { detect } from "./detect.js"
import {
  type ExtraFile,
  insidePath,
  kindOf,
  type PackedContext,
  packContext,
  readSmallFile,
  staysInside
} from "./dockerContext.js"
import * as Engine from "./dockerEngine.js"
import { APP_FOLDER, declaredArgs, generate, withLabels } from "./dockerfile.js"
import { extract } from "./extract.js"
import { locate, packArgv, packEnv, RESERVED } from "./pack.js"
import { run } from "./process.js"
import { show } from "./words.js"

/** What a build left that nothing names, by the build's tag (none for a failed build). */
interface Leftover {
  readonly tag: string | undefined
  readonly ids: ReadonlyArray<string>
}

const STEP = /^Step (\d+\/\d+) : (.*)$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
/**
 * The context name of the Dockerfile the builder sends beside the app's: the app's with the labels
 * appended, or the app's own when it lives outside the context folder (the CLI does the same).
 */
const SENT_DOCKERFILE = ".paas.Dockerfile"
const PACK_INSTALL_URL = "https://buildpacks.io/docs/for-platform-operators/how-to/integrate-ci/pack/"

/** The builder could not start (the public module turns this into DockerBuilderError). */
export class SetupFailed extends Data.TaggedError("SetupFailed")<{
  readonly message: string
  readonly cause?: unknown
}> {}

const repositoryOf = (tag: string) => {
  const colon = tag.lastIndexOf(":")
  return colon > tag.lastIndexOf("/") ? tag.slice(0, colon) : tag
}

const CFS_PERIOD = 100_000

/** The classic builder's resource options for `limits`: swap capped at the memory limit, CPU as a CFS quota. */
export const limitOptions = (limits: DockerBuilderSettings["limits"]): Docker.ImageBuildOptions => ({
  ...(limits.memoryBytes !== null ? { memory: limits.memoryBytes, memswap: limits.memoryBytes } : {}),
  ...(limits.cpus !== null
    ? { cpuperiod: CFS_PERIOD, cpuquota: Math.max(1_000, Math.round(limits.cpus * CFS_PERIOD)) }
    : {})
})

const describeLimits = (limits: DockerBuilderSettings["limits"]) =>
  `Build limits: ${limits.memoryBytes === null ? "no memory limit" : `${describeBytes(limits.memoryBytes)} of memory`}, ` +
  `${limits.cpus === null ? "no CPU limit" : `${limits.cpus} CPU${limits.cpus === 1 ? "" : "s"}`}`

const pick = (values: Readonly<Record<string, string>>, names: ReadonlySet<string>) =>
  Object.fromEntries(Object.entries(values).filter(([name]) => names.has(name)))

/** Builds the builder over `settings`: the work directory exists and the engine answers. */
export const make = (settings: DockerBuilderSettings): Effect.Effect<DockerBuilder["Type"], SetupFailed> =>
  Effect.gen(function* () {
    yield* Effect.tryPromise({
      try: () => mkdir(settings.workDir, { recursive: true, mode: 0o700 }),
      catch: (cause) =>
        new SetupFailed({ message: `cannot create the work directory ${settings.workDir}`, cause })
    })
    const engine = yield* Effect.mapError(
      Engine.connect(settings.socketPath),
      (e) => new SetupFailed({ message: e.message, cause: e.cause })
    )
    const keys = {
      project: `${settings.labelPrefix}.project`,
      commit: `${settings.labelPrefix}.commit`,
      build: `${settings.labelPrefix}.build`
    }
    const limitOpts = limitOptions(settings.limits)
    const repository = (project: string) => `${settings.imagePrefix}/${project}`
    const imageName = (project: string, build: string) => `${repository(project)}:${build}`
    /** pack builds into this tag, so that pack finds its previous image and cache volumes again. */
    const packTag = (project: string) => `${repository(project)}:buildpacks`

    // Tags being built: `prune` leaves them alone.
    const active = new Set<string>()
    // Images builds left that nothing names: the last layer of a failed build, the last layer of each
    // earlier stage of a multi-stage build. They are cache for the next build, so `prune` removes
    // them with the build that made them (or at once for a failed build), and never while a kept
    // build made them too.
    const leftovers = new Map<string, Array<Leftover>>()
    // One buildpacks build per project at a time: they share the project's pack tag.
    const packLocks = new Map<string, Effect.Semaphore>()
    const packLock = (project: string) => {
      const existing = packLocks.get(project)
      if (existing !== undefined) return existing
      const lock = Effect.unsafeMakeSemaphore(1)
      packLocks.set(project, lock)
      return lock
    }

    const build = (
      request: BuildRequest,
      log: (line: string) => Effect.Effect<void>
    ): Effect.Effect<BuiltImage, BuildFailed> => {
      const { say, failed, fail, io } = buildRecorder(log)

      if (!UUID.test(request.projectId) || !UUID.test(request.buildId))
        return fail("the project and build ids must be UUIDs")
      const project = request.projectId
      const tag = imageName(project, request.buildId)
      const labels = { [keys.project]: project, [keys.commit]: request.commit, [keys.build]: request.buildId }

      /** Sends a context to the engine and streams its output; what it leaves unnamed is remembered for `prune`. */
      const engineBuild = (
        context: PackedContext,
        dockerfile: string,
        buildargs: Readonly<Record<string, string>>,
        /** Whether the Dockerfile sets the labels itself (see `withLabels`); if not, the engine adds them. */
        labelled: boolean
      ) => {
        let lastImage: string | undefined
        let lastStep: string | undefined
        const stageEnds: Array<string> = []
        const observe = (line: string) => {
          const step = STEP.exec(line)
          if (step !== null) {
            lastStep = `step ${step[1]} (${step[2]!.length > 120 ? `${step[2]!.slice(0, 120)}…` : step[2]})`
            if (/^FROM\s/i.test(step[2]!) && lastImage !== undefined) stageEnds.push(lastImage)
          }
          return say(line)
        }
        return Engine.build(
          engine,
          context.stream,
          {
            t: tag,
            dockerfile,
            buildargs: { ...buildargs },
            ...(labelled ? {} : { labels }),
            rm: true,
            forcerm: true,
            version: "1",
            ...limitOpts,
            ...(settings.networkMode !== undefined ? { networkmode: settings.networkMode } : {})
          },
          {
            line: observe,
            image: (id) => {
              lastImage = id
            }
          }
        ).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              const success = Exit.isSuccess(exit)
              const ids = success || lastImage === undefined ? stageEnds : [...stageEnds, lastImage]
              if (ids.length === 0) return
              const list = leftovers.get(project) ?? []
              list.push({ tag: success ? tag : undefined, ids })
              leftovers.set(project, list)
            })
          ),
          Effect.catchTags({
            BuildStepFailed: (e) =>
              fail(`the image build failed${lastStep === undefined ? "" : ` at ${lastStep}`}: ${e.message}`),
            EngineError: (e) => {
              const packing = context.failure()
              return fail(
                packing !== undefined
                  ? `sending the build context failed: ${packing.message}`
                  : `the Docker engine failed: ${e.message}`
              )
            }
          })
        )
      }

      const finish = (imageId: string, run: BuiltImage["run"]) =>
        Effect.as(say(`Built ${tag} (${imageId.replace(/^sha256:/, "").slice(0, 12)})`), { image: tag, run })

      const dockerfileBuild = (
        source: string,
        contextDir: string,
        contextPath: string,
        dockerfilePath: string,
        deployment: DeploymentFile.DeploymentFile | undefined
      ) =>
        Effect.gen(function* () {
          const full = join(source, dockerfilePath)
          const text = yield* io(`reading ${dockerfilePath}`, () => readSmallFile(full))
          const inside = insidePath(contextDir, full)
          const declared = declaredArgs(text)
          const appArgs = pick({ ...deployment?.env, ...request.env }, declared)
          const buildargs = { ...settings.buildArgs, ...appArgs }
          yield* say(
            `Building ${dockerfilePath} with context ${contextPath === "." ? "the repository root" : contextPath}`
          )
          if (Object.keys(appArgs).length > 0)
            yield* say(`Build arguments from the app's env: ${Object.keys(appArgs).sort().join(", ")}`)
          yield* say(describeLimits(settings.limits))
          const amended = withLabels(text, labels)
          let extra: Array<ExtraFile>
          if (amended !== undefined) {
            // The engine reads the sent Dockerfile, then drops it from the context because
            // .dockerignore names it, so `COPY . .` never copies it (the docker CLI does the same).
            // A .dockerignore made only for this names itself too, so it goes as well.
            const ignore = yield* Effect.promise(() =>
              readSmallFile(join(contextDir, ".dockerignore")).then(
                (text) => `${text.trimEnd()}\n${SENT_DOCKERFILE}\n`,
                () => `${SENT_DOCKERFILE}\n.dockerignore\n`
              )
            )
            extra = [
              { name: SENT_DOCKERFILE, content: amended },
              { name: ".dockerignore", content: ignore }
            ]
          } else extra = inside === undefined ? [{ name: SENT_DOCKERFILE, content: text }] : []
          const sent = amended !== undefined || inside === undefined ? SENT_DOCKERFILE : inside
          const context = packContext({
            root: contextDir,
            extra,
            alwaysSend: new Set([...(inside !== undefined ? [inside] : []), ".dockerignore"])
          })
          const imageId = yield* engineBuild(context, sent, buildargs, amended !== undefined)
          // The image's CMD and EXPOSE rule unless paas.yaml says otherwise.
          return yield* finish(imageId, DeploymentFile.toRunSettings(deployment ?? {}))
        })

      const generatedBuild = (contextDir: string, deployment: DeploymentFile.DeploymentFile | undefined) =>
        Effect.gen(function* () {
          const files = new Set(yield* io("listing the app's files", () => readdir(contextDir)))
          let packageJson: unknown
          if (files.has("package.json")) {
            const text = yield* io("reading package.json", () =>
              readSmallFile(join(contextDir, "package.json"))
            )
            packageJson = yield* Effect.try({
              try: () => JSON.parse(text) as unknown,
              catch: (e) => failed(`package.json is not valid JSON: ${errorText(e)}`)
            })
          }
          const procfile = files.has("Procfile")
            ? yield* io("reading the Procfile", () => readSmallFile(join(contextDir, "Procfile")))
            : undefined
          const detected = detect({
            files,
            ...(packageJson !== undefined ? { packageJson } : {}),
            ...(procfile !== undefined ? { procfile } : {}),
            ...(deployment !== undefined ? { deployment } : {})
          })
          if (Either.isLeft(detected)) return yield* fail(detected.left)
          const plan = detected.right
          for (const note of plan.notes) yield* say(note)
          const appEnv = { ...deployment?.env, ...request.env }
          const generated = generate(plan, { bases: settings.baseImages, args: Object.keys(appEnv) })
          if (Either.isLeft(generated)) return yield* fail(generated.left)
          const text = withLabels(generated.right, labels) ?? generated.right
          yield* say("Generated Dockerfile:")
          for (const line of text.trimEnd().split("\n")) yield* say(`    ${line}`)
          yield* say(describeLimits(settings.limits))
          const buildargs = { ...settings.buildArgs, ...pick(appEnv, declaredArgs(text)) }
          const context = packContext({
            root: contextDir,
            prefix: APP_FOLDER,
            extra: [{ name: "Dockerfile", content: text }],
            alwaysSend: new Set()
          })
          const imageId = yield* engineBuild(context, "Dockerfile", buildargs, text !== generated.right)
          // The generated image carries its start command (CMD) and port (EXPOSE, PORT).
          return yield* finish(imageId, DeploymentFile.toRunSettings(deployment ?? {}, null))
        })

      const buildpacksBuild = (contextDir: string, deployment: DeploymentFile.DeploymentFile | undefined) =>
        Effect.gen(function* () {
          const command = settings.pack.command
          const location = yield* Effect.promise(() => locate(command, process.env.PATH))
          if (location === undefined)
            return yield* fail(
              `build.method buildpacks needs the pack CLI, and it is not installed on this server ` +
                `(no ${command.includes("/") ? command : `"${command}" on PATH`}). ` +
                `Install pack (${PACK_INSTALL_URL}), or build with a Dockerfile instead`
            )
          const options = deployment?.build?.buildpacks
          const values: Record<string, string> = {}
          for (const [name, value] of Object.entries({ ...options?.env, ...request.env })) {
            if (RESERVED.test(name)) yield* say(`${name} is not passed to the buildpacks: pack needs its own`)
            else values[name] = value
          }
          const stable = packTag(project)
          const argv = [
            location,
            ...packArgv(settings.pack, {
              image: stable,
              path: contextDir,
              builder: options?.builder ?? settings.pack.builder,
              buildpacks: options?.buildpack ?? [],
              envNames: Object.keys(values).sort()
            })
          ] as const
          yield* say(`$ ${show(argv)}`)
          const outcome = yield* run(argv, {
            cwd: contextDir,
            env: packEnv({ socketPath: settings.socketPath, values }),
            log: say,
            marker: `PAAS_BUILD_ID=${request.buildId}`,
            graceMs: settings.killGraceMs
          })
          const problem = describeOutcome(argv, outcome)
          if (problem !== undefined) return yield* fail(problem)
          // pack cannot label images; a build with nothing but FROM adds the labels and the build's tag.
          yield* say("Labelling the image")
          const relabel = withLabels(`FROM ${stable}\n`, labels)
          const context = packContext({
            root: undefined,
            extra: [{ name: "Dockerfile", content: relabel ?? `FROM ${stable}\n` }],
            alwaysSend: new Set()
          })
          const imageId = yield* engineBuild(context, "Dockerfile", {}, relabel !== undefined)
          return yield* finish(imageId, DeploymentFile.toRunSettings(deployment ?? {}))
        }).pipe(packLock(project).withPermits(1))

      const steps = Effect.gen(function* () {
        const scratch = yield* Effect.acquireRelease(
          io("preparing the build directory", () => mkdtemp(join(settings.workDir, `${request.buildId}-`))),
          (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }).catch(() => undefined))
        )
        const source = join(scratch, "source")
        yield* io("preparing the build directory", () => mkdir(source))
        const extracted = yield* extract(request.source, source, {
          maxBytes: settings.maxSourceBytes,
          maxEntries: settings.maxSourceEntries
        }).pipe(
          Effect.catchTags({
            ExtractError: (e) => fail(e.message),
            RepositoryError: (e) => fail(`cannot read commit ${request.commit}: ${e.message}`)
          })
        )
        yield* say(`Unpacked ${extracted.files} files (${describeBytes(extracted.bytes)})`)

        let deployment: DeploymentFile.DeploymentFile | undefined
        const deploymentPath = join(source, DeploymentFile.filename)
        if ((yield* Effect.promise(() => kindOf(deploymentPath))) !== "missing") {
          const text = yield* io(`reading ${DeploymentFile.filename}`, () => readSmallFile(deploymentPath))
          const parsed = yield* Effect.either(DeploymentFile.parse(text))
          if (Either.isLeft(parsed)) {
            for (const line of parsed.left.lines) yield* say(line)
            return yield* fail(parsed.left.message)
          }
          deployment = parsed.right
          yield* say(`Using ${DeploymentFile.filename}`)
        }

        const method = deployment?.build?.method ?? "auto"
        const contextPath = posix.normalize(deployment?.build?.context ?? ".")
        const contextDir = join(source, contextPath)
        const contextOk =
          (yield* Effect.promise(() => kindOf(contextDir))) === "directory" &&
          (yield* Effect.promise(() => staysInside(source, contextDir)))
        if (!contextOk) return yield* fail(`build.context ${contextPath}: no such folder in the repository`)

        if (method === "buildpacks") return yield* buildpacksBuild(contextDir, deployment)

        const dockerfilePath = deployment?.build?.dockerfile ?? posix.join(contextPath, "Dockerfile")
        const dockerfileFull = join(source, dockerfilePath)
        const hasDockerfile =
          (yield* Effect.promise(() => kindOf(dockerfileFull))) === "file" &&
          (yield* Effect.promise(() => staysInside(source, dockerfileFull)))
        const wantsDockerfile =
          method === "dockerfile" ||
          (method === "auto" && (hasDockerfile || deployment?.build?.dockerfile !== undefined))
        if (wantsDockerfile) {
          if (!hasDockerfile)
            return yield* fail(`${dockerfilePath}: no such file in the repository (build.method ${method})`)
          return yield* dockerfileBuild(source, contextDir, contextPath, dockerfilePath, deployment)
        }
        if (hasDockerfile) yield* say(`build.method ${method}: ${dockerfilePath} is not used`)
        return yield* generatedBuild(contextDir, deployment)
      })

      return Effect.acquireUseRelease(
        Effect.sync(() => active.add(tag)),
        () => Effect.scoped(steps),
        () => Effect.sync(() => active.delete(tag))
      )
    }

    const remove = (target: string) =>
      engine
        .call(`removing image ${target}`, (d) => d.getImage(target).remove())
        .pipe(
          Effect.as("removed" as const),
          Effect.catchIf(
            (e) => Engine.isStatus(e, 404),
            () => Effect.succeed("gone" as const)
          ),
          Effect.catchIf(
            (e) => Engine.isStatus(e, 409),
            (e) => Effect.as(Effect.logDebug(`prune: ${e.message}`), "in use" as const)
          )
        )

    const prune = (project: ProjectId, keep: ReadonlyArray<string>): Effect.Effect<void> =>
      Effect.gen(function* () {
        if (!UUID.test(project)) return
        const kept = new Set(keep)
        const repo = repository(project)
        const [labelled, named] = yield* Effect.all(
          [
            engine.call("listing the project's images", (d) =>
              d.listImages({ filters: { label: [`${keys.project}=${project}`] } })
            ),
            engine.call("listing the project's images", (d) =>
              d.listImages({ filters: { reference: [repo] } })
            )
          ],
          { concurrency: 2 }
        )
        const images = new Map<string, Docker.ImageInfo>()
        for (const image of [...labelled, ...named]) images.set(image.Id, image)
        const targets: Array<string> = []
        for (const image of images.values()) {
          if (kept.has(image.Id)) continue
          const tags = (image.RepoTags ?? []).filter((t) => t !== "<none>:<none>")
          // Only this project's own names go: a name given by someone else keeps the image.
          for (const t of tags)
            if (repositoryOf(t) === repo && !kept.has(t) && !active.has(t)) targets.push(t)
          if (tags.length === 0) targets.push(image.Id)
        }
        // Leftovers of the builds that go; only while nothing names them (a base image's id can be
        // among them) and no kept build left the same image.
        const stays = (image: Docker.ImageInfo | undefined) =>
          image !== undefined && (kept.has(image.Id) || (image.RepoTags ?? []).some((t) => kept.has(t)))
        const imageTagged = (tag: string) =>
          [...images.values()].find((i) => (i.RepoTags ?? []).includes(tag))
        const [keptRecords, goneRecords] = (leftovers.get(project) ?? []).reduce<
          [Array<Leftover>, Array<Leftover>]
        >(
          ([keep, go], record) =>
            record.tag !== undefined && (active.has(record.tag) || stays(imageTagged(record.tag)))
              ? [[...keep, record], go]
              : [keep, [...go, record]],
          [[], []]
        )
        leftovers.set(project, keptRecords)
        const stillUsed = new Set(keptRecords.flatMap((r) => r.ids))
        const left = new Set(goneRecords.flatMap((r) => r.ids).filter((id) => !stillUsed.has(id)))
        for (const id of left) {
          const info = yield* engine
            .call(`inspecting image ${id}`, (d) => d.getImage(id).inspect())
            .pipe(Effect.option)
          if (info._tag === "Some" && (info.value.RepoTags ?? []).length === 0 && !kept.has(info.value.Id))
            targets.push(info.value.Id)
        }
        // Removing a name only untags an image other names keep; its last name takes the image with it.
        for (const target of targets) yield* remove(target)
      }).pipe(
        Effect.catchAll((e) => Effect.logWarning(`pruning the images of project ${project}: ${e.message}`))
      )

    return { settings, imageName, build, prune }
  })
