// A product's own code built on the Platform: a usage summary for a billing page.

import { Platform } from "@paas/core/Platform"
import type { Principal } from "@paas/core/User"
import * as Effect from "effect/Effect"

/** How many of the caller's apps run, out of how many projects. */
export const usageSummary = (principal: Principal) =>
  Effect.gen(function* () {
    const platform = yield* Platform
    const projects = yield* platform.listMyProjects(principal)
    const statuses = yield* platform.status(
      principal,
      projects.map((p) => p.id)
    )
    return {
      projects: projects.length,
      running: statuses.filter((s) => s.status === "running").length
    }
  })
