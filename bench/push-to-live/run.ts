// Push to live: from `git push` starting to the new response served through the router, over
// repeated pushes of a tiny app. Goal: p50 ≤ 1.0 s (processes), ≤ 1.5 s (Docker, warm cache).
// Run: node --import tsx bench/push-to-live/run.ts [--runtime process|docker] [--pushes N]
//
// The workspace's packages resolve to their TypeScript sources under the `source` export
// condition; without it this launcher starts the benchmark again with it.
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
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal))
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
}
