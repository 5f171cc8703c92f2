// Shared steps for the core tests: an account that can log in, a project with a push.
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { Platform } from "../src/Platform.js"
import { InMemoryMailer, InMemoryRepoStore } from "../src/testing.js"
import type { Principal } from "../src/User.js"

export const password = "Sup3r-secret!"

/** Registers, confirms through the outbox and logs in; returns the principal and token. */
export const signUp = (username: string, email = `${username}@example.com`) =>
  Effect.gen(function* () {
    const platform = yield* Platform
    const outbox = yield* InMemoryMailer.Outbox
    yield* platform.register({ username, email, password: Redacted.make(password) })
    const mail = yield* outbox.latestTo(email)
    const token = InMemoryMailer.tokenIn(mail?.text ?? "")
    if (token === undefined) return yield* Effect.dieMessage("no confirmation token in the mail")
    yield* platform.confirmEmail(token)
    const session = yield* platform.login({ email, password: Redacted.make(password), client: "127.0.0.1" })
    const principal = yield* platform.authenticate(session.token)
    return { principal, token: session.token, user: session.user }
  })

/** Pushes `files` to the project's main branch and reports the push to the Platform. */
export const push = (
  principal: Principal,
  projectId: Parameters<Platform["Type"]["getProject"]>[1],
  files: Record<string, string>
) =>
  Effect.gen(function* () {
    const platform = yield* Platform
    const repos = yield* InMemoryRepoStore.Repos
    const update = yield* repos.push(projectId, files)
    const lines: Array<string> = []
    const result = yield* platform.pushReceived(principal, projectId, [update], (line) =>
      Effect.sync(() => void lines.push(line))
    )
    return { result, lines, commit: update.after! }
  })
