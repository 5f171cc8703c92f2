// Throughput and tail latency of the in-process router (ProxyRouter) against nginx in front of the
// same upstream, in one run, as a ratio. Goal: ours ≥ 0.8× nginx.
// Run: node --import tsx bench/router/run.ts [--rounds=3] [--duration=5] [--connections=32] [--nginx-workers=1]
import { launch } from "../launch.js"

await launch(import.meta.url, "./bench.js")
