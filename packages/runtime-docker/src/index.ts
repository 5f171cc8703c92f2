/** @paas/runtime-docker: its modules arrive in the next commits. */
export {}
