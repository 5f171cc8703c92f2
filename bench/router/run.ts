// Throughput and tail latency of the in-process router (ProxyRouter) against nginx in front of the
// same upstream, in one run, as a ratio. Goal: ours ≥ 0.8× nginx.
// Run: node --import tsx bench/router/run.ts [--rounds=3] [--duration=5] [--connections=32] [--nginx-workers=1]
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
  // The benchmark cleans up after itself; pass signals on so that it can.
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal))
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
}
