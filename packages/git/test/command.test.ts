import { assert, describe, it } from "@effect/vitest"
import type { CommitSha } from "@paas/core/Build"
import * as Either from "effect/Either"
import type { RefSnapshot } from "../src/GitRepoStore.js"
import { acceptEnv, parse, refusals } from "../src/internal/command.js"
import { refUpdates } from "../src/internal/sshServer.js"

const id = "3f1c2a9e-8b7d-4c6e-a5f4-0123456789ab"

const ok = (command: string) => {
  const result = parse(command)
  if (Either.isLeft(result)) throw new Error(`refused ${JSON.stringify(command)}: ${result.left}`)
  return result.right
}

const refused = (command: string) => {
  const result = parse(command)
  assert.isTrue(Either.isLeft(result), `accepted ${JSON.stringify(command)}`)
  return Either.isLeft(result) ? result.left : ""
}

describe("git command parser", () => {
  it("accepts the forms git sends for ssh:// and scp-style URLs", () => {
    for (const path of [`'/${id}'`, `'${id}'`, `'/${id}.git'`, `'${id}.git'`, `/${id}`, id, `${id}.git`]) {
      assert.deepStrictEqual(ok(`git-receive-pack ${path}`), {
        service: "git-receive-pack",
        access: "write",
        project: id
      })
      assert.deepStrictEqual(ok(`git-upload-pack ${path}`), {
        service: "git-upload-pack",
        access: "read",
        project: id
      })
    }
  })

  it("normalises an upper-case id to the stored lower-case form", () => {
    assert.strictEqual(ok(`git-upload-pack '/${id.toUpperCase()}'`).project, id)
  })

  it("refuses other commands", () => {
    for (const command of [
      "",
      "ls",
      "ls -la",
      "sh -c id",
      "bash",
      "git-upload-archive '/x'",
      `git-upload-archive '/${id}'`,
      `git receive-pack '/${id}'`,
      `git-receive-pack`,
      `git-receive-pack-x '/${id}'`,
      `GIT-RECEIVE-PACK '/${id}'`,
      `scp -t '/${id}'`,
      `rsync --server . '/${id}'`,
      `toString '/${id}'`,
      `constructor '/${id}'`,
      `__proto__ '/${id}'`
    ])
      assert.strictEqual(refused(command), refusals.notGit, command)
  })

  it("refuses paths that are not exactly a project id", () => {
    for (const path of [
      "",
      "''",
      "'",
      `'/${id}`,
      `/${id}'`,
      `"/${id}"`,
      `'/../${id}'`,
      `'../${id}'`,
      `'/${id}/..'`,
      `'/${id}/'`,
      `'//${id}'`,
      `'/repos/${id}'`,
      `'/etc/passwd'`,
      `'~/${id}'`,
      `'~git/${id}'`,
      `'/${id}.git/'`,
      `'/${id}.GIT'`,
      `'/${id}.git.git'`,
      `'/${id}'; rm -rf /`,
      `'/${id}';id`,
      `'/${id}'\\''x'`,
      `'/${id}$(id)'`,
      `'/$(id)'`,
      `'/${id}\`id\`'`,
      `'/${id}|cat'`,
      `'/${id}&&id'`,
      `'/${id}'\n`,
      `'/${id}\n'`,
      `'/${id}\0'`,
      `'/${id} '`,
      ` '/${id}'`,
      `'/${id}' `,
      `'/${id}' '/${id}'`,
      `'/${id.slice(0, -1)}'`,
      `'/${id}0'`,
      `'/${id.replace(/-/g, "")}'`,
      `'/${id.replace("a", "g")}'`,
      `'/*'`,
      `'/${id.slice(0, 8)}*'`,
      "'-/x'",
      "'--help'",
      `'--upload-pack=/bin/sh'`
    ])
      assert.isTrue(Either.isLeft(parse(`git-receive-pack ${path}`)), path)
  })

  it("refuses whitespace other than the single separating space", () => {
    for (const command of [
      `git-receive-pack  '/${id}'`,
      `git-receive-pack\t'/${id}'`,
      `\tgit-receive-pack '/${id}'`,
      ` git-receive-pack '/${id}'`,
      `git-receive-pack\n'/${id}'`
    ])
      assert.isTrue(Either.isLeft(parse(command)), JSON.stringify(command))
  })

  it("refuses overlong commands before looking at them", () => {
    assert.strictEqual(refused(`git-receive-pack '/${id}'${" ".repeat(200)}`), refusals.tooLong)
    assert.strictEqual(refused("x".repeat(100_000)), refusals.tooLong)
  })

  it("accepts only GIT_PROTOCOL, in git's syntax, as environment", () => {
    assert.isTrue(acceptEnv("GIT_PROTOCOL", "version=2"))
    assert.isTrue(acceptEnv("GIT_PROTOCOL", "version=2:object-format=sha1"))
    assert.isFalse(acceptEnv("GIT_PROTOCOL", ""))
    assert.isFalse(acceptEnv("GIT_PROTOCOL", "version=2; id"))
    assert.isFalse(acceptEnv("GIT_PROTOCOL", "version=2\n"))
    assert.isFalse(acceptEnv("GIT_PROTOCOL", "x".repeat(65)))
    for (const name of [
      "LANG",
      "LC_ALL",
      "PATH",
      "LD_PRELOAD",
      "GIT_DIR",
      "GIT_EXEC_PATH",
      "HOME",
      "git_protocol"
    ])
      assert.isFalse(acceptEnv(name, "version=2"), name)
  })
})

describe("ref updates between two snapshots", () => {
  const c = (n: number) => String(n).repeat(40) as CommitSha
  const snapshot = (entries: Record<string, [object: string, commit: CommitSha]>): RefSnapshot =>
    new Map(Object.entries(entries).map(([ref, [object, commit]]) => [ref, { object, commit }]))

  it("reports created, moved and deleted refs with git's null for a missing side", () => {
    const before = snapshot({
      "refs/heads/main": [c(1), c(1)],
      "refs/heads/old": [c(2), c(2)],
      "refs/tags/v1": [c(3), c(1)],
      "refs/heads/same": [c(4), c(4)]
    })
    const after = snapshot({
      "refs/heads/main": [c(5), c(5)],
      "refs/heads/new": [c(6), c(6)],
      "refs/tags/v1": [c(7), c(1)],
      "refs/heads/same": [c(4), c(4)]
    })
    assert.deepStrictEqual(refUpdates(before, after), [
      { ref: "refs/heads/main", before: c(1), after: c(5) },
      { ref: "refs/heads/new", before: null, after: c(6) },
      // A re-pointed annotated tag changed even though it peels to the same commit.
      { ref: "refs/tags/v1", before: c(1), after: c(1) },
      { ref: "refs/heads/old", before: c(2), after: null }
    ])
    assert.deepStrictEqual(refUpdates(after, after), [])
  })
})
