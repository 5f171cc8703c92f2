// How every benchmark starts. The workspace's packages resolve to their TypeScript sources under
// the `source` export condition; when the process runs without it, the benchmark is started again
// with it (and tsx), its signals passed on so that it can clean up. The benchmark itself is a
// module of its own, imported only once the condition is active.
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const hasSourceCondition = () =>
  process.execArgv.some((arg) => arg === "--conditions=source" || arg === "-C=source") ||
  (process.env.NODE_OPTIONS ?? "").includes("--conditions=source")

/** Runs `benchmark` (a path relative to `launcher`, the calling module's URL) from the sources. */
export const launch = async (launcher: string, benchmark: string): Promise<void> => {
  if (hasSourceCondition()) {
    await import(new URL(benchmark, launcher).href)
    return
  }
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", fileURLToPath(launcher), ...process.argv.slice(2)],
    { stdio: "inherit" }
  )
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal))
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
}
