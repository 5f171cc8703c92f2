/** @paas/runtime-process: its modules arrive in the next commits. */
export {}
