// Push to live: from `git push` starting to the new response served through the router, over
// repeated pushes of a tiny app. Goal: p50 ≤ 1.0 s (processes), ≤ 1.5 s (Docker, warm cache).
// Run: node --import tsx bench/push-to-live/run.ts [--runtime process|docker] [--pushes N]
import { launch } from "../launch.js"

await launch(import.meta.url, "./bench.js")
