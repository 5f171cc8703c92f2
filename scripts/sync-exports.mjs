// Keeps each package's `exports` in step with its public modules (every `src/*.ts`).
// Run `node scripts/sync-exports.mjs` after adding a module; CI runs it with --check.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const check = process.argv.includes("--check")
const stale = []
for (const dir of readdirSync("packages")) {
  const pkgPath = join("packages", dir, "package.json")
  const src = join("packages", dir, "src")
  if (!existsSync(pkgPath) || !existsSync(src)) continue
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8"))
  // `bin.ts` is a command (package.json `bin`), not a module to import.
  const modules = readdirSync(src)
    .filter((f) => f.endsWith(".ts") && f !== "bin.ts")
    .map((f) => f.slice(0, -3))
    .sort()
  const exports = {}
  for (const m of modules) {
    const key = m === "index" ? "." : `./${m}`
    exports[key] = { source: `./src/${m}.ts`, types: `./dist/${m}.d.ts`, import: `./dist/${m}.js` }
  }
  // Files a package publishes beside its modules (a JSON Schema, say) are kept as they are.
  for (const [key, value] of Object.entries(pkg.exports ?? {})) {
    if (typeof value === "string" && key !== "./package.json") exports[key] = value
  }
  exports["./package.json"] = "./package.json"
  if (JSON.stringify(pkg.exports) !== JSON.stringify(exports)) {
    stale.push(pkg.name)
    pkg.exports = exports
    if (!check) writeFileSync(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`)
  }
}
if (check && stale.length > 0) {
  console.error(`exports out of date in: ${stale.join(", ")} (run node scripts/sync-exports.mjs)`)
  process.exit(1)
}
