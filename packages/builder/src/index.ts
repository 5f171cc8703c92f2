/** @paas/builder: its modules arrive in the next commits. */
export {}
