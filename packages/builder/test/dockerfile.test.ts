// The pure parts of the Docker builder, without an engine: generated Dockerfiles, the ARGs a
// Dockerfile declares, `.dockerignore` matching, pack's argument vector and the option checks.
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as DockerBuilder from "../src/DockerBuilder.js"
import type { AppPlan } from "../src/internal/detect.js"
import { limitOptions } from "../src/internal/dockerBuilder.js"
import { declaredArgs, execForm, generate, isImageReference, withLabels } from "../src/internal/dockerfile.js"
import * as dockerignore from "../src/internal/dockerignore.js"
import { packArgv } from "../src/internal/pack.js"

const bases = { node: "node:20-slim", static: "busybox:1.36", procfile: "proc:1", command: "cmd:1" }

const plan = (overrides: Partial<AppPlan>): AppPlan => ({
  kind: "node",
  method: "auto",
  install: null,
  build: null,
  start: null,
  output: null,
  notes: [],
  ...overrides
})

const text = (p: AppPlan, args: ReadonlyArray<string> = []) => {
  const result = generate(p, { bases, args })
  assert.isTrue(Either.isRight(result), JSON.stringify(result))
  return (result as Either.Right<string, string>).right.trimEnd().split("\n")
}

describe("generated Dockerfiles", () => {
  it("a Node app: its commands as JSON arrays, npm's settings and the app's variables as ARGs", () => {
    const lines = text(
      plan({ install: ["npm", "ci"], build: ["npm", "run", "build"], start: ["node", "server.js"] }),
      ["GREETING", "CI", "not valid", "$(evil)"]
    )
    assert.deepStrictEqual(lines.slice(1), [
      "FROM node:20-slim",
      "WORKDIR /app",
      "COPY app /app",
      "ARG CI=true",
      "ARG npm_config_update_notifier=false",
      "ARG npm_config_fund=false",
      "ARG npm_config_audit=false",
      "ARG GREETING",
      'RUN ["npm","ci"]',
      'RUN ["npm","run","build"]',
      "ENV PORT=8080",
      "EXPOSE 8080",
      'CMD ["node","server.js"]'
    ])
  })

  it("repository content never becomes Dockerfile syntax", () => {
    // A start command (from a Procfile, say) full of what a shell or Dockerfile would read.
    const start: readonly [string, ...Array<string>] = [
      "node",
      "a b",
      '"; rm -rf /',
      "$HOME",
      "line\nFROM evil",
      "é ✓ \u2028",
      "back\\"
    ]
    const lines = text(plan({ kind: "procfile", start }))
    assert.strictEqual(lines[1], "FROM proc:1")
    const cmd = lines.at(-1)!
    assert.isTrue(cmd.startsWith("CMD ["))
    assert.isTrue(/^[\x20-\x7e]*$/.test(cmd), cmd)
    assert.deepStrictEqual(JSON.parse(cmd.slice(4)), start)
    assert.strictEqual(execForm(["é"]), '["\\u00e9"]')
    // Output folders go into COPY, which expands variables: only plain paths.
    const bad = generate(plan({ kind: "static", output: "$HOME/site" }), { bases, args: [] })
    assert.isTrue(Either.isLeft(bad))
    assert.include((bad as Either.Left<string, string>).left, "a generated Dockerfile needs a plain path")
  })

  it("static sites: the folder straight onto the static base, or a build stage first", () => {
    assert.deepStrictEqual(text(plan({ kind: "static", output: "public" })).slice(1, 3), [
      "FROM busybox:1.36",
      'COPY ["app/public","/site"]'
    ])
    const built = text(plan({ kind: "static", install: ["npm", "install"], build: ["npm", "run", "build"] }))
    assert.strictEqual(built[1], "FROM node:20-slim AS build")
    assert.include(
      built,
      'RUN ["/bin/sh","-c","if [ -d dist ]; then cp -R dist /site; else cp -R . /site; fi"]'
    )
    assert.include(built, "FROM busybox:1.36")
    assert.include(built, 'COPY --from=build ["/site","/site"]')
    const out = text(plan({ kind: "static", build: ["make"], output: "out" }))
    assert.include(out, 'COPY --from=build ["/app/out","/site"]')
  })

  it("appends the labels as one LABEL instruction, unless the Dockerfile makes that unsafe", () => {
    const labels = { "paas.project": "p-1", "paas.commit": "abc123" }
    assert.strictEqual(
      withLabels('FROM scratch\nCMD ["x"]\n\n', labels),
      'FROM scratch\nCMD ["x"]\nLABEL paas.project="p-1" paas.commit="abc123"\n'
    )
    assert.isUndefined(withLabels("# escape=`\nFROM scratch\n", labels))
    assert.isUndefined(withLabels("FROM scratch\nRUN echo \\\n", labels))
    assert.isUndefined(withLabels("FROM scratch\n", { "paas.project": "$HOME" }))
    assert.isDefined(withLabels("# syntax=docker/dockerfile:1\nFROM scratch\n# escape=`\n", labels))
  })

  it("reads the ARGs a Dockerfile declares", () => {
    const names = declaredArgs(
      [
        "FROM scratch",
        "ARG A",
        "  arg b=1",
        "ARG C=x D",
        "ARG E=1 \\",
        "  F=2",
        "RUN echo ARG G",
        "ARG 9bad",
        ""
      ].join("\n")
    )
    assert.deepStrictEqual([...names].sort(), ["A", "C", "D", "E", "F", "b"])
  })

  it("accepts image references and refuses anything a FROM line would read as more", () => {
    for (const ok of ["node:20-slim", "registry.local:5000/team/node:20@sha256:abc", "busybox"])
      assert.isTrue(isImageReference(ok), ok)
    for (const bad of ["node 20", "node:20\nRUN x", "", "-x", "a//b", "$BASE"])
      assert.isFalse(isImageReference(bad), bad)
  })
})

describe(".dockerignore", () => {
  const ignored = (text: string, path: string) => dockerignore.isIgnored(dockerignore.parse(text), path)

  it("reads patterns as the docker CLI does", () => {
    const file =
      "# comment\n\n node_modules \n*.log\n/secret.txt\n**/*.tmp\ndocs/**\n!docs/keep.md\nsrc/?.c\n[ab].txt\n"
    for (const path of [
      "node_modules",
      "node_modules/x/index.js",
      "app.log",
      "secret.txt",
      "a.tmp",
      "deep/er/b.tmp",
      "docs/a.md",
      "src/x.c",
      "a.txt"
    ])
      assert.isTrue(ignored(file, path), path)
    for (const path of [
      "sub/app.log",
      "sub/secret.txt",
      "docs/keep.md",
      "src/xy.c",
      "c.txt",
      "index.html",
      "docs"
    ])
      assert.isFalse(ignored(file, path), path)
    assert.isFalse(ignored("", "anything"))
    assert.isTrue(ignored("dir\n", "dir/deep/file"))
    assert.isTrue(ignored("*\n!index.html\n", "style.css"))
    assert.isFalse(ignored("*\n!index.html\n", "index.html"))
  })
})

describe("pack and options", () => {
  it("pack's argument vector: every value in --flag=value form", () => {
    assert.deepStrictEqual(
      packArgv(
        { command: "pack", builder: undefined, pullPolicy: "never", network: "paas-build" },
        {
          image: "paas/p:buildpacks",
          path: "/w/source",
          builder: "--publish",
          buildpacks: ["a", "b"],
          envNames: ["X"]
        }
      ),
      [
        "build",
        "paas/p:buildpacks",
        "--path=/w/source",
        "--builder=--publish",
        "--buildpack=a",
        "--buildpack=b",
        "--env=X",
        "--pull-policy=never",
        "--network=paas-build",
        "--no-color"
      ]
    )
  })

  it.effect("options: defaults, limits as the engine takes them, and a message naming a bad option", () =>
    Effect.gen(function* () {
      const settings = yield* DockerBuilder.settingsOf({ baseImages: { static: "registry.local/busybox:1" } })
      assert.strictEqual(settings.imagePrefix, "paas")
      assert.strictEqual(settings.labelPrefix, "paas")
      assert.deepStrictEqual(settings.baseImages, {
        ...DockerBuilder.defaultBaseImages,
        static: "registry.local/busybox:1"
      })
      assert.deepStrictEqual(limitOptions(settings.limits), {
        memory: 2 * 1024 * 1024 * 1024,
        memswap: 2 * 1024 * 1024 * 1024,
        cpuperiod: 100_000,
        cpuquota: 100_000
      })
      assert.deepStrictEqual(limitOptions({ memoryBytes: null, cpus: null }), {})
      assert.deepStrictEqual(limitOptions({ memoryBytes: null, cpus: 0.25 }), {
        cpuperiod: 100_000,
        cpuquota: 25_000
      })
      for (const [options, field] of [
        [{ imagePrefix: "UPPER" }, "imagePrefix"],
        [{ labelPrefix: "a b" }, "labelPrefix"],
        [{ limits: { memoryBytes: 1024 } }, "limits.memoryBytes"],
        [{ limits: { cpus: 0 } }, "limits.cpus"],
        [{ buildArgs: { "A-B": "x" } }, "buildArgs.A-B"],
        [{ baseImages: { node: "node 20" } }, "baseImages.node"]
      ] as const) {
        const error = yield* Effect.flip(DockerBuilder.settingsOf(options))
        assert.include(error.message, field)
      }
    })
  )
})
