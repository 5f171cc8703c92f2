// Reading Linux's /proc: process trees, cpu ticks, resident memory, start times. Everything here is
// synchronous on purpose: /proc is served from kernel memory, each read takes microseconds, and a
// consistent snapshot is easier to reason about when nothing else runs in between.
import { readdirSync, readFileSync } from "node:fs"

// USER_HZ is part of the kernel's user-space ABI and 100 on every architecture Linux supports
// today, so it is not worth a `getconf` call.
/** USER_HZ: the unit of the tick counts in /proc/<pid>/stat. */
export const CLOCK_TICKS_PER_SECOND = 100

/** The fields of /proc/<pid>/stat that we use. */
export interface ProcStat {
  readonly pid: number
  readonly state: string
  readonly ppid: number
  readonly pgrp: number
  /** utime + stime + cutime + cstime: reaped children's time stays counted, so sums never go back. */
  readonly ticks: number
  /** Clock ticks after boot at which the process started: with the pid, it names a process uniquely. */
  readonly startTime: string
}

/** Parses one /proc/<pid>/stat line; the command name may hold spaces and parentheses. */
export const parseStat = (pid: number, text: string): ProcStat | undefined => {
  const close = text.lastIndexOf(")")
  if (close < 0) return undefined
  // After ") " come the fields from `state` (field 3) onwards.
  const f = text.slice(close + 2).split(" ")
  if (f.length < 20) return undefined
  const num = (i: number) => Number(f[i - 3])
  return {
    pid,
    state: f[0]!,
    ppid: num(4),
    pgrp: num(5),
    ticks: num(14) + num(15) + num(16) + num(17),
    startTime: f[22 - 3]!
  }
}

/** The stat of one process, or undefined when it does not exist (any more). */
export const readStat = (pid: number): ProcStat | undefined => {
  try {
    return parseStat(pid, readFileSync(`/proc/${pid}/stat`, "latin1"))
  } catch {
    return undefined
  }
}

/** The stats of every process visible in /proc. */
export const readAllStats = (): Array<ProcStat> => {
  const out: Array<ProcStat> = []
  let entries: Array<string>
  try {
    entries = readdirSync("/proc")
  } catch {
    return out
  }
  for (const name of entries) {
    const c = name.charCodeAt(0)
    if (c < 48 || c > 57) continue
    const stat = readStat(Number(name))
    if (stat !== undefined) out.push(stat)
  }
  return out
}

/**
 * The live processes of an instance: its process group (an app started detached leads its own
 * group) plus any descendant of the leader that moved to a group of its own. Zombies are left out:
 * they use no cpu or memory and are gone once reaped.
 */
export const processTree = (leader: number, all: ReadonlyArray<ProcStat> = readAllStats()) => {
  const children = new Map<number, Array<ProcStat>>()
  const members = new Map<number, ProcStat>()
  for (const p of all) {
    if (p.state === "Z") continue
    if (p.pgrp === leader) members.set(p.pid, p)
    const list = children.get(p.ppid)
    if (list) list.push(p)
    else children.set(p.ppid, [p])
  }
  // Walk the tree from the leader (and from every group member). Each process is queued at most
  // once as someone's child, so the queue is bounded by twice the number of processes.
  const queue = [leader, ...members.keys()]
  const seen = new Set<number>()
  for (let i = 0; i < queue.length; i++) {
    const pid = queue[i]!
    if (seen.has(pid)) continue
    seen.add(pid)
    for (const child of children.get(pid) ?? []) {
      members.set(child.pid, child)
      queue.push(child.pid)
    }
  }
  const self = all.find((p) => p.pid === leader && p.state !== "Z")
  if (self !== undefined) members.set(leader, self)
  return [...members.values()]
}

/** The live (non-zombie) members of a process group. */
export const groupMembers = (pgid: number): Array<ProcStat> =>
  readAllStats().filter((p) => p.pgrp === pgid && p.state !== "Z")

/** VmRSS of a process in bytes; 0 when it is gone or a kernel thread. */
export const rssBytes = (pid: number): number => {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "latin1")
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(text)
    return match ? Number(match[1]) * 1024 : 0
  } catch {
    return 0
  }
}

/** The NUL-separated argv of a process, or undefined when it is gone. */
export const readCmdline = (pid: number): Array<string> | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, "utf8")
    return text.split("\0").filter((s, i, all) => s !== "" || i < all.length - 1)
  } catch {
    return undefined
  }
}

/** This boot's id: start times only compare within one boot. */
export const bootId = (): string => {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "latin1").trim()
  } catch {
    return "unknown"
  }
}
