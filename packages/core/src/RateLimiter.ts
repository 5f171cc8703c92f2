/**
 * RateLimiter: counts failures per key (an account, a client address) in a sliding window and
 * refuses further attempts once a key reaches its limit, until its oldest failure leaves the window.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { RateLimited } from "./Errors.js"

/** A limit: at most `max` failures within `window`. */
export interface Limit {
  readonly key: string
  readonly max: number
  readonly window: Duration.DurationInput
}

/** Checks and records failures against limits. */
export class RateLimiter extends Context.Tag("@paas/core/RateLimiter")<
  RateLimiter,
  {
    /** Fails with RateLimited when any of the limits is reached. */
    readonly check: (limits: ReadonlyArray<Limit>) => Effect.Effect<void, RateLimited>
    /** Records one failure against each limit's key. */
    readonly fail: (limits: ReadonlyArray<Limit>) => Effect.Effect<void>
    /** Forgets a key's failures (e.g. an account after a successful login). */
    readonly reset: (key: string) => Effect.Effect<void>
  }
>() {}

const SWEEP_EVERY = 1_000

/** An in-process limiter; state lives as long as the layer (one server process). */
export const make: Effect.Effect<RateLimiter["Type"]> = Effect.sync(() => {
  // Per key, the times of recent failures, oldest first; never longer than the key's limit.
  const failures = new Map<string, Array<number>>()
  let failuresSinceSweep = 0
  let longestWindow = 0
  const recent = (limit: Limit, now: number) => {
    const since = now - Duration.toMillis(limit.window)
    const times = (failures.get(limit.key) ?? []).filter((t) => t > since)
    if (times.length === 0) failures.delete(limit.key)
    else failures.set(limit.key, times)
    return times
  }
  return RateLimiter.of({
    check: (limits) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        let retryAfterMs = 0
        for (const limit of limits) {
          const times = recent(limit, now)
          if (times.length >= limit.max) {
            const freeAt = times[times.length - limit.max]! + Duration.toMillis(limit.window)
            retryAfterMs = Math.max(retryAfterMs, freeAt - now)
          }
        }
        return retryAfterMs > 0
          ? Effect.fail(
              new RateLimited({
                retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
                message: "too many failed attempts, try again later"
              })
            )
          : Effect.void
      }),
    fail: (limits) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        // Keys are only pruned when read: sweep now and then, so that failures spread over many
        // accounts or addresses cannot grow the map without bound.
        if (++failuresSinceSweep >= SWEEP_EVERY) {
          failuresSinceSweep = 0
          for (const [key, times] of failures)
            if (times.length === 0 || times[times.length - 1]! <= now - longestWindow) failures.delete(key)
        }
        for (const limit of limits) {
          longestWindow = Math.max(longestWindow, Duration.toMillis(limit.window))
          const times = recent(limit, now)
          times.push(now)
          failures.set(limit.key, times.slice(-limit.max))
        }
      }),
    reset: (key) => Effect.sync(() => void failures.delete(key))
  })
})

/** The in-process limiter as a layer. */
export const layer: Layer.Layer<RateLimiter> = Layer.effect(RateLimiter, make)
