/**
 * Deployments: the desired state of a project's app (which release, running or stopped), and what
 * was last observed of it. The reconciler moves the observed state towards the desired one.
 */
import * as Schema from "effect/Schema"
import { ProjectId } from "./Project.js"
import { ReleaseId } from "./Release.js"

/** What the owner wants: the app up, or down. */
export const DesiredState = Schema.Literal("running", "stopped")
/** What the owner wants: the app up, or down. */
export type DesiredState = typeof DesiredState.Type

/** What the platform last saw of the app. */
export const AppStatus = Schema.Literal("unknown", "starting", "running", "stopping", "stopped", "failed")
/** What the platform last saw of the app. */
export type AppStatus = typeof AppStatus.Type

/** One per project that has ever been deployed. */
export class Deployment extends Schema.Class<Deployment>("@paas/core/Deployment")({
  projectId: ProjectId,
  releaseId: Schema.NullOr(ReleaseId),
  desired: DesiredState,
  status: AppStatus,
  /** Why the last attempt failed, or a note on the current state. */
  message: Schema.NullOr(Schema.String),
  /** The spec the last failed attempt tried, so a broken release is not retried on every pass. */
  failedSpec: Schema.NullOr(Schema.String),
  updatedAt: Schema.DateFromSelf
}) {}

/** The statuses of the PaaSTech API, which has no "failed". */
export type PaasTechStatus =
  | "STATUS_UNKNOWN"
  | "STATUS_STARTING"
  | "STATUS_RUNNING"
  | "STATUS_STOPPING"
  | "STATUS_STOPPED"

/** Maps an app status onto the PaaSTech statuses; a failed app with nothing serving is stopped. */
export const toPaasTechStatus = (status: AppStatus): PaasTechStatus => {
  switch (status) {
    case "unknown":
      return "STATUS_UNKNOWN"
    case "starting":
      return "STATUS_STARTING"
    case "running":
      return "STATUS_RUNNING"
    case "stopping":
      return "STATUS_STOPPING"
    case "stopped":
    case "failed":
      return "STATUS_STOPPED"
  }
}
