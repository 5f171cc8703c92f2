// Zero-configuration detection: from what a repository holds to how it is installed, built and
// started. A pure function of a few facts about the tree, so that the local builder and a
// Dockerfile generator make the same decisions.

import * as Either from "effect/Either"
import type { Argv, DeploymentFile, Method } from "../DeploymentFile.js"
import * as Words from "./words.js"

/** What detection looks at. */
export interface TreeFacts {
  /** Names of the entries at the repository root (files, directories, links). */
  readonly files: ReadonlySet<string>
  /** `package.json`, parsed, when the repository has one. */
  readonly packageJson?: unknown
  /** The text of `Procfile`, when the repository has one. */
  readonly procfile?: string
  /** The deployment file, when the repository has one. */
  readonly deployment?: DeploymentFile
}

/** What kind of app was found: a Node.js app, a folder of files, a Procfile's web process, or a command. */
export type AppKind = "node" | "static" | "procfile" | "command"

/** How to install, build and start an app. Commands are argument vectors, relative to the repository root. */
export interface AppPlan {
  readonly kind: AppKind
  /** The build method in effect (`auto` unless the deployment file says otherwise). */
  readonly method: Method
  readonly install: Argv | null
  readonly build: Argv | null
  /** How to start the app; null for a static site, which the platform serves itself. */
  readonly start: Argv | null
  /**
   * The folder a static site is served from. null means the default: `dist` when the build
   * step produced it, else the repository root (see `staticFolder`).
   */
  readonly output: string | null
  /** Why: one line per decision, for the build log. */
  readonly notes: ReadonlyArray<string>
}

/** Words a shell would take as they are: a start script made only of these is a plain command. */
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/

/**
 * The start command for a package.json start script: a plain `node <args>` runs node directly,
 * anything else through `npm start`. npm adds about a quarter of a second to every start and, on
 * SIGTERM, exits without passing the signal on, leaving the app's node process orphaned.
 */
export const startFromScript = (script: string): Argv => {
  const words = script.trim().split(/\s+/)
  const [first, ...rest] = words
  return first === "node" && words.every((w) => PLAIN_WORD.test(w)) ? ["node", ...rest] : ["npm", "start"]
}

/** The `web:` process of a Procfile, split into words; none when there is no such line. */
export const procfileWeb = (text: string): Either.Either<Argv | null, string> => {
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === "" || line.startsWith("#")) continue
    const match = /^([A-Za-z0-9_-]+)\s*:\s*(.*)$/.exec(line)
    if (match === null || match[1] !== "web") continue
    return Either.mapLeft(Words.split(match[2] ?? ""), (why) => `Procfile web: ${why}`)
  }
  return Either.right(null)
}

/** The static folder to serve: the plan's, else `dist` when a build step produced it, else the root. */
export const staticFolder = (plan: AppPlan, distExists: boolean): string =>
  plan.output ?? (plan.build !== null && distExists ? "dist" : ".")

const scriptsOf = (packageJson: unknown): Record<string, string> => {
  if (packageJson === null || typeof packageJson !== "object" || !("scripts" in packageJson)) return {}
  const scripts = packageJson.scripts
  if (scripts === null || typeof scripts !== "object") return {}
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(scripts)) if (typeof value === "string") out[name] = value
  return out
}

/** Decides how to install, build and start the app; `Left` says why it cannot. */
export const detect = (facts: TreeFacts): Either.Either<AppPlan, string> => {
  const { files, deployment } = facts
  const method = deployment?.build?.method ?? "auto"
  if (method === "dockerfile" || method === "buildpacks")
    return Either.left(`build.method ${method} is not something detection decides`)
  const notes: Array<string> = []

  const hasPackage = facts.packageJson !== undefined
  if (
    hasPackage &&
    (facts.packageJson === null || typeof facts.packageJson !== "object" || Array.isArray(facts.packageJson))
  )
    return Either.left("package.json must hold a JSON object")
  const scripts = scriptsOf(facts.packageJson)

  const lockfile = ["package-lock.json", "npm-shrinkwrap.json"].find((f) => files.has(f))
  // Nothing to install: no dependency of any kind and no install-time script. npm would only
  // spend most of a small app's build time finding that out.
  const manifest = (hasPackage ? facts.packageJson : {}) as Record<string, unknown>
  const declares = (field: string) => {
    const value = manifest[field]
    return typeof value === "object" && value !== null && Object.keys(value).length > 0
  }
  const nothingToInstall =
    ![
      "dependencies",
      "devDependencies",
      "optionalDependencies",
      "peerDependencies",
      "bundleDependencies"
    ].some(declares) &&
    !["preinstall", "install", "postinstall", "prepare"].some((s) => scripts[s] !== undefined)
  const install: Argv | null = !hasPackage
    ? null
    : nothingToInstall
      ? null
      : lockfile !== undefined
        ? ["npm", "ci"]
        : ["npm", "install"]
  if (hasPackage && nothingToInstall) notes.push("package.json declares no dependencies: nothing to install")
  else if (hasPackage) {
    notes.push(
      lockfile !== undefined
        ? `package.json and ${lockfile}: installing with npm ci`
        : "package.json without package-lock.json: installing with npm install"
    )
    for (const other of ["yarn.lock", "pnpm-lock.yaml"])
      if (files.has(other) && lockfile === undefined) notes.push(`${other} is ignored: builds use npm`)
  }

  const configuredBuild = deployment?.build?.command
  const build: Argv | null =
    configuredBuild ?? (scripts.build !== undefined ? (["npm", "run", "build"] as const) : null)
  if (configuredBuild !== undefined) notes.push("build command from paas.yaml")
  else if (build !== null) notes.push("package.json has a build script: npm run build")

  let web: Argv | null = null
  if (facts.procfile !== undefined) {
    const parsed = procfileWeb(facts.procfile)
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    web = parsed.right
  }

  const nodeStart = (): Argv | null => {
    if (scripts.start !== undefined) {
      const start = startFromScript(scripts.start)
      notes.push(
        start[0] === "node"
          ? "start: package.json start script, run with node directly"
          : "start: npm start (the start script is more than a plain node command)"
      )
      return start
    }
    if (hasPackage && files.has("server.js")) {
      notes.push("start: node server.js (npm's default when there is no start script)")
      return ["node", "server.js"]
    }
    return null
  }

  const output = deployment?.build?.output ?? null
  const runCommand = deployment?.run?.command

  if (method === "command") {
    if (configuredBuild === undefined) return Either.left("build.method command needs build.command")
    const start = runCommand ?? web ?? nodeStart()
    if (start === null)
      return Either.left("build.method command needs a start command: run.command, or a Procfile web: line")
    if (runCommand !== undefined) notes.push("start command from paas.yaml")
    else if (web !== null) notes.push("start: the Procfile's web: line")
    return Either.right({
      kind: "command",
      method,
      install: null,
      build: configuredBuild,
      start,
      output: null,
      notes
    })
  }

  const staticPlan = (): AppPlan => {
    notes.push(
      output !== null
        ? `static site: serving ${output}`
        : build !== null
          ? "static site: serving dist if the build produces it, else the repository root"
          : "static site: serving the repository root"
    )
    return {
      kind: "static",
      method,
      install: build !== null ? install : null,
      build,
      start: null,
      output,
      notes
    }
  }

  if (method === "static") {
    if (runCommand !== undefined)
      return Either.left(
        "run.command cannot be used with build.method static: the platform serves build.output itself"
      )
    return Either.right(staticPlan())
  }

  if (runCommand !== undefined) {
    notes.push("start command from paas.yaml")
    return Either.right({
      kind: hasPackage ? "node" : "command",
      method,
      install,
      build,
      start: runCommand,
      output: null,
      notes
    })
  }
  if (web !== null) {
    notes.push("start: the Procfile's web: line")
    return Either.right({ kind: "procfile", method, install, build, start: web, output: null, notes })
  }
  const start = nodeStart()
  if (start !== null)
    return Either.right({ kind: "node", method, install, build, start, output: null, notes })
  if (files.has("index.html") || output !== null || (hasPackage && build !== null))
    return Either.right(staticPlan())
  return Either.left(
    "cannot tell how to start this app: add a start script to package.json, a Procfile with a web: line, " +
      "run.command in paas.yaml, or an index.html for a static site"
  )
}
