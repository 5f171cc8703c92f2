// The API benchmark (started by run.ts). A throwaway PostgreSQL (.ci/postgres.sh), the
// `paas-server` command on it with one account and its projects, and bare.ts (node:http + pg, the
// same SQL and envelope) as a separate process. After checking that both answer the same 200,
// wrk loads `GET /projects/my` with the same bearer token on each in turn, alternating, for a few
// rounds; we print requests/s, latency and CPU per request (the node process, and PostgreSQL) for
// each, the medians, and the ratios server / bare. Two more server routes are loaded the same way
// to split the server's cost: `/healthz` (the HTTP stack alone) and `/users/my` (plus
// authentication and one user read).
//
// Every process, the database cluster and the temp directories are released by scope, on success,
// on error and on SIGINT/SIGTERM; every wait is bounded.
import { existsSync } from "node:fs"
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { isDeepStrictEqual } from "node:util"
import * as Effect from "effect/Effect"
import { cpuTicks, type WrkResult, wrk } from "../wrk.js"
import {
  arg,
  BenchError,
  contentString,
  createDatabase,
  expectStatus,
  fail,
  freePort,
  log,
  loggedStatements,
  median,
  postgres,
  postgresPids,
  request,
  root,
  runMain,
  spawnChild,
  threadTicks,
  ticksByPid,
  waitForOutput
} from "./support.js"

// ---- options -------------------------------------------------------------------------------------

const ROUNDS = Number(arg("rounds", "3"))
const DURATION = Number(arg("duration", "5"))
const WARMUP = Number(arg("warmup", "3"))
const CONNECTIONS = Number(arg("connections", "32"))
const THREADS = Number(arg("threads", "2"))
const PROJECTS = Number(arg("projects", "20"))
const DEV_MODE = arg("dev-mode", "true")
type Variant = "query" | "jwt" | "jwt+user"
const VARIANTS = arg("variants", "jwt,jwt+user,query")
  .split(",")
  .filter((v): v is Variant => v === "query" || v === "jwt" || v === "jwt+user")
// More server routes to load, for the breakdown (not part of the ratios).
const SERVER_ROUTES = arg("server-routes", "/healthz,/users/my")
  .split(",")
  .filter((r) => r !== "")
// Profiles the server (node --cpu-prof); summarise with profile.ts.
const CPU_PROF_DIR = arg("cpu-prof-dir", "")
// Diagnostic: PostgreSQL logs every statement of the bench database, and each run prints how many
// statements each request caused, and which. Costs PostgreSQL time: not for the figures.
const COUNT_STATEMENTS = arg("count-statements", "false") === "true"
// The bare variant the goal is judged against (bare.ts says what each variant does): `jwt`, because
// any correct handler of an authenticated route verifies the token, while reading the user row on
// every request is this server's own choice (a deleted account is locked out at once), a cost the
// comparison should show. `jwt+user` is the like-for-like one, `query` the issue's literal reading.
const HEADLINE: Variant = "jwt"
const GOAL = 0.7

// Which server runs: `built` (packages/server/dist, as the Docker image and the published package
// run it; `npm run build` first) or `source` (the TypeScript through tsx, as `npm start` runs it;
// tsx keeps function names with a helper call on every closure it creates).
const SERVER = arg("server", "built")
const SERVER_BIN =
  SERVER === "source"
    ? join(root, "packages", "server", "src", "bin.ts")
    : join(root, "packages", "server", "dist", "bin.js")
const BARE = fileURLToPath(new URL("./bare.ts", import.meta.url))
const TSX = createRequire(import.meta.url).resolve("tsx")
const PASSWORD = "Bench-passw0rd!"
const EMAIL = "bench@example.com"

const load = (url: string, token: string, seconds: number) =>
  wrk({
    url,
    threads: THREADS,
    connections: CONNECTIONS,
    seconds,
    headers: { Authorization: `Bearer ${token}` }
  }).pipe(Effect.mapError((e) => new BenchError(e.message)))

// ---- the benchmark -------------------------------------------------------------------------------

/** The confirmation token of the mail the server wrote to its outbox (no SMTP configured). */
const confirmationToken = (dataDir: string) =>
  Effect.gen(function* () {
    const outbox = join(dataDir, "outbox")
    for (let i = 0; i < 200; i++) {
      const names = yield* Effect.promise(() => readdir(outbox).catch(() => [] as Array<string>))
      for (const name of names.filter((n) => n.endsWith(".eml"))) {
        const raw = yield* Effect.promise(() => readFile(join(outbox, name), "utf8"))
        const match = /Token: ([0-9a-f-]{36})/.exec(raw.replace(/=\r?\n/g, ""))
        if (match !== null) return match[1]!
      }
      yield* Effect.sleep("50 millis")
    }
    return yield* fail(`no confirmation mail with a token in ${outbox} after 10 s`)
  })

interface Target {
  readonly name: string
  readonly url: string
  readonly pid: number
  /** `GET /projects/my`, compared and part of the ratios. */
  readonly projects: boolean
}

interface Measured extends WrkResult {
  /** CPU time of the target's node process per request, in µs. */
  readonly nodeUs: number
  /** CPU time of all PostgreSQL processes per request, in µs. */
  readonly pgUs: number
}

const fmt = (r: Measured) =>
  `${Math.round(r.rps).toString().padStart(6)} req/s  p50 ${r.p50ms.toFixed(2).padStart(6)} ms  ` +
  `p99 ${r.p99ms.toFixed(2).padStart(7)} ms  node ${r.nodeUs.toFixed(0).padStart(5)} µs/req  ` +
  `pg ${r.pgUs.toFixed(0).padStart(4)} µs/req${r.errors ? `  (${r.errors})` : ""}`

const main = Effect.gen(function* () {
  const started = Date.now()
  if (SERVER !== "source" && SERVER !== "built")
    return yield* fail(`--server is built or source, not ${SERVER}`)
  if (SERVER === "built" && !existsSync(SERVER_BIN))
    return yield* fail(`${SERVER_BIN} is missing: run \`npm run build\` first, or pass --server=source`)
  const scratch = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "paas-bench-api-"))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )
  const dataDir = join(scratch, "data")
  yield* Effect.promise(() => mkdir(dataDir))

  // 1. PostgreSQL, and a database for the server.
  const cluster = yield* postgres
  const databaseUrl = yield* createDatabase(cluster.url, "paas_bench", { logStatements: COUNT_STATEMENTS })
  yield* log(`postgres: ${databaseUrl} (${cluster.dir})`)

  // 2. The server, with an account and its projects.
  const ports = { http: yield* freePort, ssh: yield* freePort, router: yield* freePort }
  const profiling = CPU_PROF_DIR !== ""
  if (profiling) yield* Effect.promise(() => mkdir(CPU_PROF_DIR, { recursive: true }))
  const server = yield* spawnChild(
    process.execPath,
    [
      ...(SERVER === "source" ? ["--conditions=source", "--import", TSX] : []),
      ...(profiling ? ["--cpu-prof", `--cpu-prof-dir=${CPU_PROF_DIR}`] : []),
      SERVER_BIN
    ],
    {
      cwd: dataDir,
      env: {
        PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
        HOME: dataDir,
        DATABASE_URL: databaseUrl,
        PAAS_DATA_DIR: dataDir,
        PAAS_HTTP_HOST: "127.0.0.1",
        PAAS_HTTP_PORT: `${ports.http}`,
        PAAS_SSH_PORT: `${ports.ssh}`,
        PAAS_ROUTER_PORT: `${ports.router}`,
        PAAS_DEV_MODE: DEV_MODE
      },
      // Writing a CPU profile at exit takes a moment.
      graceMs: 30_000
    }
  )
  yield* waitForOutput(server, /paas-server is running/, 120_000, "paas-server")
  const api = `http://127.0.0.1:${ports.http}`
  yield* log(`paas-server: ${api} (pid ${server.pid}, PAAS_DEV_MODE=${DEV_MODE})`)

  yield* request(`${api}/auth/register`, "POST", {
    body: { username: "bench", email: EMAIL, password: PASSWORD }
  }).pipe(Effect.flatMap(expectStatus(201, "register")))
  const confirmation = yield* confirmationToken(dataDir)
  yield* request(`${api}/auth/confirm/${confirmation}`, "POST").pipe(
    Effect.flatMap(expectStatus(201, "confirm"))
  )
  const login = yield* request(`${api}/auth/login`, "POST", {
    body: { email: EMAIL, password: PASSWORD }
  }).pipe(Effect.flatMap(expectStatus(201, "login")))
  const token = yield* contentString(login, "accessToken", "login")
  const me = yield* request(`${api}/users/my`, "GET", { token }).pipe(
    Effect.flatMap(expectStatus(200, "users/my"))
  )
  const ownerId = yield* contentString(me, "id", "users/my")
  for (let i = 1; i <= PROJECTS; i++) {
    const created = yield* request(`${api}/projects`, "POST", { token, body: { name: `bench-${i}` } }).pipe(
      Effect.flatMap(expectStatus(201, `create project ${i}`))
    )
    // A few variables, so that `config.env` is not empty in what is encoded and compared.
    const projectId = yield* contentString(created, "id", `create project ${i}`)
    yield* request(`${api}/projects/${projectId}/deploy`, "PATCH", {
      token,
      body: { env_vars: { PORT: "8080", NODE_ENV: "production", RELEASE: `r${i}` } }
    }).pipe(Effect.flatMap(expectStatus(200, `set env of project ${i}`)))
  }

  // 3. The bare handler, in its own process, on the same database, owner and signing secret.
  const secret = (yield* Effect.promise(() => readFile(join(dataDir, "jwt-secret"), "utf8"))).trim()
  const bare = yield* spawnChild(process.execPath, ["--import", TSX, BARE], {
    env: {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      DATABASE_URL: databaseUrl,
      OWNER_ID: ownerId,
      JWT_SECRET: secret
    },
    graceMs: 10_000
  })
  const barePorts = JSON.parse((yield* waitForOutput(bare, /^\{.*\}$/m, 60_000, "bare.ts"))[0]) as Record<
    Variant,
    number
  >
  yield* log(`bare.ts: pid ${bare.pid}, ports ${JSON.stringify(barePorts)}`)

  const targets: Array<Target> = [
    { name: "server", url: `${api}/projects/my`, pid: server.pid, projects: true },
    ...VARIANTS.map((v) => ({
      name: `bare ${v}`,
      url: `http://127.0.0.1:${barePorts[v]}/projects/my`,
      pid: bare.pid,
      projects: true
    })),
    ...SERVER_ROUTES.map((route) => ({
      name: `server ${route}`,
      url: `${api}${route}`,
      pid: server.pid,
      projects: false
    }))
  ]
  const width = Math.max(...targets.map((t) => t.name.length))

  // 4. Every target answers 200, and the /projects/my ones the same content.
  const replies = yield* Effect.forEach(targets, (t) =>
    request(t.url, "GET", { token }).pipe(Effect.flatMap(expectStatus(200, t.name)))
  )
  const reference = replies[0]!
  const listed = reference.body.content
  if (!Array.isArray(listed) || listed.length !== PROJECTS)
    return yield* fail(
      `the server listed ${Array.isArray(listed) ? listed.length : "no"} projects, not ${PROJECTS}`
    )
  const compared = replies.filter((_, i) => targets[i]!.projects)
  for (const [i, reply] of compared.entries()) {
    if (!isDeepStrictEqual(reply.body, reference.body))
      return yield* fail(
        `${targets[i]!.name} answers differently from the server:\n${reply.text}\nvs\n${reference.text}`
      )
  }
  yield* log(
    `check: server and bare answer 200 with the same ${PROJECTS} projects (${reference.text.length} bytes; ` +
      `byte-identical: ${compared.every((r) => r.text === reference.text) ? "yes" : "no, same JSON value"})`
  )

  // 5. Warm up, then alternate.
  yield* log(
    `\nwrk -t${THREADS} -c${CONNECTIONS} -d${DURATION}s --latency, ${ROUNDS} rounds, warm-up ${WARMUP} s each; ` +
      `${cpus().length} cpus, node ${process.version}; pg pools: pg's default (10) on both sides`
  )
  for (const t of targets) yield* load(t.url, token, WARMUP)
  const window = { startUs: Number(process.hrtime.bigint() / 1000n), endUs: 0 }
  const results = new Map<string, Array<Measured>>(targets.map((t) => [t.name, []]))
  // Per thread, over all measured rounds: where a process's CPU time goes besides its main thread.
  const threads = new Map<string, Map<string, number>>(targets.map((t) => [t.name, new Map()]))
  const serverLogBefore = server.outputBytes()
  let serverRequests = 0
  for (let round = 1; round <= ROUNDS; round++) {
    // Rotate the order, so that no target always runs right after the same neighbour.
    const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]!)
    for (const t of order) {
      const logOffset = COUNT_STATEMENTS ? loggedStatements(cluster.dir, 0).offset : 0
      const before = {
        node: cpuTicks([t.pid]),
        pg: ticksByPid(postgresPids(cluster.dir)),
        threads: threadTicks(t.pid)
      }
      const r = yield* load(t.url, token, DURATION)
      // Backends the pools opened during the run count from zero (pg closes idle ones after 10 s).
      const pgAfter = ticksByPid(postgresPids(cluster.dir))
      const after = { node: cpuTicks([t.pid]), threads: threadTicks(t.pid) }
      const pgTicks = [...pgAfter].reduce((sum, [pid, ticks]) => sum + ticks - (before.pg.get(pid) ?? 0), 0)
      const perThread = threads.get(t.name)!
      for (const [name, ticks] of after.threads)
        perThread.set(name, (perThread.get(name) ?? 0) + ticks - (before.threads.get(name) ?? 0))
      const perRequest = (ticks: number) => (ticks * 10_000) / Math.max(1, r.requests)
      const measured: Measured = {
        ...r,
        nodeUs: perRequest(after.node - before.node),
        pgUs: perRequest(pgTicks)
      }
      if (t.pid === server.pid) serverRequests += r.requests
      results.get(t.name)!.push(measured)
      yield* log(`round ${round}  ${t.name.padEnd(width)}  ${fmt(measured)}`)
      if (COUNT_STATEMENTS) {
        const { counts } = loggedStatements(cluster.dir, logOffset)
        for (const [statement, n] of [...counts].sort((a, b) => b[1] - a[1]))
          yield* log(`    ${(n / Math.max(1, r.requests)).toFixed(3)} per request  ${statement}`)
      }
    }
  }
  window.endUs = Number(process.hrtime.bigint() / 1000n)
  const serverLogBytes = server.outputBytes() - serverLogBefore

  // 6. Medians and ratios.
  const summary = targets.map((t) => {
    const rs = results.get(t.name)!
    return {
      ...t,
      rps: median(rs.map((r) => r.rps)),
      p50: median(rs.map((r) => r.p50ms)),
      p99: median(rs.map((r) => r.p99ms)),
      nodeUs: median(rs.map((r) => r.nodeUs)),
      pgUs: median(rs.map((r) => r.pgUs))
    }
  })
  yield* log(`\nmedians over ${ROUNDS} rounds`)
  yield* log(`${"target".padEnd(width)}     req/s    p50 ms    p99 ms   node µs/req   pg µs/req`)
  for (const s of summary)
    yield* log(
      `${s.name.padEnd(width)} ${Math.round(s.rps).toString().padStart(9)} ${s.p50.toFixed(2).padStart(9)} ` +
        `${s.p99.toFixed(2).padStart(9)} ${s.nodeUs.toFixed(0).padStart(13)} ${s.pgUs.toFixed(0).padStart(11)}`
    )
  const ours = summary[0]!
  yield* log("")
  for (const s of summary.filter((s) => s.projects).slice(1)) {
    const ratio = ours.rps / s.rps
    const headline = s.name === `bare ${HEADLINE}`
    yield* log(
      `server / ${s.name.padEnd(13)}: ${ratio.toFixed(2)}× req/s, p99 ${(ours.p99 / s.p99).toFixed(2)}× ` +
        `${headline ? `(headline; goal ≥ ${GOAL}×: ${ratio >= GOAL ? "met" : "NOT met"})` : ""}`
    )
  }
  yield* log("")
  for (const t of targets.filter((t) => t.name === "server" || t.name === `bare ${HEADLINE}`)) {
    const perThread = [...threads.get(t.name)!].filter(([, ticks]) => ticks > 0).sort((a, b) => b[1] - a[1])
    const total = perThread.reduce((sum, [, ticks]) => sum + ticks, 0)
    yield* log(
      `${t.name} cpu by thread: ${perThread
        .slice(0, 6)
        .map(([name, ticks]) => `${name} ${((100 * ticks) / total).toFixed(0)} %`)
        .join(", ")}`
    )
  }
  yield* log(
    `server output during the measured rounds: ${serverLogBytes} bytes for ${serverRequests} requests ` +
      `(log level ${DEV_MODE === "true" ? "Debug" : "Info"})`
  )
  if (profiling) {
    yield* Effect.promise(() => writeFile(join(CPU_PROF_DIR, "window.json"), `${JSON.stringify(window)}\n`))
    yield* log(
      `server CPU profile: written to ${CPU_PROF_DIR} when the server exits; ` +
        `summarise with: node --import tsx bench/api/profile.ts ${CPU_PROF_DIR}`
    )
  }
  yield* log(`total time ${((Date.now() - started) / 1000).toFixed(0)} s; cleaning up`)
  const headline = summary.find((s) => s.name === `bare ${HEADLINE}`)
  if (headline !== undefined && ours.rps / headline.rps < GOAL) process.exitCode = 1
})

await runMain(main)
