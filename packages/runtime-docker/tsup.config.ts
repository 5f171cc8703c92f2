import { defineConfig } from "tsup"
import { packageOptions } from "../../tsup.config.base.js"

export default defineConfig(packageOptions(import.meta.dirname))
