// Push throughput of the SSH git server against OpenSSH's sshd, in one run, as a ratio.
// Goal: our server ≥ 0.9× sshd.
// Run: node --import tsx bench/git-push/run.ts
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
