import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { quote, show, split } from "../src/internal/words.js"

const words = (text: string) => Either.getOrThrowWith(split(text), (e) => new Error(e))
const refusal = (text: string) => Either.match(split(text), { onLeft: (e) => e, onRight: () => "accepted" })

describe("command splitting", () => {
  it("splits on whitespace, tabs and newlines", () => {
    assert.deepStrictEqual(words("npm start"), ["npm", "start"])
    assert.deepStrictEqual(words("  node\tserver.js \n --port=80 "), ["node", "server.js", "--port=80"])
  })

  it("keeps quoted text as one word, without the quotes", () => {
    assert.deepStrictEqual(words(`node app.js --greeting "hello world" 'it''s'`), [
      "node",
      "app.js",
      "--greeting",
      "hello world",
      "its"
    ])
    assert.deepStrictEqual(words(`a"b c"d`), ["ab cd"])
    assert.deepStrictEqual(words(`x "" ''`), ["x", "", ""])
  })

  it("reads backslashes as sh does", () => {
    assert.deepStrictEqual(words(String.raw`echo a\ b "q\"uote" "back\\slash" "keep\n" 'raw\"'`), [
      "echo",
      "a b",
      'q"uote',
      "back\\slash",
      "keep\\n",
      'raw\\"'
    ])
    assert.deepStrictEqual(words("one \\\ntwo"), ["one", "two"])
  })

  it("passes shell syntax inside quotes through untouched, for sh -c", () => {
    assert.deepStrictEqual(words(`sh -c "node server.js --port $PORT | tee log; echo *"`), [
      "sh",
      "-c",
      "node server.js --port $PORT | tee log; echo *"
    ])
    assert.deepStrictEqual(words("node -e 'console.log(1)'"), ["node", "-e", "console.log(1)"])
  })

  it("refuses shell syntax outside quotes, naming the character and how to get a shell", () => {
    for (const [text, char] of [
      ["node server.js --port $PORT", "$"],
      ["npm run build && npm start", "&"],
      ["node a.js | tee log", "|"],
      ["node a.js > out", ">"],
      ["node a.js; echo done", ";"],
      ["rm dist/*", "*"],
      ["echo `id`", "`"],
      ["cat ~/x", "~"],
      ["node a.js # comment", "#"]
    ] as const) {
      const why = refusal(text)
      assert.include(why, `"${char}" is shell syntax`, text)
      assert.include(why, "sh -c", text)
    }
    // Inside a word, # and ~ are ordinary characters.
    assert.deepStrictEqual(words("node a.js --tag=v1#2 x~y"), ["node", "a.js", "--tag=v1#2", "x~y"])
  })

  it("refuses unterminated quotes, empty commands and NUL", () => {
    assert.include(refusal(`node "unterminated`), "unterminated double quote")
    assert.include(refusal(`node 'unterminated`), "unterminated single quote")
    assert.include(refusal("   "), "empty")
    assert.include(refusal("node \\"), "backslash")
    assert.include(refusal("node a\0b"), "NUL")
  })

  it("quotes words so that they split back the same", () => {
    const argv = ["node", "a b", "it's", "$HOME", "", "plain-word_1.js", "#x", "~y"]
    assert.deepStrictEqual<ReadonlyArray<string>>(words(show(argv)), argv)
    assert.strictEqual(quote("server.js"), "server.js")
  })
})
