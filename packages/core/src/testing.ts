/** @paas/core/testing: in-memory implementations of every contract, for users' tests. */
export * as InMemoryAuth from "./testing/InMemoryAuth.js"
export * as InMemoryImageBuilder from "./testing/InMemoryImageBuilder.js"
export * as InMemoryMailer from "./testing/InMemoryMailer.js"
export * as InMemoryPersistence from "./testing/InMemoryPersistence.js"
export * as InMemoryRepoStore from "./testing/InMemoryRepoStore.js"
export * as InMemoryRouter from "./testing/InMemoryRouter.js"
export * as InMemoryRuntime from "./testing/InMemoryRuntime.js"
export * as TestPlatform from "./testing/TestPlatform.js"
