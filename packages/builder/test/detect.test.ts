import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as DeploymentFile from "../src/DeploymentFile.js"
import {
  type AppPlan,
  detect,
  startFromScript,
  staticFolder,
  type TreeFacts
} from "../src/internal/detect.js"

const plan = (facts: TreeFacts): AppPlan => Either.getOrThrowWith(detect(facts), (e) => new Error(e))
const refusal = (facts: TreeFacts): string =>
  Either.match(detect(facts), { onLeft: (e) => e, onRight: () => "" })
const files = (...names: Array<string>) => new Set(names)
const yaml = (text: string) => Effect.runSync(DeploymentFile.parse(text))

describe("detect", () => {
  it("a Node app: npm install without a lockfile, npm run build when there is a build script, node for a plain start", () => {
    const p = plan({
      files: files("package.json", "server.js"),
      packageJson: {
        dependencies: { ms: "2.1.3" },
        scripts: { build: "tsc", start: "node server.js --port=80" }
      }
    })
    assert.strictEqual(p.kind, "node")
    assert.deepStrictEqual(p.install, ["npm", "install"])
    assert.deepStrictEqual(p.build, ["npm", "run", "build"])
    assert.deepStrictEqual(p.start, ["node", "server.js", "--port=80"])
  })

  it("npm ci with package-lock.json or npm-shrinkwrap.json; no build step without a build script", () => {
    for (const lock of ["package-lock.json", "npm-shrinkwrap.json"]) {
      const p = plan({
        files: files("package.json", lock),
        packageJson: { dependencies: { ms: "2.1.3" }, scripts: { start: "node ." } }
      })
      assert.deepStrictEqual(p.install, ["npm", "ci"])
      assert.isNull(p.build)
    }
  })

  it("start scripts that are more than a plain node command run through npm start", () => {
    for (const script of [
      "NODE_ENV=production node server.js",
      "node server.js && echo done",
      "next start",
      "node $ENTRY",
      "node 'a b.js'"
    ])
      assert.deepStrictEqual(startFromScript(script), ["npm", "start"], script)
    assert.deepStrictEqual(startFromScript("  node   dist/index.js  "), ["node", "dist/index.js"])
    assert.deepStrictEqual(startFromScript("node --enable-source-maps dist/main.js"), [
      "node",
      "--enable-source-maps",
      "dist/main.js"
    ])
  })

  it("without a start script, server.js starts as npm would start it", () => {
    const p = plan({ files: files("package.json", "server.js"), packageJson: { name: "x" } })
    assert.deepStrictEqual(p.start, ["node", "server.js"])
  })

  it("a folder with index.html is a static site served from the root", () => {
    const p = plan({ files: files("index.html", "style.css") })
    assert.strictEqual(p.kind, "static")
    assert.isNull(p.install)
    assert.isNull(p.start)
    assert.strictEqual(staticFolder(p, false), ".")
  })

  it("a package with a build script and nothing to start is a static site built into dist", () => {
    const p = plan({
      files: files("package.json", "package-lock.json"),
      packageJson: { devDependencies: { vite: "7.0.0" }, scripts: { build: "vite build" } }
    })
    assert.strictEqual(p.kind, "static")
    assert.deepStrictEqual(p.install, ["npm", "ci"])
    assert.deepStrictEqual(p.build, ["npm", "run", "build"])
    assert.strictEqual(staticFolder(p, true), "dist")
    assert.strictEqual(staticFolder(p, false), ".")
  })

  it("a package.json that declares no dependency and no install script installs nothing", () => {
    const p = plan({
      files: files("package.json", "server.js"),
      packageJson: { scripts: { start: "node server.js" } }
    })
    assert.isNull(p.install)
    assert.deepStrictEqual(p.start, ["node", "server.js"])
    assert.isTrue(p.notes.some((n) => n.includes("nothing to install")))
    const withPostinstall = plan({
      files: files("package.json"),
      packageJson: { scripts: { postinstall: "node setup.js", start: "node server.js" } }
    })
    assert.deepStrictEqual(withPostinstall.install, ["npm", "install"])
  })

  it("a Procfile's web: line is the start command, split with quotes, beside package.json's install and build", () => {
    const p = plan({
      files: files("Procfile", "package.json"),
      packageJson: { dependencies: { ms: "2.1.3" }, scripts: { build: "tsc", start: "node other.js" } },
      procfile: '# processes\nworker: node worker.js\nweb: node app.js --greeting "hello world"\n'
    })
    assert.strictEqual(p.kind, "procfile")
    assert.deepStrictEqual(p.start, ["node", "app.js", "--greeting", "hello world"])
    assert.deepStrictEqual(p.install, ["npm", "install"])
    assert.include(refusal({ files: files("Procfile"), procfile: "web: node app.js $PORT" }), "Procfile web:")
  })

  it("paas.yaml wins: run.command, build.command, static output", () => {
    const p = plan({
      files: files("package.json", "Procfile"),
      packageJson: { scripts: { build: "tsc", start: "node x.js" } },
      procfile: "web: node y.js",
      deployment: yaml("build:\n  command: node build.js --fast\nrun:\n  command: [node, z.js]\n")
    })
    assert.deepStrictEqual(p.build, ["node", "build.js", "--fast"])
    assert.deepStrictEqual(p.start, ["node", "z.js"])
    const s = plan({
      files: files("public"),
      deployment: yaml("build:\n  method: static\n  output: public\n")
    })
    assert.strictEqual(s.kind, "static")
    assert.strictEqual(staticFolder(s, true), "public")
  })

  it("method command runs build.command only and needs something to start", () => {
    const p = plan({
      files: files("package.json"),
      packageJson: { scripts: { start: "node a.js" } },
      deployment: yaml("build:\n  method: command\n  command: make\nrun:\n  command: ./app\n")
    })
    assert.strictEqual(p.kind, "command")
    assert.isNull(p.install)
    assert.deepStrictEqual(p.build, ["make"])
    assert.deepStrictEqual(p.start, ["./app"])
    assert.include(
      refusal({ files: files(), deployment: yaml("build:\n  method: command\n") }),
      "needs build.command"
    )
    assert.include(
      refusal({ files: files(), deployment: yaml("build:\n  method: command\n  command: make\n") }),
      "needs a start command"
    )
  })

  it("explains what is missing when nothing can be started", () => {
    assert.include(refusal({ files: files("README.md") }), "cannot tell how to start this app")
    assert.include(
      refusal({ files: files("package.json"), packageJson: [] }),
      "package.json must hold a JSON object"
    )
    assert.include(
      refusal({
        files: files("index.html"),
        deployment: yaml("build:\n  method: static\nrun:\n  command: x\n")
      }),
      "run.command cannot be used with build.method static"
    )
  })
})
