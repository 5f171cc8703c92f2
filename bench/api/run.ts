// Throughput and tail latency of the reference server's `GET /projects/my` (authenticated, 20
// projects, on PostgreSQL) against a bare node:http + pg handler running the same query, in one
// run, as a ratio. Goal: server ≥ 0.7× the bare handler.
// Run: node --import tsx bench/api/run.ts [--rounds=3] [--duration=5] [--warmup=3] [--connections=32]
//        [--threads=2] [--projects=20] [--variants=jwt,jwt+user,query] [--dev-mode=true]
//        [--server-routes=/healthz,/users/my] [--count-statements=false]
//        [--server=built|source]  (built: packages/server/dist, after `npm run build`; source: via tsx)
//        [--cpu-prof-dir=<dir>]   (profiles the server; summarise with bench/api/profile.ts)
// Where the server's time goes, step by step, in one process: bench/api/steps.ts.
import { launch } from "../launch.js"

await launch(import.meta.url, "./bench.js")
