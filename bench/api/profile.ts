// Summarises the server's CPU profile from `bench/api/run.ts --cpu-prof-dir=<dir>`: only the samples
// taken while wrk was loading it (window.json, written by the benchmark, in the monotonic clock
// that V8's profiler also uses), as self time by function and by package, and the inclusive time
// of the steps of `GET /projects/my`.
// Run: node --import tsx bench/api/profile.ts <dir> [--top=30]
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const dir = process.argv[2]
if (dir === undefined) {
  console.error("usage: profile.ts <dir written by --cpu-prof-dir>")
  process.exit(2)
}
const top = Number(process.argv.find((a) => a.startsWith("--top="))?.slice(6) ?? "30")
const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))
if (files.length === 0) {
  console.error(`no .cpuprofile in ${dir}`)
  process.exit(2)
}
const windowFor = (p: CpuProfile) => {
  try {
    return JSON.parse(readFileSync(join(dir, "window.json"), "utf8")) as { startUs: number; endUs: number }
  } catch {
    return { startUs: p.startTime, endUs: p.endTime }
  }
}
// Node writes one profile per thread (tsx's loader hooks run on their own): keep the busiest one
// in the window, which is the main thread serving requests.
const busy = (p: CpuProfile) => {
  const w = windowFor(p)
  const idle = new Set(p.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id))
  let t = p.startTime
  let count = 0
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0
    if (t >= w.startUs && t <= w.endUs && !idle.has(p.samples[i]!)) count++
  }
  return count
}
const loaded = files
  .map((file) => ({ file, profile: JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile }))
  .map((x) => ({ ...x, busy: busy(x.profile) }))
  .sort((a, b) => b.busy - a.busy)
const { file, profile } = loaded[0]!
for (const other of loaded.slice(1)) console.log(`(${other.file}: ${other.busy} busy samples, not shown)`)
const window = windowFor(profile)

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

// Where a frame comes from: a package in node_modules, a workspace package, node itself, or V8.
const origin = (frame: CallFrame) => {
  const url = frame.url
  if (url === "") return frame.functionName.startsWith("(") ? frame.functionName : "(native)"
  if (url.startsWith("node:")) return "node:"
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (modules !== null) return modules[1]!
  const workspace = /\/packages\/([^/]+)\//.exec(url)
  if (workspace !== null) return `@paas/${workspace[1]}`
  return url
}
const shortUrl = (url: string) =>
  url
    .replace(/^file:\/\//, "")
    .replace(/^.*node_modules\//, "")
    .replace(/^.*\/packages\//, "packages/")
const label = (frame: CallFrame) =>
  `${frame.functionName || "(anonymous)"} ${shortUrl(frame.url)}${frame.url ? `:${frame.lineNumber + 1}` : ""}`

// The steps of the route, recognised by a frame on the stack (first match from the leaf wins for
// each step; a sample may count in several steps, e.g. a query inside authentication).
const inModules = (f: CallFrame, pattern: RegExp) => pattern.test(f.url)
const steps: ReadonlyArray<readonly [string, (f: CallFrame) => boolean]> = [
  ["HTTP request handler (@effect/platform-node)", (f) => f.url.includes("@effect/platform-node/")],
  ["JWT verification (jose)", (f) => f.url.includes("node_modules/jose/")],
  [
    "SQL: @effect/sql + pg (queries, pool, protocol)",
    (f) => inModules(f, /node_modules\/(@effect\/sql|@effect\/sql-pg|pg|pg-pool|pg-protocol|pg-types)\//)
  ],
  [
    "SqlPersistence (row decoding + domain classes)",
    (f) => f.url.includes("/packages/server/src/SqlPersistence")
  ],
  [
    "effect/Schema (decode, encode, validate)",
    (f) => inModules(f, /node_modules\/effect\/dist\/esm\/(Schema|ParseResult|SchemaAST)\.js/)
  ],
  ["  of which Schema.Class constructors", (f) => f.functionName === "klass" && f.url.includes("effect/")],
  [
    "Effect spans (make, end, attributes)",
    (f) =>
      ["NativeSpan", "unsafeMakeSpan", "useSpan", "endSpan", "attribute", "end", "span"].includes(
        f.functionName
      ) && /internal\/(tracer|core-effect)\.js/.test(f.url)
  ],
  ["logging (effect Logger)", (f) => /internal\/logger|\/Logger\.js/.test(f.url)],
  ["JSON.stringify", (f) => f.functionName === "stringify" && f.url === ""],
  ["garbage collector (main thread part)", (f) => f.functionName === "(garbage collector)"]
]

let t = profile.startTime
let counted = 0
let countedUs = 0
const self = new Map<string, number>()
const inclusive = new Map<string, number>()
const selfByOrigin = new Map<string, number>()
const stepUs = new Map<string, number>()
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v)
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i] ?? 0
  if (t < window.startUs || t > window.endUs) continue
  const dt = profile.timeDeltas[i + 1] ?? 0
  const leaf = byId.get(profile.samples[i]!)!
  counted++
  countedUs += dt
  add(self, label(leaf.callFrame), dt)
  add(selfByOrigin, origin(leaf.callFrame), dt)
  const seen = new Set<string>()
  const seenFrames = new Set<string>()
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
    const frame = byId.get(id)!.callFrame
    const key = label(frame)
    if (!seenFrames.has(key)) {
      seenFrames.add(key)
      add(inclusive, key, dt)
    }
    for (const [name, matches] of steps) if (!seen.has(name) && matches(frame)) seen.add(name)
  }
  for (const name of seen) add(stepUs, name, dt)
}

// Percentages are of the busy time (neither idle nor "(program)"), the time the event loop worked.
const idle = (self.get("(idle) ") ?? 0) + (self.get("(program) ") ?? 0)
const busyUs = Math.max(1, countedUs - idle)
const pct = (us: number) => `${((100 * us) / busyUs).toFixed(1).padStart(5)} %`
const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`
const table = (entries: Iterable<readonly [string, number]>) => {
  for (const [name, us] of entries) console.log(`  ${pct(us)} ${ms(us)}  ${name}`)
}
const sorted = (m: Map<string, number>) =>
  [...m].filter(([name]) => !/^\((idle|program)\) ?$/.test(name)).sort((a, b) => b[1] - a[1])
console.log(
  `${file}: ${counted} samples in the load window, ${(countedUs / 1e6).toFixed(1)} s, of which busy ` +
    `${(busyUs / 1e6).toFixed(1)} s; percentages are of the busy time`
)
console.log(
  "\ninclusive time by step (a sample counts in every step on its stack; work resumed from a" +
    " microtask is not under the request handler's frames):"
)
table(steps.map(([name]) => [name, stepUs.get(name) ?? 0] as const))
console.log("\nself time by origin:")
table(sorted(selfByOrigin).slice(0, 15))
console.log(`\nself time, top ${top} functions:`)
table(sorted(self).slice(0, top))
console.log(`\ninclusive time, top ${top} functions:`)
table(sorted(inclusive).slice(0, top))
