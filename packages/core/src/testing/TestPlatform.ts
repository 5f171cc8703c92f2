/**
 * The whole platform on in-memory drivers, for tests: one layer gives the Platform, the
 * Reconciler, every contract and every test control. Swap any driver for a real one.
 */
import * as Layer from "effect/Layer"
import type { AuthProvider } from "../AuthProvider.js"
import type { ImageBuilder } from "../ImageBuilder.js"
import type { Mailer } from "../Mailer.js"
import type { Persistence } from "../Persistence.js"
import * as Platform from "../Platform.js"
import * as PlatformConfig from "../PlatformConfig.js"
import * as RateLimiter from "../RateLimiter.js"
import * as Reconciler from "../Reconciler.js"
import type { RepoStore } from "../RepoStore.js"
import type { Router } from "../Router.js"
import type { RuntimeDriver } from "../RuntimeDriver.js"
import * as InMemoryAuth from "./InMemoryAuth.js"
import * as InMemoryImageBuilder from "./InMemoryImageBuilder.js"
import * as InMemoryMailer from "./InMemoryMailer.js"
import * as InMemoryPersistence from "./InMemoryPersistence.js"
import * as InMemoryRepoStore from "./InMemoryRepoStore.js"
import * as InMemoryRouter from "./InMemoryRouter.js"
import * as InMemoryRuntime from "./InMemoryRuntime.js"

/** Drivers to use instead of the in-memory ones, and settings over the defaults. */
export interface Options<R = never> {
  readonly config?: Partial<PlatformConfig.PlatformSettings>
  readonly persistence?: Layer.Layer<Persistence, never, R>
  readonly auth?: Layer.Layer<AuthProvider, never, R>
  readonly repoStore?: Layer.Layer<RepoStore, never, R>
  readonly builder?: Layer.Layer<ImageBuilder, never, R>
  readonly runtime?: Layer.Layer<RuntimeDriver, never, R>
  readonly router?: Layer.Layer<Router, never, R>
  readonly mailer?: Layer.Layer<Mailer, never, R>
}

/** Everything the test layer provides. */
export type Services =
  | Platform.Platform
  | Reconciler.Reconciler
  | PlatformConfig.PlatformConfig
  | RateLimiter.RateLimiter
  | Persistence
  | AuthProvider
  | Mailer
  | InMemoryMailer.Outbox
  | RepoStore
  | InMemoryRepoStore.Repos
  | ImageBuilder
  | InMemoryImageBuilder.Builds
  | RuntimeDriver
  | InMemoryRuntime.RuntimeControls
  | Router
  | InMemoryRouter.Routes

/**
 * The platform on in-memory drivers. Drivers given in `options` replace the in-memory ones; the
 * in-memory test controls stay available (and simply see nothing of a replaced driver).
 */
export const layer = <R = never>(options: Options<R> = {}): Layer.Layer<Services, never, R> => {
  const drivers = Layer.mergeAll(
    PlatformConfig.layer(options.config),
    RateLimiter.layer,
    options.persistence ?? InMemoryPersistence.layer,
    options.auth ?? InMemoryAuth.layer(),
    Layer.merge(InMemoryMailer.layer, options.mailer ?? Layer.empty),
    Layer.merge(InMemoryRepoStore.layer, options.repoStore ?? Layer.empty),
    Layer.merge(InMemoryImageBuilder.layer, options.builder ?? Layer.empty),
    Layer.merge(InMemoryRuntime.layer, options.runtime ?? Layer.empty),
    Layer.merge(InMemoryRouter.layer, options.router ?? Layer.empty)
  )
  const reconciler = Layer.provideMerge(Reconciler.layer, drivers)
  return Layer.provideMerge(Platform.layer, reconciler)
}
