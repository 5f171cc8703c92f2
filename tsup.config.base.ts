import { readdirSync } from "node:fs"
import type { Options } from "tsup"

/** One entry per public module (`src/*.ts`), ESM with declarations, dependencies left external. */
export const packageOptions = (dir: string): Options => ({
  entry: readdirSync(`${dir}/src`)
    .filter((f) => f.endsWith(".ts"))
    .map((f) => `src/${f}`),
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  splitting: true,
  treeshake: false
})
