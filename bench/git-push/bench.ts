// The git push benchmark (started by run.ts). It builds a repository of a few thousand files with
// history (~50 MB of content, deterministic, partly incompressible), then pushes it alternately
// through our GitSshServer and through OpenSSH's sshd into fresh bare repositories, and clones it
// back from each. Both targets are created by GitRepoStore, so git does the same work behind
// either server; what differs is the SSH side. Prints both throughputs and the ratio.
import { randomUUID } from "node:crypto"
import { mkdir, readdir, rm, stat, writeFile } from "node:fs/promises"
import { connect as tcpConnect } from "node:net"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { Platform } from "@paas/core/Platform"
import type { ProjectId } from "@paas/core/Project"
import { InMemoryMailer, TestPlatform } from "@paas/core/testing"
import { GitRepoStore, GitSshServer } from "@paas/git"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import { execa } from "execa"
import { freePort } from "../../packages/server/test/support/server.js"

const ROUNDS = 3
const TEXT_FILES = 2_900
const BINARY_FILES = 50
const COMMITS = 10
const GIT_TIMEOUT_MS = 180_000
const SSHD = "/usr/sbin/sshd"

// ---- deterministic content ---------------------------------------------------------------------

/** mulberry32: small, fast, and the same bytes on every run. */
const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const WORDS =
  "const let function return import export from async await yield effect layer stream scope fiber deploy build push release project repository commit branch merge server client request response error value type interface module".split(
    " "
  )

const textFile = (random: () => number, lines: number) => {
  const out: Array<string> = []
  for (let i = 0; i < lines; i++) {
    const n = 4 + Math.floor(random() * 10)
    const words: Array<string> = []
    for (let w = 0; w < n; w++) words.push(WORDS[Math.floor(random() * WORDS.length)] ?? "x")
    out.push(`${"  ".repeat(Math.floor(random() * 4))}${words.join(" ")} ${Math.floor(random() * 1e6)}`)
  }
  return `${out.join("\n")}\n`
}

const binaryFile = (random: () => number, bytes: number) => {
  const words = new Uint32Array(Math.ceil(bytes / 4))
  for (let i = 0; i < words.length; i++) words[i] = Math.floor(random() * 4294967296)
  return Buffer.from(words.buffer, 0, bytes)
}

// ---- processes -----------------------------------------------------------------------------------

const clientEnv = (home: string, extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: home,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "Bench",
  GIT_AUTHOR_EMAIL: "bench@example.com",
  GIT_COMMITTER_NAME: "Bench",
  GIT_COMMITTER_EMAIL: "bench@example.com",
  GIT_AUTHOR_DATE: "2024-01-01T00:00:00Z",
  GIT_COMMITTER_DATE: "2024-01-01T00:00:00Z",
  LC_ALL: "C",
  ...extra
})

const run = async (
  file: string,
  args: ReadonlyArray<string>,
  options: { cwd?: string; env?: Record<string, string> }
) => {
  const result = await execa(file, args, {
    ...options,
    extendEnv: false,
    reject: false,
    timeout: GIT_TIMEOUT_MS,
    stdin: "ignore"
  })
  if (result.exitCode !== 0)
    throw new Error(`${file} ${args.join(" ")} failed (${result.exitCode}): ${result.stderr}`)
  return result.stdout
}

const waitForPort = async (port: number, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, "127.0.0.1")
      socket.once("connect", () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
    })
    if (open) return
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const packBytes = async (repo: string) => {
  const dir = join(repo, "objects", "pack")
  let total = 0
  for (const name of await readdir(dir))
    if (name.endsWith(".pack")) total += (await stat(join(dir, name))).size
  return total
}

const median = (xs: ReadonlyArray<number>) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
const mb = (bytes: number) => bytes / 1024 / 1024

// ---- the benchmark -------------------------------------------------------------------------------

const main = async () => {
  const root = join(tmpdir(), `paas-bench-git-push-${process.pid}`)
  let sshd:
    | { readonly pid: number | undefined; readonly exitCode: number | null; readonly done: Promise<unknown> }
    | undefined
  let dispose: (() => Promise<void>) | undefined
  const cleanup = async () => {
    if (sshd?.pid !== undefined && sshd.exitCode === null) {
      process.kill(sshd.pid, "SIGTERM")
      await sshd.done
    }
    await dispose?.()
    await rm(root, { recursive: true, force: true })
  }
  process.once("SIGINT", () => void cleanup().then(() => process.exit(130)))
  process.once("SIGTERM", () => void cleanup().then(() => process.exit(143)))

  try {
    await mkdir(root, { recursive: true })
    const work = join(root, "work")
    await mkdir(work)

    // 1. The repository.
    const started = performance.now()
    const random = prng(42)
    await run("git", ["init", "--quiet", "--initial-branch=main"], { cwd: work, env: clientEnv(work) })
    const textNames = Array.from({ length: TEXT_FILES }, (_, i) => `src/m${i % 50}/file-${i}.txt`)
    for (let c = 0; c < COMMITS; c++) {
      const writes: Array<Promise<void>> = []
      const put = async (name: string, content: string | Buffer) => {
        await mkdir(join(work, name, ".."), { recursive: true })
        await writeFile(join(work, name), content)
      }
      if (c === 0) {
        for (const name of textNames)
          writes.push(put(name, textFile(random, 60 + Math.floor(random() * 160))))
        for (let b = 0; b < BINARY_FILES; b++)
          writes.push(put(`assets/blob-${b}.bin`, binaryFile(random, 400_000)))
      } else {
        for (let i = 0; i < 300; i++) {
          const name = textNames[Math.floor(random() * textNames.length)] ?? "src/x.txt"
          writes.push(put(name, textFile(random, 60 + Math.floor(random() * 160))))
        }
        for (let b = 0; b < 2; b++)
          writes.push(put(`assets/commit-${c}-${b}.bin`, binaryFile(random, 500_000)))
      }
      await Promise.all(writes)
      await run("git", ["add", "--all"], { cwd: work, env: clientEnv(work) })
      await run("git", ["commit", "--quiet", "-m", `commit ${c + 1}`], { cwd: work, env: clientEnv(work) })
    }
    const files = (await run("git", ["ls-files"], { cwd: work, env: clientEnv(work) })).split("\n").length
    const content = Number(
      (await run("git", ["count-objects", "-v"], { cwd: work, env: clientEnv(work) }))
        .split("\n")
        .find((l) => l.startsWith("size:"))
        ?.split(" ")[1] ?? 0
    )
    console.log(
      `repository: ${files} files, ${COMMITS} commits, ${mb(content * 1024).toFixed(1)} MB of loose objects ` +
        `(made in ${((performance.now() - started) / 1000).toFixed(1)} s)`
    )

    // 2. A client key.
    const key = join(root, "client_key")
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key], { env: clientEnv(root) })
    const publicKey = (await run("cat", [`${key}.pub`], { env: clientEnv(root) })).trim()
    const ssh = (port?: number) =>
      [
        "ssh -F /dev/null",
        `-i ${key}`,
        "-o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
        port === undefined ? "" : `-p ${port}`
      ].join(" ")

    // 3. Our server, on the test platform with the real repository store.
    const store = Layer.orDie(GitRepoStore.layer({ root: join(root, "ours") }))
    const platform = TestPlatform.layer({ repoStore: store })
    const serverLayer = GitSshServer.layer({ port: 0, dataDir: join(root, "data") }).pipe(
      Layer.provide(Layer.merge(platform, store)),
      Layer.orDie
    )
    const managed = ManagedRuntime.make(
      Layer.mergeAll(serverLayer, platform, store).pipe(
        Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
      )
    )
    dispose = () => managed.dispose()
    const { server, principal } = await managed.runPromise(
      Effect.gen(function* () {
        const server = yield* GitSshServer.GitSshServer
        const platform = yield* Platform
        const outbox = yield* InMemoryMailer.Outbox
        const password = Redacted.make("Bench-passw0rd!")
        yield* platform.register({ username: "bench", email: "bench@example.com", password })
        const token = InMemoryMailer.tokenIn((yield* outbox.latestTo("bench@example.com"))?.text ?? "")
        if (token === undefined) return yield* Effect.dieMessage("no confirmation mail")
        yield* platform.confirmEmail(token)
        const session = yield* platform.login({ email: "bench@example.com", password, client: "127.0.0.1" })
        const principal = yield* platform.authenticate(session.token)
        yield* platform.addSshKey(principal, { value: publicKey, name: "bench" })
        return { server, principal }
      }).pipe(Effect.orDie)
    )
    let projects = 0
    const newProject = () =>
      managed.runPromise(
        Effect.flatMap(Platform, (p) => p.createProject(principal, { name: `bench-${++projects}` })).pipe(
          Effect.map((p) => p.id),
          Effect.orDie
        )
      )
    const oursPath = (id: ProjectId) => join(root, "ours", id)

    // 4. OpenSSH's sshd, into bare repositories made the same way.
    const sshdDir = join(root, "sshd")
    await mkdir(sshdDir)
    await mkdir("/run/sshd", { recursive: true })
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(sshdDir, "host_key")], {
      env: clientEnv(root)
    })
    await writeFile(join(sshdDir, "authorized_keys"), `${publicKey}\n`, { mode: 0o600 })
    const sshdPort = await Effect.runPromise(freePort)
    const user = userInfo().username
    await writeFile(
      join(sshdDir, "sshd_config"),
      [
        `Port ${sshdPort}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${join(sshdDir, "host_key")}`,
        `PidFile ${join(sshdDir, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(sshdDir, "authorized_keys")}`,
        `AllowUsers ${user}`,
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PrintMotd no",
        "PermitUserEnvironment no",
        "AcceptEnv GIT_PROTOCOL",
        ""
      ].join("\n")
    )
    const child = execa(SSHD, ["-D", "-e", "-f", join(sshdDir, "sshd_config")], {
      reject: false,
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore"
    })
    sshd = {
      pid: child.pid,
      get exitCode() {
        return child.exitCode
      },
      done: child.then(() => undefined)
    }
    await waitForPort(sshdPort, 10_000)
    const theirStore = join(root, "theirs")
    const newBareRepo = () =>
      managed.runPromise(
        Effect.gen(function* () {
          const store = yield* GitRepoStore.make({ root: theirStore })
          const id = randomUUID() as ProjectId
          yield* store.create(id)
          return join(theirStore, id)
        }).pipe(Effect.orDie)
      )

    // 5. Alternate pushes and clones.
    const env = clientEnv(work, { GIT_SSH_COMMAND: ssh() })
    const timed = async (args: ReadonlyArray<string>, cwd: string) => {
      const t0 = performance.now()
      await run("git", args, { cwd, env })
      return (performance.now() - t0) / 1000
    }
    const results = {
      ours: { push: [] as Array<number>, clone: [] as Array<number> },
      sshd: { push: [] as Array<number>, clone: [] as Array<number> }
    }
    let bytes = 0
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of round % 2 === 0 ? (["ours", "sshd"] as const) : (["sshd", "ours"] as const)) {
        const target =
          side === "ours"
            ? await newProject().then((id) => ({
                url: `ssh://git@127.0.0.1:${server.port}/${id}`,
                path: oursPath(id)
              }))
            : await newBareRepo().then((path) => ({
                url: `ssh://${user}@127.0.0.1:${sshdPort}${path}`,
                path
              }))
        // A branch other than the deploy branch: the Platform records the push and builds nothing.
        const pushSeconds = await timed(["push", "--quiet", target.url, "main:refs/heads/bench"], work)
        bytes = await packBytes(target.path)
        const cloneDir = join(root, `clone-${side}-${round}`)
        const cloneSeconds = await timed(["clone", "--quiet", "--bare", target.url, cloneDir], root)
        await rm(cloneDir, { recursive: true, force: true })
        results[side].push.push(mb(bytes) / pushSeconds)
        results[side].clone.push(mb(bytes) / cloneSeconds)
        console.log(
          `round ${round + 1} ${side.padEnd(4)}: push ${pushSeconds.toFixed(2)} s (${(mb(bytes) / pushSeconds).toFixed(1)} MB/s), ` +
            `clone ${cloneSeconds.toFixed(2)} s (${(mb(bytes) / cloneSeconds).toFixed(1)} MB/s)`
        )
      }
    }
    const ours = median(results.ours.push)
    const theirs = median(results.sshd.push)
    const oursClone = median(results.ours.clone)
    const theirsClone = median(results.sshd.clone)
    console.log(`pack: ${mb(bytes).toFixed(1)} MB; medians of ${ROUNDS} rounds`)
    console.log(
      `push  GitSshServer: ${ours.toFixed(1)} MB/s   sshd: ${theirs.toFixed(1)} MB/s   ratio: ${(ours / theirs).toFixed(2)}x (goal >= 0.90x)`
    )
    console.log(
      `clone GitSshServer: ${oursClone.toFixed(1)} MB/s   sshd: ${theirsClone.toFixed(1)} MB/s   ratio: ${(oursClone / theirsClone).toFixed(2)}x`
    )
    if (ours / theirs < 0.9) process.exitCode = 1
  } finally {
    await cleanup()
  }
}

await main()
