// Where one Docker push's time goes (run: node --conditions=source --import tsx bench/push-to-live/trace.ts): each `remote:` line of a push with its time since the push
// started, and when the router first serves the new version.
import { spawn } from "node:child_process"
import { copyFile, mkdir } from "node:fs/promises"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import * as Effect from "effect/Effect"
import { gitUser } from "../../packages/server/test/support/git.js"
import { getApp } from "../../packages/server/test/support/router.js"
import {
  api,
  scratchDir,
  signUp,
  smtpServer,
  startServer
} from "../../packages/server/test/support/server.js"
import { dockerApp } from "./apps.js"

const main = Effect.gen(function* () {
  const dataDir = yield* scratchDir
  const home = yield* scratchDir
  const smtp = yield* smtpServer
  const server = yield* startServer({ dataDir, env: { PAAS_SMTP_URL: smtp.url, PAAS_RUNTIME: "docker" } })
  const token = yield* signUp(server, smtp, "tracer")
  const user = yield* gitUser(home, server.sshPort)
  yield* api(server, "POST", "/sshkeys/my", { token, body: { value: user.publicKey } })
  const id: string = (yield* api(server, "POST", "/projects", { token, body: { name: "tiny" } })).body.content
    .id
  yield* Effect.promise(() => copyFile("/bin/busybox", join(user.work, "busybox")))
  yield* Effect.promise(() => mkdir(join(user.work, "www"), { recursive: true }))
  for (const version of [0, 1, 2]) {
    yield* user.commit(dockerApp(version), `v${version}`)
    const started = performance.now()
    const child = spawn("git", ["push", `ssh://git@127.0.0.1:${server.sshPort}/${id}`, "main"], {
      cwd: user.work,
      env: {
        ...process.env,
        HOME: home,
        GIT_SSH_COMMAND: `ssh -i ${home}/id_ed25519 -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`
      }
    })
    child.stderr.on("data", (c: Buffer) => {
      for (const line of c.toString().split("\n"))
        if (line.trim())
          console.log(`${(performance.now() - started).toFixed(0).padStart(5)} ms  ${line.trim()}`)
    })
    for (let i = 0; i < 1000; i++) {
      const r = yield* getApp(server.routerPort, `${id}.user-app.localhost`)
      if (r.body.trim() === `v${version}`) {
        console.log(`${(performance.now() - started).toFixed(0).padStart(5)} ms  SERVED v${version}`)
        break
      }
      yield* Effect.sleep("10 millis")
    }
    yield* Effect.async<void>((resume) => {
      child.on("exit", () => resume(Effect.void))
    })
    console.log(`${(performance.now() - started).toFixed(0).padStart(5)} ms  push exited`)
  }
  // Containers outlive the server: deleting the project removes the app and its images.
  yield* api(server, "DELETE", `/projects/${id}`, { token })
  yield* server.stop("SIGTERM")
})
await Effect.runPromise(Effect.scoped(main))
