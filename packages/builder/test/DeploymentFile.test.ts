import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { RunSettings } from "@paas/core/Release"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as DeploymentFile from "../src/DeploymentFile.js"
import { parseDuration, parseSize } from "../src/internal/units.js"

const errorLines = (text: string) =>
  Effect.map(Effect.flip(DeploymentFile.parse(text)), (e) => {
    assert.strictEqual(e._tag, "DeploymentFileError")
    return e.lines
  })

/** The one line an invalid file gives. */
const errorLine = (text: string) =>
  Effect.map(errorLines(text), (lines) => {
    assert.lengthOf(lines, 1, lines.join("\n"))
    return lines[0]!
  })

describe("DeploymentFile", () => {
  it.effect("decodes every key of the contract and maps run and env onto RunSettings", () =>
    Effect.gen(function* () {
      const file = yield* DeploymentFile.parse(`
build:
  method: auto            # auto | dockerfile | buildpacks | command | static
  dockerfile: Dockerfile
  context: .
  command: npm run build
  output: dist
  buildpacks: { builder: "paketobuildpacks/builder-jammy-base", buildpack: "paketo-buildpacks/nodejs", env: { BP_NODE_VERSION: 20 } }
run:
  command: npm start
  port: 8080
  healthcheck: { path: /healthz, timeout: 45s }
  memory: 256M
  cpus: 0.5
  replicas: 3
env:
  KEY: value
  COUNT: 3
  ENABLED: true
`)
      assert.deepStrictEqual(file.build?.command, ["npm", "run", "build"])
      assert.deepStrictEqual(file.build?.buildpacks?.buildpack, ["paketo-buildpacks/nodejs"])
      assert.deepStrictEqual(file.build?.buildpacks?.env, { BP_NODE_VERSION: "20" })
      assert.strictEqual(file.build?.output, "dist")
      const run = DeploymentFile.toRunSettings(file)
      assert.deepStrictEqual(
        run,
        new RunSettings({
          port: 8080,
          command: ["npm", "start"],
          healthcheckPath: "/healthz",
          healthcheckTimeoutMs: 45_000,
          memoryBytes: 256 * 1024 * 1024,
          cpus: 0.5,
          replicas: 3,
          env: { KEY: "value", COUNT: "3", ENABLED: "true" }
        })
      )
      // A builder's resolved start command wins over run.command.
      assert.deepStrictEqual(DeploymentFile.toRunSettings(file, ["node", "server.js"]).command, [
        "node",
        "server.js"
      ])
    })
  )

  it.effect("an empty file, and keys left empty, mean the defaults", () =>
    Effect.gen(function* () {
      for (const text of ["", "# nothing yet\n", "build:\nrun:\n  port:\n  healthcheck:\n"]) {
        const file = yield* DeploymentFile.parse(text)
        assert.deepStrictEqual(DeploymentFile.toRunSettings(file), RunSettings.defaults, JSON.stringify(text))
      }
    })
  )

  it.effect("run.readonly asks for a read-only root filesystem; anything but a boolean is refused", () =>
    Effect.gen(function* () {
      const on = yield* DeploymentFile.parse("run:\n  readonly: true\n")
      assert.isTrue(DeploymentFile.toRunSettings(on).readOnlyRootFilesystem)
      const off = yield* DeploymentFile.parse("run:\n  readonly: false\n")
      assert.isFalse(DeploymentFile.toRunSettings(off).readOnlyRootFilesystem)
      assert.isFalse(DeploymentFile.toRunSettings(yield* DeploymentFile.parse("")).readOnlyRootFilesystem)
      assert.strictEqual(
        yield* errorLine("run:\n  readonly: yes\n"),
        'paas.yaml line 2: run.readonly: expected true or false, got "yes"'
      )
    })
  )

  it.effect("takes commands as strings split with quotes, or as lists", () =>
    Effect.gen(function* () {
      const file = yield* DeploymentFile.parse(
        `run:\n  command: node server.js --name "my app" --motto 'it works'\nbuild:\n  command: [sh, -c, "npm run build && cp -r public dist"]\n`
      )
      assert.deepStrictEqual(file.run?.command, [
        "node",
        "server.js",
        "--name",
        "my app",
        "--motto",
        "it works"
      ])
      assert.deepStrictEqual(file.build?.command, ["sh", "-c", "npm run build && cp -r public dist"])
    })
  )

  it.effect("names the line and the field of a wrong value", () =>
    Effect.gen(function* () {
      const text = `# paas.yaml
build:
  method: auto
run:
  command: npm start
  healthcheck: { path: / }
  port: http
`
      assert.strictEqual(
        yield* errorLine(text),
        'paas.yaml line 7: run.port: expected an integer from 1 to 65535, got "http"'
      )
    })
  )

  it.effect("gives one message per kind of mistake", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [string, string]> = [
        [
          "run:\n  prot: 80\n",
          "paas.yaml line 2: run.prot: unknown key (known keys: command, port, healthcheck"
        ],
        ["servers: 2\n", "paas.yaml line 1: servers: unknown key (known keys: build, run, env)"],
        [
          "run:\n  port: 70000\n",
          "paas.yaml line 2: run.port: expected an integer from 1 to 65535, got 70000"
        ],
        ["run:\n  port: 80.5\n", "paas.yaml line 2: run.port: expected an integer from 1 to 65535, got 80.5"],
        ["run:\n  replicas: 0\n", "paas.yaml line 2: run.replicas: expected an integer from 1 to 32, got 0"],
        [
          "run:\n  cpus: none\n",
          'paas.yaml line 2: run.cpus: expected a positive number of CPUs, such as 0.5 or 2, got "none"'
        ],
        [
          "run:\n  memory: lots\n",
          'paas.yaml line 2: run.memory: expected a size of at least 6M, such as 256M, 1G, 512Mi or a number of bytes, got "lots"'
        ],
        ["run:\n  memory: 128k\n", "paas.yaml line 2: run.memory: expected a size of at least 6M"],
        [
          "run:\n  healthcheck:\n    timeout: soon\n",
          'paas.yaml line 3: run.healthcheck.timeout: expected a duration from 1ms to 1h, such as 30s, 2m or 500ms, got "soon"'
        ],
        [
          "run:\n  healthcheck:\n    path: health\n",
          'paas.yaml line 3: run.healthcheck.path: expected a path starting with /, such as /healthz, got "health"'
        ],
        [
          "build:\n  method: docker\n",
          'paas.yaml line 2: build.method: expected one of auto, dockerfile, buildpacks, command, static, got "docker"'
        ],
        [
          "build:\n  output: ../../etc\n",
          'paas.yaml line 2: build.output: expected a relative path inside the repository, such as dist, got "../../etc"'
        ],
        [
          "build:\n  dockerfile: /etc/passwd\n",
          "paas.yaml line 2: build.dockerfile: expected a relative path inside the repository"
        ],
        [
          "run:\n  command: node server.js --port $PORT\n",
          'paas.yaml line 2: run.command: "$" is shell syntax and commands run without a shell'
        ],
        ["run:\n  command: 'node \"oops'\n", "paas.yaml line 2: run.command: unterminated double quote"],
        ["run:\n  command: []\n", "paas.yaml line 2: run.command: the command is empty"],
        [
          "run:\n  command: 42\n",
          'paas.yaml line 2: run.command: expected a command: a string such as "npm start" or a list such as [node, server.js], got 42'
        ],
        ["run: 5\n", "paas.yaml line 1: run: expected a mapping, got 5"],
        ["- just\n- a list\n", "paas.yaml line 1: expected a mapping, got a list"],
        ["env:\n  9LIVES: x\n", 'paas.yaml line 2: env["9LIVES"]: invalid key: expected a variable name'],
        [
          "env:\n  EMPTY:\n",
          "paas.yaml line 2: env.EMPTY: expected a string (quote it to keep it exactly as written), got nothing"
        ],
        [
          "env:\n  NESTED: { a: 1 }\n",
          "paas.yaml line 2: env.NESTED: expected a string (quote it to keep it exactly as written), got a mapping"
        ],
        ["run:\n  port: 1\n  port: 2\n", "paas.yaml line 3: Map keys must be unique"],
        ["run: [\n", "paas.yaml line 2: Flow sequence"],
        ["a: 1\n---\nb: 2\n", "paas.yaml line 2: "]
      ]
      for (const [text, expected] of cases) {
        const line = yield* errorLine(text)
        assert.isTrue(
          line.startsWith(expected),
          `${JSON.stringify(text)}\n  gave:     ${line}\n  expected: ${expected}`
        )
      }
    })
  )

  it.effect("reports every problem, in line order, and sums them up in the message", () =>
    Effect.gen(function* () {
      const text = "env:\n  A: [1]\nrun:\n  port: x\n  cpus: 0\n"
      const error = yield* Effect.flip(DeploymentFile.parse(text))
      assert.deepStrictEqual(
        error.issues.map((i) => [i.line, i.path]),
        [
          [2, "env.A"],
          [4, "run.port"],
          [5, "run.cpus"]
        ]
      )
      assert.strictEqual(error.message, `${error.lines[0]} (and 2 more)`)
    })
  )

  it.effect("refuses alias bombs and oversized files", () =>
    Effect.gen(function* () {
      const bomb = ["a: &a [x, x, x, x, x, x, x, x]"]
      for (const [i, name] of ["b", "c", "d", "e", "f", "g", "h"].entries()) {
        const prev = String.fromCharCode(97 + i)
        bomb.push(
          `${name}: &${name} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`
        )
      }
      assert.include(yield* errorLine(`${bomb.join("\n")}\n`), "paas.yaml: Excessive alias count")
      const big = yield* errorLine(`env:\n  A: "${"x".repeat(70_000)}"\n`)
      assert.include(big, "larger than 64 KiB")
    })
  )

  it("reads sizes and durations in every documented form", () => {
    const MiB = 1024 * 1024
    for (const [text, bytes] of [
      ["256M", 256 * MiB],
      ["256m", 256 * MiB],
      ["512Mi", 512 * MiB],
      ["512MiB", 512 * MiB],
      ["1G", 1024 * MiB],
      ["1.5GiB", 1536 * MiB],
      ["128k", 128 * 1024],
      ["100MB", 100 * MiB],
      ["4096", 4096],
      ["10 M", 10 * MiB]
    ] as const)
      assert.deepStrictEqual(parseSize(text), Option.some(bytes), text)
    assert.deepStrictEqual(parseSize(1_000_000), Option.some(1_000_000))
    for (const bad of ["", "M", "-1M", "1X", "1.2.3M", "1 G B"])
      assert.isTrue(Option.isNone(parseSize(bad)), bad)

    for (const [text, ms] of [
      ["30s", 30_000],
      ["2m", 120_000],
      ["500ms", 500],
      ["1m30s", 90_000],
      ["1h", 3_600_000],
      ["1.5s", 1_500]
    ] as const)
      assert.deepStrictEqual(parseDuration(text), Option.some(ms), text)
    assert.deepStrictEqual(parseDuration(30), Option.some(30_000))
    for (const bad of ["", "30", "s", "30 s", "1d", "-1s"])
      assert.isTrue(Option.isNone(parseDuration(bad)), bad)
  })

  it("publishes the JSON Schema the code generates", () => {
    const committed = readFileSync(new URL("../paas.schema.json", import.meta.url), "utf8")
    assert.strictEqual(
      committed,
      DeploymentFile.jsonSchemaText(),
      "paas.schema.json is stale: regenerate it as the package README says"
    )
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
    assert.strictEqual(pkg.exports["./paas.schema.json"], "./paas.schema.json")
    assert.include(pkg.files, "paas.schema.json")
    const schema = DeploymentFile.jsonSchema() as {
      properties: Record<string, { properties: Record<string, unknown> }>
      additionalProperties: boolean
    }
    assert.isFalse(schema.additionalProperties)
    assert.hasAllKeys(schema.properties.run!.properties, [
      "command",
      "port",
      "healthcheck",
      "memory",
      "cpus",
      "replicas",
      "readonly"
    ])
    assert.hasAllKeys(schema.properties.build!.properties, [
      "method",
      "dockerfile",
      "context",
      "command",
      "output",
      "buildpacks"
    ])
  })
})
