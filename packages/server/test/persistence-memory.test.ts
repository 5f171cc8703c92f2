/** The persistence suite on the in-memory store that `@paas/core/testing` ships. */
import { InMemoryPersistence } from "@paas/core/testing"
import { persistenceSuite } from "./persistence-suite.js"

persistenceSuite("InMemoryPersistence", InMemoryPersistence.layer)
