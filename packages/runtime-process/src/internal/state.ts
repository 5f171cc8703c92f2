// The pids of running instances, kept in a file so that a server that crashed (and so never ran
// its finalizers) can kill what it left behind on its next start. A pid alone is not enough: it
// may have been reused by an unrelated process since, so each record carries the process's start
// time and the boot it belongs to, and only a process matching both is touched.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import * as Effect from "effect/Effect"
import { awaitGroupGone, signalGroup } from "./child.js"
import { bootId, readAllStats, readStat } from "./procfs.js"

/** One instance's process as recorded. */
export interface Recorded {
  readonly instanceId: string
  readonly appId: string
  readonly pid: number
  readonly startTime: string
  readonly argv: ReadonlyArray<string>
}

/** The file's content. */
export interface StateFile {
  readonly version: 1
  readonly bootId: string
  readonly processes: ReadonlyArray<Recorded>
}

/** Where the state file of a runtime root lives. */
export const statePath = (root: string) => join(root, "state.json")

/** The recorded processes; an absent or unreadable file records nothing. */
export const readState = (root: string): StateFile | undefined => {
  try {
    const parsed = JSON.parse(readFileSync(statePath(root), "utf8")) as Partial<StateFile>
    if (parsed.version !== 1 || !Array.isArray(parsed.processes) || typeof parsed.bootId !== "string")
      return undefined
    const processes = parsed.processes.filter(
      (p): p is Recorded =>
        typeof p === "object" &&
        p !== null &&
        Number.isSafeInteger(p.pid) &&
        p.pid > 1 &&
        typeof p.startTime === "string" &&
        typeof p.instanceId === "string"
    )
    return { version: 1, bootId: parsed.bootId, processes }
  } catch {
    return undefined
  }
}

/** Replaces the file atomically (write then rename), so a crash never leaves half a file. */
export const writeState = (root: string, processes: ReadonlyArray<Recorded>): void => {
  const path = statePath(root)
  mkdirSync(dirname(path), { recursive: true })
  const content: StateFile = { version: 1, bootId: bootId(), processes }
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 })
  renameSync(tmp, path)
}

/**
 * The process groups of a recorded instance that are still alive and provably ours: the leader
 * with the recorded start time, or, once the leader is gone, the members still in its group (the
 * kernel does not hand out a pid again while a group of that id exists, so they cannot be
 * someone else's). Members must have started no earlier than the leader.
 */
const leftoverGroup = (record: Recorded): boolean => {
  const leader = readStat(record.pid)
  if (leader !== undefined) return leader.startTime === record.startTime && leader.pgrp === record.pid
  return readAllStats().some(
    (p) => p.pgrp === record.pid && p.state !== "Z" && BigInt(p.startTime) >= BigInt(record.startTime)
  )
}

/** What the clean-up found. */
export interface Reaped {
  readonly killed: ReadonlyArray<Recorded>
  readonly skipped: ReadonlyArray<Recorded>
}

/** Kills the leftovers of an earlier run recorded under `root`, then clears the record. */
export const reapLeftovers = (root: string, grace: number): Effect.Effect<Reaped> =>
  Effect.gen(function* () {
    const state = readState(root)
    if (state === undefined || state.processes.length === 0) return { killed: [], skipped: [] }
    // After a reboot every recorded process is gone, and start times mean nothing any more.
    if (state.bootId !== bootId()) {
      writeState(root, [])
      return { killed: [], skipped: state.processes }
    }
    const killed: Array<Recorded> = []
    const skipped: Array<Recorded> = []
    for (const record of state.processes) {
      if (leftoverGroup(record)) killed.push(record)
      else skipped.push(record)
    }
    for (const record of killed) signalGroup(record.pid, "SIGTERM")
    yield* Effect.forEach(
      killed,
      (record) =>
        Effect.flatMap(awaitGroupGone(record.pid, grace), (gone) =>
          gone
            ? Effect.void
            : Effect.zipRight(
                Effect.sync(() => signalGroup(record.pid, "SIGKILL")),
                awaitGroupGone(record.pid, 5_000)
              )
        ),
      { concurrency: "unbounded", discard: true }
    )
    writeState(root, [])
    return { killed, skipped }
  })
