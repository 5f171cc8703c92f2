// Where the server's time goes on `GET /projects/my`: each step the route takes, timed on its own,
// in this process, one call after another (no concurrency), on a throwaway PostgreSQL with the
// server's own code (SqlPersistence, PasswordAuth, the Platform, the HttpApi handlers) and the
// bare handler's calls beside them. Prints wall time and CPU time (the whole process, GC threads
// included) per call.
// Run: node --conditions=source --import tsx bench/api/steps.ts [--iterations=400] [--projects=20]
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServer from "@effect/platform/HttpServer"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PasswordAuth from "@paas/auth/PasswordAuth"
import { AuthProvider } from "@paas/core/AuthProvider"
import { Persistence } from "@paas/core/Persistence"
import { Platform } from "@paas/core/Platform"
import { Project, ProjectConfig, ProjectId } from "@paas/core/Project"
import { InMemoryMailer, TestPlatform } from "@paas/core/testing"
import { Principal, User, UserId } from "@paas/core/User"
import * as Api from "@paas/server/Api"
import * as Database from "@paas/server/Database"
import * as Http from "@paas/server/Http"
import * as SqlPersistence from "@paas/server/SqlPersistence"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { jwtVerify } from "jose"
import pg from "pg"
import { arg, BenchError, createDatabase, fail, log, postgres, runMain } from "./support.js"

const ITERATIONS = Number(arg("iterations", "400"))
const WARMUP = Math.max(50, Math.floor(ITERATIONS / 4))
const PROJECTS = Number(arg("projects", "20"))
const SECRET = "bench-secret-bench-secret-bench-secret-0123456789"

// The SQL of SqlPersistence's `projects.listByOwner`, as bare.ts sends it.
const listByOwner =
  "SELECT id, owner_id, name, config, created_at, updated_at FROM projects WHERE owner_id = $1 ORDER BY created_at, id"

// A copy of SqlPersistence's (internal) ProjectRow, to time the row decoding on its own.
const ProjectRow = Schema.Struct({
  id: ProjectId,
  owner_id: UserId,
  name: Schema.String,
  config: ProjectConfig,
  created_at: Schema.DateFromSelf,
  updated_at: Schema.DateFromSelf
})
const decodeRows = Schema.decodeUnknown(Schema.Array(ProjectRow))

interface Timing {
  readonly wallUs: number
  readonly cpuUs: number
}

// Times `op` run `ITERATIONS` times one after another, after a warm-up.
const time = async (op: () => Promise<unknown>): Promise<Timing> => {
  for (let i = 0; i < WARMUP; i++) await op()
  const cpu = process.cpuUsage()
  const start = process.hrtime.bigint()
  for (let i = 0; i < ITERATIONS; i++) await op()
  const wallUs = Number(process.hrtime.bigint() - start) / 1000 / ITERATIONS
  const used = process.cpuUsage(cpu)
  return { wallUs, cpuUs: (used.user + used.system) / ITERATIONS }
}

const main = Effect.gen(function* () {
  const cluster = yield* postgres
  const url = yield* createDatabase(cluster.url, "paas_steps")

  // The server's persistence and sessions on PostgreSQL; everything else in memory (not on this route).
  const database = Layer.orDie(Database.layerPostgres(Redacted.make(url)))
  const auth = Layer.orDie(PasswordAuth.layer({ secret: Redacted.make(SECRET) }))
  const platform = TestPlatform.layer({ persistence: SqlPersistence.layer, auth }).pipe(
    Layer.provideMerge(database)
  )
  const runtime = yield* Effect.acquireRelease(
    Effect.sync(() => ManagedRuntime.make(Layer.provide(platform, Logger.minimumLogLevel(LogLevel.Warning)))),
    (runtime) => Effect.promise(() => runtime.dispose())
  )
  const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<typeof platform>>) =>
    runtime.runPromise(effect)

  // An account with its projects, through the Platform as the API would.
  const fixture = yield* Effect.tryPromise({
    try: () =>
      run(
        Effect.gen(function* () {
          const platform = yield* Platform
          const outbox = yield* InMemoryMailer.Outbox
          const password = Redacted.make("Bench-passw0rd!")
          yield* platform.register({ username: "bench", email: "bench@example.com", password })
          const mail = yield* outbox.latestTo("bench@example.com")
          yield* platform.confirmEmail(InMemoryMailer.tokenIn(mail?.text ?? "") ?? "")
          const { token } = yield* platform.login({
            email: "bench@example.com",
            password,
            client: "127.0.0.1"
          })
          const principal = yield* platform.authenticate(token)
          for (let i = 1; i <= PROJECTS; i++) {
            const project = yield* platform.createProject(principal, { name: `bench-${i}` })
            yield* platform.deploy(principal, project.id, {
              PORT: "8080",
              NODE_ENV: "production",
              RELEASE: `r${i}`
            })
          }
          return { token, principal }
        }).pipe(Effect.orDie)
      ),
    catch: (cause) => new BenchError(`cannot set up the account: ${String(cause)}`)
  })
  const { token, principal } = fixture
  const owner = principal.userId

  const {
    platform: p,
    store,
    sessions,
    sql
  } = yield* Effect.promise(() =>
    run(
      Effect.all({
        platform: Platform,
        store: Persistence,
        sessions: AuthProvider,
        sql: SqlClient.SqlClient
      })
    )
  )
  const projects = yield* Effect.promise(() => run(store.projects.listByOwner(owner)))
  const user = yield* Effect.promise(() => run(store.users.findById(owner)))
  if (projects.length !== PROJECTS || user._tag === "None") return yield* fail("the fixture is wrong")

  // The bare handler's calls.
  const pool = yield* Effect.acquireRelease(
    Effect.sync(() => new pg.Pool({ connectionString: url })),
    (pool) => Effect.promise(() => pool.end())
  )
  const key = new TextEncoder().encode(SECRET)

  // The response as the handler builds it (Views.project), and the schema HttpApi encodes it with.
  const views = projects.map((project) => ({
    id: project.id,
    name: project.name,
    config: { env: { ...project.config.env }, domains: project.config.domains },
    createdAt: project.createdAt,
    updatedAt: project.updatedAt
  }))
  const encodeResponse = Schema.encode(Api.ok(Schema.Array(Api.ProjectView)))
  const encoded = yield* Effect.promise(() => run(encodeResponse({ status: "OK", content: views })))

  // The whole route through HttpApi as a web handler (router, security middleware, handler,
  // encoding; no socket and without the server's envelope middleware, which is internal).
  // `tracing: false` turns Effect's tracer off (no spans for the request or the queries).
  const webHandler = (tracing: boolean) =>
    Effect.acquireRelease(
      Effect.sync(() =>
        HttpApiBuilder.toWebHandler(
          Layer.mergeAll(
            Http.layerApi.pipe(
              Layer.provide(Layer.succeed(Http.HttpSettings, Http.defaults)),
              Layer.provide(Layer.provide(platform, Logger.minimumLogLevel(LogLevel.Warning)))
            ),
            HttpServer.layerContext,
            tracing ? Layer.empty : Layer.setTracerEnabled(false)
          )
        )
      ),
      (web) => Effect.promise(() => web.dispose())
    )
  const web = yield* webHandler(true)
  const untraced = yield* webHandler(false)
  const get =
    (path: string, handler = web.handler) =>
    async () => {
      const response = await handler(
        new Request(`http://127.0.0.1${path}`, { headers: { authorization: `Bearer ${token}` } })
      )
      if (response.status !== 200) throw new Error(`${path}: HTTP ${response.status}`)
      return response.text()
    }

  const rows = yield* Effect.promise(() => pool.query(listByOwner, [owner]).then((r) => r.rows))

  const steps: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
    [
      "bare: jose jwtVerify",
      () => jwtVerify(token, key, { algorithms: ["HS256"], requiredClaims: ["sub", "exp"] })
    ],
    ["bare: pg pool.query(listByOwner)", () => pool.query(listByOwner, [owner])],
    [
      "bare: rows → JSON text",
      async () =>
        JSON.stringify({
          status: "OK",
          content: projects.map((row) => ({
            id: row.id,
            name: row.name,
            config: { env: { ...row.config.env }, domains: row.config.domains },
            createdAt: row.createdAt.toISOString(),
            updatedAt: row.updatedAt.toISOString()
          }))
        })
    ],
    ["server: AuthProvider.verifySession (jose + claims)", () => run(sessions.verifySession(token))],
    ["server: users.findById (SQL + decode + User)", () => run(store.users.findById(owner))],
    ["server: Platform.authenticate (both)", () => run(p.authenticate(token))],
    ["server: SqlClient, listByOwner rows only", () => run(sql.unsafe(listByOwner, [owner]))],
    ["server: projects.listByOwner (+ decode + Project)", () => run(store.projects.listByOwner(owner))],
    [
      "server: projects.listByOwner, tracer off",
      () => run(Effect.withTracerEnabled(store.projects.listByOwner(owner), false))
    ],
    [`server: decode ${PROJECTS} rows with ProjectRow`, () => run(decodeRows(rows))],
    [
      `server: same, Schema.Array(ProjectRow) made per call`,
      () => run(Schema.decodeUnknown(Schema.Array(ProjectRow))(rows))
    ],
    [
      `server: new Project ×${PROJECTS} (validates)`,
      async () => projects.map((project) => new Project({ ...project }))
    ],
    [
      `server: new Project ×${PROJECTS}, validation off`,
      async () => projects.map((project) => new Project({ ...project }, true))
    ],
    [
      "server: new User + new Principal",
      async () => new Principal({ userId: new User({ ...user.value }).id, isAdmin: false })
    ],
    ["server: Schema.encode(response)", () => run(encodeResponse({ status: "OK", content: views }))],
    ["server: JSON.stringify(encoded)", async () => JSON.stringify(encoded)],
    ["server: Effect.runPromise(Effect.void) (per-call base)", () => run(Effect.void)],
    ["HttpApi web handler: GET /healthz", get("/healthz")],
    ["HttpApi web handler: GET /users/my", get("/users/my")],
    ["HttpApi web handler: GET /projects/my", get("/projects/my")],
    ["HttpApi web handler: GET /healthz, tracer off", get("/healthz", untraced.handler)],
    ["HttpApi web handler: GET /projects/my, tracer off", get("/projects/my", untraced.handler)]
  ]

  yield* log(
    `steps of GET /projects/my, ${PROJECTS} projects; ${ITERATIONS} calls each, one at a time, after ${WARMUP}; ` +
      `node ${process.version}\n`
  )
  yield* log(`${"step".padEnd(58)} wall µs/call   cpu µs/call`)
  for (const [name, op] of steps) {
    const timing = yield* Effect.tryPromise({
      try: () => time(op),
      catch: (cause) => new BenchError(`${name}: ${String(cause)}`)
    })
    yield* log(
      `${name.padEnd(58)} ${timing.wallUs.toFixed(0).padStart(13)} ${timing.cpuUs.toFixed(0).padStart(13)}`
    )
  }
})

await runMain(main)
