// Cloud Native Buildpacks through the `pack` CLI: its argument vector, its environment, and where
// it is. `pack` runs through process.ts like any build command (argv, no shell, every line to the
// log, killed with everything it started when the build is interrupted).

import { constants } from "node:fs"
import { access, stat } from "node:fs/promises"
import { delimiter, isAbsolute, join } from "node:path"

/** How the buildpacks builder runs `pack`. */
export interface PackSettings {
  /** The command: a name looked up on PATH, or a path. */
  readonly command: string
  /** The builder image when paas.yaml names none (none: pack's own default, `pack config default-builder`). */
  readonly builder: string | undefined
  /** `--pull-policy`: with no registry to reach, `if-not-present` uses the local images. */
  readonly pullPolicy: "always" | "never" | "if-not-present"
  /** `--network` for the build containers. */
  readonly network: string | undefined
}

/** What one `pack build` is asked to do. */
export interface PackBuild {
  readonly image: string
  readonly path: string
  readonly builder: string | undefined
  readonly buildpacks: ReadonlyArray<string>
  /** Names only: pack reads each value from its own environment, so no value appears in a process list. */
  readonly envNames: ReadonlyArray<string>
}

/** Variables pack itself needs; an app's variable of the same name is not passed to buildpacks. */
export const RESERVED = /^(PATH|HOME|DOCKER_.*|PACK_.*|PAAS_BUILD_ID)$/

/** The argument vector after the command. Every value is in `--flag=value` form so none can pass for a flag. */
export const packArgv = (settings: PackSettings, build: PackBuild): Array<string> => [
  "build",
  build.image,
  `--path=${build.path}`,
  ...(build.builder !== undefined ? [`--builder=${build.builder}`] : []),
  ...build.buildpacks.map((bp) => `--buildpack=${bp}`),
  ...build.envNames.map((name) => `--env=${name}`),
  `--pull-policy=${settings.pullPolicy}`,
  ...(settings.network !== undefined ? [`--network=${settings.network}`] : []),
  "--no-color"
]

/** The environment of `pack`: what it needs from the server (PATH, HOME, the engine's address) and the build's values. */
export const packEnv = (options: {
  readonly socketPath: string | undefined
  readonly values: Readonly<Record<string, string>>
}): Record<string, string> => {
  const env: Record<string, string> = { ...options.values }
  env.PATH = process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin"
  // pack keeps its configuration (trusted builders, default builder) and registry credentials there.
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME
  if (process.env.DOCKER_CONFIG !== undefined) env.DOCKER_CONFIG = process.env.DOCKER_CONFIG
  if (process.env.PACK_HOME !== undefined) env.PACK_HOME = process.env.PACK_HOME
  if (options.socketPath !== undefined) env.DOCKER_HOST = `unix://${options.socketPath}`
  else if (process.env.DOCKER_HOST !== undefined) env.DOCKER_HOST = process.env.DOCKER_HOST
  return env
}

const isExecutable = async (path: string) => {
  try {
    await access(path, constants.X_OK)
    return (await stat(path)).isFile()
  } catch {
    return false
  }
}

/** Where `command` is (a path, or found on `PATH`), or undefined when it is not installed. */
export const locate = async (command: string, path: string | undefined): Promise<string | undefined> => {
  if (command.includes("/"))
    return (await isExecutable(command))
      ? isAbsolute(command)
        ? command
        : join(process.cwd(), command)
      : undefined
  for (const dir of (path ?? "").split(delimiter)) {
    if (dir === "") continue
    const candidate = join(dir, command)
    if (await isExecutable(candidate)) return candidate
  }
  return undefined
}
