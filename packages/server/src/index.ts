/** @paas/server: the reference server's database, SQL persistence and (soon) its HTTP API. */
export * as Database from "./Database.js"
export * as SqlPersistence from "./SqlPersistence.js"
