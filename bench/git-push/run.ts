// Push throughput of the SSH git server against OpenSSH's sshd, in one run, as a ratio.
// Goal: our server ≥ 0.9× sshd.
// Run: node --import tsx bench/git-push/run.ts
import { launch } from "../launch.js"

await launch(import.meta.url, "./bench.js")
