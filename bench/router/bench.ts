// The router benchmark (started by run.ts). One tiny node upstream runs in its own process; our
// ProxyRouter (in this process, one event loop) and nginx (a temp prefix, `daemon off`, upstream
// keepalive) both sit in front of it. wrk loads each in turn with the same settings, alternating,
// for a few rounds; we print requests/s and p99 latency for both, and the ratio ours/nginx.
//
// nginx runs one worker by default, because our router is one event loop: the comparison is then
// per core. `--nginx-workers=auto` compares against nginx using every core instead.
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { createServer } from "node:net"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import type { ProjectId } from "@paas/core/Project"
import { ProxyRouter } from "@paas/runtime-process"
import * as Effect from "effect/Effect"
import { freePort } from "../../packages/server/test/support/server.js"
import { cpuTicks, type WrkResult, withChildren, wrk } from "../wrk.js"

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
const ROUNDS = Number(arg("rounds", "3"))
const DURATION = Number(arg("duration", "5"))
const CONNECTIONS = Number(arg("connections", "32"))
const THREADS = Number(arg("threads", "2"))
const NGINX_WORKERS = arg("nginx-workers", "1")
const NGINX = "/usr/sbin/nginx"
const HOST = "app.user-app.localhost"

const UPSTREAM = `
const http = require("node:http")
const body = Buffer.from("hello from the upstream\\n")
const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": body.length })
  res.end(body)
})
server.keepAliveTimeout = 65_000
server.listen(0, "127.0.0.1", () => console.log(server.address().port))
`

/** A child process killed (and waited for) when the scope closes. */
const child = (command: string, args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })),
    (p) =>
      Effect.async<void>((resume) => {
        if (p.exitCode !== null || p.signalCode !== null) return resume(Effect.void)
        p.once("exit", () => resume(Effect.void))
        p.kill("SIGTERM")
        const timer = setTimeout(() => p.kill("SIGKILL"), 5_000)
        timer.unref()
      })
  )

const firstLine = (p: ChildProcess) =>
  Effect.async<string, Error>((resume) => {
    let out = ""
    p.stdout!.on("data", (c: Buffer) => {
      out += c.toString()
      const nl = out.indexOf("\n")
      if (nl >= 0) resume(Effect.succeed(out.slice(0, nl)))
    })
    p.once("exit", (code) => resume(Effect.fail(new Error(`exited with ${code} before answering`))))
  }).pipe(Effect.timeout("10 seconds"))

const waitForPort = (port: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200; i++) {
      const open = yield* Effect.async<boolean>((resume) => {
        const s = createServer()
        s.once("error", () => resume(Effect.succeed(true)))
        s.listen(port, "127.0.0.1", () => s.close(() => resume(Effect.succeed(false))))
      })
      if (open) return
      yield* Effect.sleep("25 millis")
    }
    return yield* Effect.dieMessage(`nothing listens on ${port}`)
  })

const load = (port: number, host = HOST) =>
  wrk({
    url: `http://127.0.0.1:${port}/`,
    threads: THREADS,
    connections: CONNECTIONS,
    seconds: DURATION,
    headers: { Host: host }
  })

const nginxConf = (dir: string, port: number, upstream: number) => `
worker_processes ${NGINX_WORKERS};
daemon off;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream app {
    server 127.0.0.1:${upstream};
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
    }
  }
}
`

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

interface Measured extends WrkResult {
  /** CPU time the proxy used per request, in microseconds. */
  readonly cpuUs: number
}

const fmt = (r: WrkResult) =>
  `${Math.round(r.rps).toString().padStart(7)} req/s  p99 ${r.p99ms.toFixed(2).padStart(7)} ms` +
  ("cpuUs" in r ? `  proxy cpu ${(r as Measured).cpuUs.toFixed(0).padStart(4)} µs/req` : "") +
  (r.errors ? `  (${r.errors})` : "")

const main = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "paas-bench-router-"))),
    (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
  )
  const upstreamProcess = yield* child(process.execPath, ["-e", UPSTREAM])
  const upstream = Number(yield* firstLine(upstreamProcess))

  const router = yield* ProxyRouter.make({ port: 0 })
  yield* router.set({
    appId: "00000000-0000-4000-8000-000000000001" as ProjectId,
    hosts: [HOST],
    instanceId: "bench",
    target: { host: "127.0.0.1", port: upstream }
  })

  const nginxPort = yield* freePort
  const conf = join(dir, "nginx.conf")
  yield* Effect.promise(() => writeFile(conf, nginxConf(dir, nginxPort, upstream)))
  const nginx = yield* child(NGINX, ["-p", dir, "-c", conf])
  yield* waitForPort(nginxPort)
  const measured = (port: number, pids: () => ReadonlyArray<number>) =>
    Effect.gen(function* () {
      const before = cpuTicks(pids())
      const result = yield* load(port)
      const ticks = cpuTicks(pids()) - before
      return { ...result, cpuUs: (ticks * 10_000) / Math.max(1, result.requests) } satisfies Measured
    })

  console.log(
    `router benchmark: wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION}s, ${ROUNDS} rounds, ${cpus().length} cpus, ` +
      `nginx worker_processes ${NGINX_WORKERS}, node ${process.version}`
  )
  // Warm both paths (JIT, connection pools) before measuring.
  yield* Effect.all([load(router.port), load(nginxPort)])
  const direct = yield* load(upstream)
  console.log(`upstream direct       ${fmt(direct)}`)

  const ours: Array<Measured> = []
  const theirs: Array<Measured> = []
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate which goes first, so neither always runs on a machine warmed by the other.
    const order = round % 2 === 1 ? (["ours", "nginx"] as const) : (["nginx", "ours"] as const)
    for (const which of order) {
      const result =
        which === "ours"
          ? yield* measured(router.port, () => [process.pid])
          : yield* measured(nginxPort, () => withChildren(nginx.pid!))
      ;(which === "ours" ? ours : theirs).push(result)
      console.log(`round ${round}  ${which === "ours" ? "ProxyRouter" : "nginx      "}  ${fmt(result)}`)
    }
  }
  const oursRps = median(ours.map((r) => r.rps))
  const nginxRps = median(theirs.map((r) => r.rps))
  const oursP99 = median(ours.map((r) => r.p99ms))
  const nginxP99 = median(theirs.map((r) => r.p99ms))
  console.log(
    `\nmedian  ProxyRouter ${Math.round(oursRps)} req/s, p99 ${oursP99.toFixed(2)} ms | ` +
      `nginx ${Math.round(nginxRps)} req/s, p99 ${nginxP99.toFixed(2)} ms`
  )
  const oursCpu = median(ours.map((r) => r.cpuUs))
  const nginxCpu = median(theirs.map((r) => r.cpuUs))
  console.log(`proxy cpu per request: ProxyRouter ${oursCpu.toFixed(0)} µs, nginx ${nginxCpu.toFixed(0)} µs`)
  console.log(`ratio ours/nginx: ${(oursRps / nginxRps).toFixed(2)}× throughput (goal ≥ 0.8×)`)
})

await Effect.runPromise(Effect.scoped(main))
