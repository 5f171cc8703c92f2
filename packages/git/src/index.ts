/** @paas/git: bare git repositories on disk and the SSH git server. */
export * as GitRepoStore from "./GitRepoStore.js"
export * as GitSshServer from "./GitSshServer.js"
