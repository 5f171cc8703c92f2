import { defineConfig } from "vitest/config"

// One run for the whole workspace. The "source" condition makes `@paas/*` imports resolve to
// TypeScript sources, so tests never need a build first.
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks"
  }
})
