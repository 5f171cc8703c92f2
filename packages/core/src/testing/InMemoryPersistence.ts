/**
 * Persistence in memory: the same rules as the SQL store (uniqueness, cascades, single-use tokens,
 * release numbering), for tests and for embedding without a database.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Build } from "../Build.js"
import { Deployment } from "../Deployment.js"
import { Conflict, NotFound } from "../Errors.js"
import { type DesiredApp, Persistence, type TokenKind } from "../Persistence.js"
import { Project, type ProjectId } from "../Project.js"
import { Release, type ReleaseId } from "../Release.js"
import type { SshKey } from "../SshKey.js"
import { User, type UserId } from "../User.js"

/** A fresh, empty store. */
export const make: Effect.Effect<Persistence["Type"]> = Effect.sync(() => {
  const users = new Map<UserId, { user: User; passwordHash: string; passwordSetAt?: Date }>()
  const tokens = new Map<string, { kind: TokenKind; userId: UserId; expiresAt: Date }>()
  const endedSessions = new Map<string, { userId: UserId; expiresAt: Date }>()
  const keys = new Map<string, SshKey>()
  const projects = new Map<ProjectId, Project>()
  const builds = new Map<string, Build>()
  const releases = new Map<ReleaseId, Release>()
  const deployments = new Map<ProjectId, Deployment>()

  const deleteProject = (id: ProjectId) => {
    projects.delete(id)
    deployments.delete(id)
    for (const [k, b] of builds) if (b.projectId === id) builds.delete(k)
    for (const [k, r] of releases) if (r.projectId === id) releases.delete(k)
  }
  // Newest first; insertion order breaks ties (callers reverse it first), as a sequence column would.
  const byNewest = <A extends { readonly createdAt: Date }>(a: A, b: A) =>
    b.createdAt.getTime() - a.createdAt.getTime()
  const desiredOf = (d: Deployment): DesiredApp => ({
    deployment: d,
    release: d.releaseId === null ? null : (releases.get(d.releaseId) ?? null)
  })
  const notFound = (resource: NotFound["resource"], id: string) => Effect.fail(new NotFound({ resource, id }))

  return Persistence.of({
    users: {
      insert: (user, passwordHash) =>
        Effect.suspend(() => {
          for (const { user: u } of users.values()) {
            if (u.username === user.username)
              return Effect.fail(new Conflict({ resource: "user", message: "username is already taken" }))
            if (u.email.toLowerCase() === user.email.toLowerCase())
              return Effect.fail(new Conflict({ resource: "user", message: "email is already registered" }))
          }
          users.set(user.id, { user, passwordHash })
          return Effect.succeed(user)
        }),
      findById: (id) => Effect.sync(() => Option.fromNullable(users.get(id)?.user)),
      findByUsername: (username) =>
        Effect.sync(() =>
          Option.fromNullable([...users.values()].find((u) => u.user.username === username)?.user)
        ),
      findByEmail: (email) =>
        Effect.sync(() =>
          Option.fromNullable(
            [...users.values()].find((u) => u.user.email.toLowerCase() === email.toLowerCase())
          )
        ),
      list: () => Effect.sync(() => [...users.values()].map((u) => u.user)),
      confirmEmail: (id, at) =>
        Effect.suspend(() => {
          const entry = users.get(id)
          if (!entry) return notFound("user", id)
          users.set(id, { ...entry, user: new User({ ...entry.user, emailConfirmed: true, updatedAt: at }) })
          return Effect.void
        }),
      setPasswordHash: (id, passwordHash, at) =>
        Effect.suspend(() => {
          const entry = users.get(id)
          if (!entry) return notFound("user", id)
          users.set(id, { user: new User({ ...entry.user, updatedAt: at }), passwordHash, passwordSetAt: at })
          return Effect.void
        }),
      delete: (id) =>
        Effect.suspend(() => {
          if (!users.delete(id)) return notFound("user", id)
          for (const [k, t] of tokens) if (t.userId === id) tokens.delete(k)
          for (const [k, e] of endedSessions) if (e.userId === id) endedSessions.delete(k)
          for (const [k, key] of keys) if (key.userId === id) keys.delete(k)
          for (const p of [...projects.values()]) if (p.ownerId === id) deleteProject(p.id)
          return Effect.void
        })
    },
    tokens: {
      issue: (kind, userId, token, expiresAt) =>
        Effect.sync(() => {
          for (const [k, t] of tokens) if (t.kind === kind && t.userId === userId) tokens.delete(k)
          tokens.set(token, { kind, userId, expiresAt })
        }),
      consume: (kind, token, now) =>
        Effect.sync(() => {
          const t = tokens.get(token)
          if (!t || t.kind !== kind) return Option.none()
          tokens.delete(token)
          return t.expiresAt.getTime() > now.getTime() ? Option.some(t.userId) : Option.none()
        })
    },
    endedSessions: {
      add: (digest, userId, expiresAt, now) =>
        Effect.sync(() => {
          if (!users.has(userId)) return
          for (const [k, e] of endedSessions)
            if (e.expiresAt.getTime() <= now.getTime()) endedSessions.delete(k)
          if (expiresAt.getTime() > now.getTime()) endedSessions.set(digest, { userId, expiresAt })
        }),
      isEnded: ({ digest, userId, issuedAt }, now) =>
        Effect.sync(() => {
          if ((endedSessions.get(digest)?.expiresAt.getTime() ?? 0) > now.getTime()) return true
          const setAt = users.get(userId)?.passwordSetAt
          return setAt !== undefined && Math.floor(setAt.getTime() / 1000) * 1000 > issuedAt.getTime()
        })
    },
    keys: {
      insert: (key) =>
        Effect.suspend(() => {
          for (const k of keys.values())
            if (k.fingerprint === key.fingerprint)
              return Effect.fail(
                new Conflict({ resource: "sshKey", message: "this key is already registered" })
              )
          keys.set(key.id, key)
          return Effect.succeed(key)
        }),
      findById: (id) => Effect.sync(() => Option.fromNullable(keys.get(id))),
      findByFingerprint: (fp) =>
        Effect.sync(() => Option.fromNullable([...keys.values()].find((k) => k.fingerprint === fp))),
      listByUser: (userId) => Effect.sync(() => [...keys.values()].filter((k) => k.userId === userId)),
      list: () => Effect.sync(() => [...keys.values()]),
      delete: (id) => Effect.suspend(() => (keys.delete(id) ? Effect.void : notFound("sshKey", id)))
    },
    projects: {
      insert: (project) =>
        Effect.suspend(() => {
          for (const p of projects.values())
            if (p.ownerId === project.ownerId && p.name === project.name)
              return Effect.fail(
                new Conflict({ resource: "project", message: "you already have a project with this name" })
              )
          projects.set(project.id, project)
          return Effect.succeed(project)
        }),
      findById: (id) => Effect.sync(() => Option.fromNullable(projects.get(id))),
      listByOwner: (ownerId) =>
        Effect.sync(() => [...projects.values()].filter((p) => p.ownerId === ownerId)),
      list: () => Effect.sync(() => [...projects.values()]),
      updateConfig: (id, config, at) =>
        Effect.suspend(() => {
          const p = projects.get(id)
          if (!p) return notFound("project", id)
          const updated = new Project({ ...p, config, updatedAt: at })
          projects.set(id, updated)
          return Effect.succeed(updated)
        }),
      delete: (id) =>
        Effect.suspend(() => {
          if (!projects.has(id)) return notFound("project", id)
          deleteProject(id)
          return Effect.void
        })
    },
    builds: {
      insert: (build) =>
        Effect.sync(() => {
          builds.set(build.id, build)
          return build
        }),
      findById: (id) => Effect.sync(() => Option.fromNullable(builds.get(id))),
      listByProject: (projectId, limit) =>
        Effect.sync(() =>
          [...builds.values()]
            .filter((b) => b.projectId === projectId)
            .reverse()
            .sort(byNewest)
            .slice(0, limit)
        ),
      listByStatus: (statuses) =>
        Effect.sync(() => [...builds.values()].filter((b) => statuses.includes(b.status))),
      update: (id, update) =>
        Effect.suspend(() => {
          const b = builds.get(id)
          if (!b) return notFound("build", id)
          const updated = new Build({ ...b, ...update })
          builds.set(id, updated)
          return Effect.succeed(updated)
        }),
      appendLog: (id, text) =>
        Effect.sync(() => {
          const b = builds.get(id)
          if (b) builds.set(id, new Build({ ...b, log: b.log + text }))
        })
    },
    releases: {
      insert: (release) =>
        Effect.sync(() => {
          let number = 1
          for (const r of releases.values())
            if (r.projectId === release.projectId && r.number >= number) number = r.number + 1
          const stored = new Release({ ...release, number })
          releases.set(stored.id, stored)
          return stored
        }),
      findById: (id) => Effect.sync(() => Option.fromNullable(releases.get(id))),
      findByNumber: (projectId, number) =>
        Effect.sync(() =>
          Option.fromNullable(
            [...releases.values()].find((r) => r.projectId === projectId && r.number === number)
          )
        ),
      listByProject: (projectId) =>
        Effect.sync(() =>
          [...releases.values()].filter((r) => r.projectId === projectId).sort((a, b) => b.number - a.number)
        )
    },
    deployments: {
      find: (projectId) => Effect.sync(() => Option.fromNullable(deployments.get(projectId))),
      setDesired: (projectId, desired, at) =>
        Effect.sync(() => {
          const current = deployments.get(projectId)
          const next = new Deployment({
            projectId,
            releaseId: desired.releaseId,
            desired: desired.desired,
            status: current?.status ?? "unknown",
            message: current?.message ?? null,
            failedSpec: null,
            updatedAt: at
          })
          deployments.set(projectId, next)
          return next
        }),
      setObserved: (projectId, observed, at) =>
        Effect.sync(() => {
          const current = deployments.get(projectId)
          if (current) deployments.set(projectId, new Deployment({ ...current, ...observed, updatedAt: at }))
        }),
      listDesired: () => Effect.sync(() => [...deployments.values()].map(desiredOf)),
      findDesired: (projectId) =>
        Effect.sync(() => Option.map(Option.fromNullable(deployments.get(projectId)), desiredOf))
    }
  })
})

/** A fresh in-memory store as a layer. */
export const layer: Layer.Layer<Persistence> = Layer.effect(Persistence, make)
