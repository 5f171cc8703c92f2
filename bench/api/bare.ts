// The baseline of the API benchmark (started by bench.ts as its own process): `GET /projects/my`
// answered by a bare node:http handler running the server's SQL through a `pg` Pool, with the
// same envelope and fields as the server. No framework, no Effect, no schemas.
//
// It listens on three ports, one per variant, so that one process (one heap, one pool) serves
// them all and the benchmark loads them one at a time:
//   query     the projects query for a fixed owner (OWNER_ID), no authentication at all
//   jwt       verifies the bearer token (jose HS256, the server's options) and lists the
//             projects of its `sub`: the least a correct handler of an authenticated route does
//   jwt+user  also reads the user row on every request, as the server's Platform.authenticate
//             does (a deleted account's token stops working at once): the server's exact work
//
// Environment: DATABASE_URL, OWNER_ID, JWT_SECRET (the server's signing secret), POOL_MAX
// (default: pg's own default of 10, which is also what @effect/sql-pg leaves the server with).
// Prints one line of JSON with the ports once it listens; SIGTERM closes everything and exits.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { jwtVerify } from "jose"
import pg from "pg"

const env = (name: string) => {
  const value = process.env[name]
  if (value === undefined || value === "") {
    console.error(`bare: ${name} is not set`)
    process.exit(2)
  }
  return value
}

const pool = new pg.Pool({
  connectionString: env("DATABASE_URL"),
  application_name: "bench-bare",
  ...(process.env.POOL_MAX ? { max: Number(process.env.POOL_MAX) } : {})
})
// An idle client that loses its connection must not crash the process (the server ignores it too).
pool.on("error", () => {})
const ownerId = env("OWNER_ID")
const key = new TextEncoder().encode(env("JWT_SECRET"))

// The SQL of SqlPersistence's `projects.listByOwner` and `users.findById`, character for character
// in what PostgreSQL receives (an unnamed statement with one parameter).
const listByOwner =
  "SELECT id, owner_id, name, config, created_at, updated_at FROM projects WHERE owner_id = $1 ORDER BY created_at, id"
const findUser =
  "SELECT id, username, email, is_admin, email_confirmed, created_at, updated_at FROM users WHERE id = $1"

interface ProjectRow {
  readonly id: string
  readonly name: string
  readonly config: { readonly env?: Record<string, string>; readonly domains?: ReadonlyArray<string> }
  readonly created_at: Date
  readonly updated_at: Date
}

const send = (res: ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  res.end(text)
}

const unauthorized = (res: ServerResponse, message: string) =>
  send(res, 401, { status: "unauthorized", message })

// The fields and order of the server's ProjectView, dates as ISO strings.
const listProjects = async (res: ServerResponse, owner: string) => {
  const { rows } = await pool.query<ProjectRow>(listByOwner, [owner])
  send(res, 200, {
    status: "OK",
    content: rows.map((row) => ({
      id: row.id,
      name: row.name,
      config: { env: { ...row.config.env }, domains: row.config.domains ?? [] },
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString()
    }))
  })
}

// The owner the bearer token names, once its signature and expiry are checked; undefined otherwise.
const authenticate = async (req: IncomingMessage): Promise<string | undefined> => {
  const header = req.headers.authorization
  if (header === undefined || !header.startsWith("Bearer ")) return undefined
  try {
    const { payload } = await jwtVerify(header.slice(7), key, {
      algorithms: ["HS256"],
      requiredClaims: ["sub", "exp"]
    })
    return typeof payload.sub === "string" ? payload.sub : undefined
  } catch {
    return undefined
  }
}

type Variant = "query" | "jwt" | "jwt+user"

const handle = async (variant: Variant, req: IncomingMessage, res: ServerResponse) => {
  if (req.method !== "GET" || (req.url !== "/projects/my" && !req.url?.startsWith("/projects/my?")))
    return send(res, 404, { status: "not_found", message: `no route ${req.method} ${req.url}` })
  if (variant === "query") return listProjects(res, ownerId)
  const owner = await authenticate(req)
  if (owner === undefined) return unauthorized(res, "log in first: send a bearer token")
  if (variant === "jwt+user") {
    const { rows } = await pool.query(findUser, [owner])
    if (rows.length === 0) return unauthorized(res, "the account no longer exists: log in again")
  }
  return listProjects(res, owner)
}

const listen = (variant: Variant) =>
  new Promise<Server>((resolve, reject) => {
    const server = createServer((req, res) => {
      handle(variant, req, res).catch((error: unknown) => {
        console.error(`bare: ${variant}:`, error)
        if (!res.headersSent) send(res, 500, { status: "error", message: "something went wrong" })
      })
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

const variants: ReadonlyArray<Variant> = ["query", "jwt", "jwt+user"]
const servers = await Promise.all(variants.map(listen))
// Connect the pool before saying we are ready, so the first measured requests do not pay for it.
await pool.query("SELECT 1")
console.log(
  JSON.stringify(Object.fromEntries(variants.map((v, i) => [v, (servers[i]!.address() as AddressInfo).port])))
)

const stop = () => {
  for (const server of servers) {
    server.close()
    server.closeAllConnections()
  }
  pool.end().finally(() => process.exit(0))
  setTimeout(() => process.exit(0), 5_000).unref()
}
process.once("SIGTERM", stop)
process.once("SIGINT", stop)
