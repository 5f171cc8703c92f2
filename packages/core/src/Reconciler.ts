/**
 * Reconciler: compares the desired state (deployments in Persistence) with the actual state (the
 * RuntimeDriver's instances and the Router's routes) and converges them. A pass that finds nothing
 * to do makes no calls that change anything, so running it often is cheap, and a crash at any step
 * is healed by the next pass. Events (a push, a deploy) only ask for a pass sooner.
 */
import { createHash } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { BuildId } from "./Build.js"
import type { AppStatus, Deployment } from "./Deployment.js"
import type { RouterError, RuntimeError } from "./Errors.js"
import { type DesiredApp, Persistence } from "./Persistence.js"
import { appHosts, PlatformConfig, type PlatformSettings } from "./PlatformConfig.js"
import type { ProjectId } from "./Project.js"
import type { Release } from "./Release.js"
import { type Route, Router } from "./Router.js"
import { type AppSpec, type Instance, RuntimeDriver } from "./RuntimeDriver.js"

/** What converging one app came to. */
export interface AppOutcome {
  readonly appId: ProjectId
  readonly status: AppStatus
  /** Why the app is not as desired, when it is not. */
  readonly message: string | null
  /** Whether anything was changed. */
  readonly changed: boolean
}

/** What a full pass did. */
export interface PassReport {
  readonly apps: number
  /** The apps that needed work, with their outcomes. */
  readonly converged: ReadonlyArray<AppOutcome>
  /** Builds found "running" with no process building them, now marked failed. */
  readonly abandonedBuilds: number
}

/** Runs reconcile passes. */
export class Reconciler extends Context.Tag("@paas/core/Reconciler")<
  Reconciler,
  {
    /** One full pass over every app. */
    readonly reconcileAll: Effect.Effect<PassReport, RuntimeError | RouterError>
    /** Converges one app now (waiting for its lock) and tells how it went. */
    readonly reconcileApp: (appId: ProjectId) => Effect.Effect<AppOutcome, RuntimeError | RouterError>
    /** Asks for a full pass soon; returns at once. */
    readonly trigger: Effect.Effect<void>
    /** Marks a build as in progress in this process for the life of the scope. */
    readonly trackBuild: (id: BuildId) => Effect.Effect<void, never, Scope.Scope>
    /** Runs passes forever: every interval, and soon after a trigger. */
    readonly run: Effect.Effect<never>
  }
>() {}

/** The spec an app's desired release runs with. */
export const specOf = (settings: PlatformSettings, appId: ProjectId, release: Release): AppSpec => {
  const hosts = appHosts(settings, appId, release.config.domains)
  const env = { ...release.run.env, ...release.config.env }
  const specHash = createHash("sha256")
    .update(JSON.stringify([release.image, env, release.run, hosts]))
    .digest("hex")
    .slice(0, 16)
  return {
    appId,
    releaseId: release.id,
    releaseNumber: release.number,
    image: release.image,
    env,
    run: release.run,
    hosts,
    specHash
  }
}

// What one app looks like against what it should be. Both the cheap scan of a full pass and the
// converging of one app read this, so they cannot disagree about what needs doing.
interface Assessment {
  readonly spec: AppSpec | null
  /** A healthy instance of the desired spec. */
  readonly target: Instance | undefined
  readonly routeOk: boolean
  /** Instances that should not exist once the target serves. */
  readonly extra: ReadonlyArray<Instance>
  readonly needsWork: boolean
}

const sameRoute = (route: Route | undefined, target: Instance, hosts: ReadonlyArray<string>) =>
  route !== undefined &&
  route.instanceId === target.id &&
  target.address !== null &&
  route.target.host === target.address.host &&
  route.target.port === target.address.port &&
  route.hosts.length === hosts.length &&
  route.hosts.every((h, i) => h === hosts[i])

const assess = (
  app: DesiredApp | undefined,
  spec: AppSpec | null,
  instances: ReadonlyArray<Instance>,
  route: Route | undefined
): Assessment => {
  const wantsRunning = app !== undefined && app.deployment.desired === "running" && spec !== null
  if (!wantsRunning) {
    const status: AppStatus =
      app === undefined ? "unknown" : app.release === null ? app.deployment.status : "stopped"
    const needsWork =
      instances.length > 0 ||
      route !== undefined ||
      (app !== undefined && app.release !== null && app.deployment.status !== status)
    return { spec: null, target: undefined, routeOk: route === undefined, extra: instances, needsWork }
  }
  const target = instances.find((i) => i.specHash === spec.specHash && i.status === "running")
  if (target === undefined) {
    // A spec that already failed is not retried on every pass; a new release or deploy clears it.
    const needsWork = app.deployment.failedSpec !== spec.specHash
    return { spec, target, routeOk: false, extra: [], needsWork }
  }
  const routeOk = sameRoute(route, target, spec.hosts)
  const extra = instances.filter((i) => i.id !== target.id)
  const needsWork =
    !routeOk || extra.length > 0 || app.deployment.status !== "running" || app.deployment.message !== null
  return { spec, target, routeOk, extra, needsWork }
}

/** Builds the reconciler; the pass loop is started separately by `layerLoop`. */
export const make = Effect.gen(function* () {
  const persistence = yield* Persistence
  const runtime = yield* RuntimeDriver
  const router = yield* Router
  const settings = yield* PlatformConfig
  const triggers = yield* Queue.sliding<void>(1)
  const activeBuilds = new Set<BuildId>()
  const locks = new Map<ProjectId, Effect.Semaphore>()
  // Specs are pure functions of an immutable release, so computing each once is enough.
  const specs = new Map<Release["id"], AppSpec>()

  const lockOf = (appId: ProjectId) => {
    let lock = locks.get(appId)
    if (lock === undefined) {
      lock = Effect.unsafeMakeSemaphore(1)
      locks.set(appId, lock)
    }
    return lock
  }

  const specFor = (app: DesiredApp | undefined): AppSpec | null => {
    if (app?.release == null) return null
    let spec = specs.get(app.release.id)
    if (spec === undefined) {
      spec = specOf(settings, app.deployment.projectId, app.release)
      specs.set(app.release.id, spec)
    }
    return spec
  }

  const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

  // Writes what was observed, skipping writes that would change nothing; `recorded` tracks what the
  // store holds as converging goes on, so "starting" followed by "running" writes both.
  const observer = (deployment: Deployment | undefined) => {
    let recorded = deployment && {
      status: deployment.status,
      message: deployment.message,
      failedSpec: deployment.failedSpec
    }
    return (status: AppStatus, message: string | null, failedSpec: string | null) =>
      Effect.suspend(() => {
        if (
          deployment === undefined ||
          (recorded?.status === status && recorded.message === message && recorded.failedSpec === failedSpec)
        )
          return Effect.void
        recorded = { status, message, failedSpec }
        return Effect.flatMap(now, (at) =>
          persistence.deployments.setObserved(deployment.projectId, { status, message, failedSpec }, at)
        )
      })
  }

  const removeAll = (instances: ReadonlyArray<Instance>) =>
    Effect.forEach(instances, (i) => runtime.remove(i.id), { discard: true, concurrency: "unbounded" })

  const converge = (appId: ProjectId): Effect.Effect<AppOutcome, RuntimeError | RouterError> =>
    Effect.gen(function* () {
      const [app, instances, routes] = yield* Effect.all(
        [
          Effect.map(persistence.deployments.findDesired(appId), Option.getOrUndefined),
          runtime.list(appId),
          router.list(appId)
        ],
        { concurrency: "unbounded" }
      )
      const route = routes.find((r) => r.appId === appId)
      const spec = specFor(app)
      const a = assess(app, spec, instances, route)
      const deployment = app?.deployment
      const observe = observer(deployment)
      const outcome = (status: AppStatus, message: string | null, changed: boolean): AppOutcome => ({
        appId,
        status,
        message,
        changed
      })
      if (!a.needsWork) return outcome(deployment?.status ?? "unknown", deployment?.message ?? null, false)

      if (a.spec === null) {
        // Stopped, never released, or deleted: nothing may run or be routed.
        const final: AppStatus =
          deployment === undefined ? "unknown" : app?.release === null ? deployment.status : "stopped"
        if (instances.length > 0) yield* observe("stopping", null, null)
        if (route !== undefined) yield* router.remove(appId)
        yield* removeAll(instances)
        if (deployment !== undefined && app?.release != null) yield* observe(final, null, null)
        return outcome(final, null, true)
      }

      let target = a.target
      if (target === undefined) {
        yield* observe("starting", null, null)
        const started = yield* Effect.either(runtime.start(a.spec))
        if (started._tag === "Left") {
          const serving = instances.some((i) => i.status === "running" && route?.instanceId === i.id)
          const status: AppStatus = serving ? "running" : "failed"
          yield* observe(status, started.left.message, a.spec.specHash)
          return outcome(status, started.left.message, true)
        }
        target = started.right
      }
      if (!a.routeOk && target.address !== null) {
        yield* router.set({ appId, hosts: a.spec.hosts, instanceId: target.id, target: target.address })
      }
      // Old instances go only once the new one is routed: that order is what keeps zero downtime.
      yield* removeAll(instances.filter((i) => i.id !== target.id))
      yield* observe("running", null, null)
      return outcome("running", null, true)
    }).pipe(
      Effect.catchAll((error) =>
        Effect.gen(function* () {
          const deployment = Option.getOrUndefined(yield* persistence.deployments.find(appId))
          if (deployment !== undefined)
            yield* observer(deployment)("failed", error.message, deployment.failedSpec)
          return yield* Effect.fail(error)
        })
      )
    )

  const reconcileApp = (appId: ProjectId) => lockOf(appId).withPermits(1)(converge(appId))

  const failAbandonedBuilds = Effect.gen(function* () {
    const inFlight = yield* persistence.builds.listByStatus(["queued", "running"])
    const abandoned = inFlight.filter((b) => !activeBuilds.has(b.id))
    const at = yield* now
    for (const build of abandoned) {
      yield* persistence.builds.appendLog(build.id, "The server stopped while this build ran.\n")
      yield* persistence.builds.update(build.id, {
        status: "failed",
        error: "the server stopped while this build ran",
        finishedAt: at
      })
    }
    return abandoned.length
  }).pipe(Effect.catchTag("NotFound", () => Effect.succeed(0)))

  const reconcileAll = Effect.gen(function* () {
    const [desired, instances, routes] = yield* Effect.all(
      [persistence.deployments.listDesired(), runtime.list(), router.list()],
      { concurrency: "unbounded" }
    )
    const byApp = new Map<ProjectId, Array<Instance>>()
    for (const i of instances) {
      const list = byApp.get(i.appId)
      if (list) list.push(i)
      else byApp.set(i.appId, [i])
    }
    const routeOf = new Map(routes.map((r) => [r.appId, r]))
    const todo: Array<ProjectId> = []
    const known = new Set<ProjectId>()
    const seenReleases = new Set<Release["id"]>()
    for (const app of desired) {
      const appId = app.deployment.projectId
      known.add(appId)
      if (app.release) seenReleases.add(app.release.id)
      if (assess(app, specFor(app), byApp.get(appId) ?? [], routeOf.get(appId)).needsWork) todo.push(appId)
    }
    // Orphans: instances and routes of apps nobody wants any more.
    for (const appId of new Set([...byApp.keys(), ...routeOf.keys()])) if (!known.has(appId)) todo.push(appId)
    for (const id of specs.keys()) if (!seenReleases.has(id)) specs.delete(id)
    for (const appId of locks.keys()) if (!known.has(appId)) locks.delete(appId)

    const converged = yield* Effect.forEach(
      todo,
      (appId) =>
        reconcileApp(appId).pipe(
          Effect.catchAll((e) =>
            Effect.succeed<AppOutcome>({ appId, status: "failed", message: e.message, changed: false })
          )
        ),
      { concurrency: settings.reconcileConcurrency }
    )
    const abandonedBuilds = yield* failAbandonedBuilds
    return { apps: desired.length, converged, abandonedBuilds }
  })

  // Waits for the interval or a trigger, whichever comes first; a burst of triggers is one pass.
  const run = Effect.forever(
    Effect.gen(function* () {
      const report = yield* Effect.either(reconcileAll)
      if (report._tag === "Left") yield* Effect.logWarning("reconcile pass failed", report.left)
      else if (report.right.converged.length > 0 || report.right.abandonedBuilds > 0)
        yield* Effect.logDebug("reconcile pass", report.right)
      yield* Effect.raceFirst(Queue.take(triggers), Effect.sleep(settings.reconcileInterval))
    })
  )

  return Reconciler.of({
    reconcileAll,
    reconcileApp,
    trigger: Effect.asVoid(Queue.offer(triggers, undefined)),
    trackBuild: (id) =>
      Effect.acquireRelease(
        Effect.sync(() => activeBuilds.add(id)),
        () => Effect.sync(() => activeBuilds.delete(id))
      ).pipe(Effect.asVoid),
    run
  })
})

/** The reconciler, without its loop (tests drive passes themselves). */
export const layer: Layer.Layer<Reconciler, never, Persistence | RuntimeDriver | Router | PlatformConfig> =
  Layer.effect(Reconciler, make)

/** Runs passes in the background for the life of the layer: on the interval and on triggers. */
export const layerLoop: Layer.Layer<never, never, Reconciler> = Layer.scopedDiscard(
  Effect.flatMap(Reconciler, (r) => Effect.forkScoped(r.run))
)
