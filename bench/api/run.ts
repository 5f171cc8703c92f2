// Throughput and tail latency of the reference server's `GET /projects/my` (authenticated, 20
// projects, on PostgreSQL) against a bare node:http + pg handler running the same query, in one
// run, as a ratio. Goal: server ≥ 0.7× the bare handler.
// Run: node --import tsx bench/api/run.ts [--rounds=3] [--duration=5] [--warmup=3] [--connections=32]
//        [--threads=2] [--projects=20] [--variants=jwt,jwt+user,query] [--dev-mode=true]
//        [--server-routes=/healthz,/users/my] [--count-statements=false]
//        [--cpu-prof-dir=<dir>]   (profiles the server; summarise with bench/api/profile.ts)
// Where the server's time goes, step by step, in one process: bench/api/steps.ts.
//
// The workspace's packages resolve to their TypeScript sources under the `source` export
// condition. When it is not set, this launcher starts the benchmark again with it; the benchmark
// itself is in bench.ts, imported only once the condition is active.
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const hasSourceCondition =
  process.execArgv.some((arg) => arg === "--conditions=source" || arg === "-C=source") ||
  (process.env.NODE_OPTIONS ?? "").includes("--conditions=source")

if (hasSourceCondition) {
  await import("./bench.js")
} else {
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: "inherit" }
  )
  // The benchmark cleans up after itself; pass signals on so that it can (it ignores repeats).
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal))
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
}
