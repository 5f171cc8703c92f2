/** @paas/builder: the `paas.yaml` deployment file and the ImageBuilders. */
export * as DeploymentFile from "./DeploymentFile.js"
export * as DockerBuilder from "./DockerBuilder.js"
export * as LocalBuilder from "./LocalBuilder.js"
