/**
 * The pages behind the links in account emails, run as a browser would run them: the inline
 * script executes in a sandbox with a small DOM and `fetch`, and the policy pins that script.
 */
import { createHash } from "node:crypto"
import { runInNewContext } from "node:vm"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Pages from "../src/internal/pages.js"

const bodyOf = (response: HttpServerResponse.HttpServerResponse) => {
  const body = response.body
  assert.strictEqual(body._tag, "Uint8Array")
  return body._tag === "Uint8Array" ? new TextDecoder().decode(body.body) : ""
}

const inline = (html: string, tag: "script" | "style") => {
  const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(html)
  assert.isNotNull(match, `no <${tag}> in the page`)
  return match![1]!
}

interface Reply {
  readonly status: number
  readonly body: unknown
}

/** Runs a page's script against `fields`, presses its button, and reports what it sent and showed. */
const press = async (html: string, fields: Record<string, string>, reply: Reply) => {
  let submit: ((event: { preventDefault(): void }) => Promise<void>) | undefined
  const button = { disabled: false }
  const form = {
    hidden: false,
    dataset: /data-send="passwords"/.test(html) ? { send: "passwords" } : {},
    querySelector: () => button,
    addEventListener: (type: string, listener: typeof submit) => {
      if (type === "submit") submit = listener
    }
  }
  const result = { className: "", textContent: "" }
  const sent: Array<{
    url: string
    init: { method: string; headers: Record<string, string>; body?: string }
  }> = []
  const sandbox = {
    document: { getElementById: (id: string) => (id === "form" ? form : id === "result" ? result : null) },
    location: { pathname: "/auth/password/reset/0b0e8a5e-7d1c-4d55-9f3a-5a0c8b1e2d3f" },
    FormData: class {
      get(name: string) {
        return fields[name] ?? null
      }
    },
    fetch: async (url: string, init: (typeof sent)[number]["init"]) => {
      sent.push({ url, init })
      return {
        ok: reply.status < 300,
        status: reply.status,
        json: async () => reply.body
      }
    },
    JSON
  }
  runInNewContext(inline(html, "script"), sandbox)
  assert.isDefined(submit, "the script listens for the form's submit")
  let prevented = false
  await submit!({ preventDefault: () => (prevented = true) })
  return { prevented, sent, result, form, button }
}

describe("account email pages", () => {
  it("the policy allows exactly the page's own script and style", () => {
    for (const response of [Pages.confirmEmail(), Pages.resetPassword()]) {
      const html = bodyOf(response)
      const policy = response.headers["content-security-policy"] ?? ""
      for (const tag of ["script", "style"] as const) {
        const hash = createHash("sha256").update(inline(html, tag)).digest("base64")
        assert.include(policy, `'sha256-${hash}'`, tag)
      }
      assert.notInclude(policy, "unsafe-inline")
    }
  })

  it("the confirmation page's button posts to its own address, with no body, and shows the answer", async () => {
    const pressed = await press(
      bodyOf(Pages.confirmEmail()),
      {},
      {
        status: 201,
        body: { status: "OK", message: "email confirmed: you can log in" }
      }
    )
    assert.isTrue(pressed.prevented)
    assert.strictEqual(pressed.sent.length, 1)
    assert.strictEqual(pressed.sent[0]!.url, "/auth/password/reset/0b0e8a5e-7d1c-4d55-9f3a-5a0c8b1e2d3f")
    assert.strictEqual(pressed.sent[0]!.init.method, "POST")
    assert.isUndefined(pressed.sent[0]!.init.body)
    assert.strictEqual(pressed.result.textContent, "email confirmed: you can log in")
    assert.strictEqual(pressed.result.className, "ok")
    assert.isTrue(pressed.form.hidden)
  })

  it("the reset page sends both passwords as JSON, and on a refusal shows why and lets the person retry", async () => {
    const pressed = await press(
      bodyOf(Pages.resetPassword()),
      { password: "N3w-secret!", passwordVerification: "N3w-secret?" },
      { status: 400, body: { status: "invalid", message: "passwordVerification must equal password" } }
    )
    const init = pressed.sent[0]!.init
    assert.strictEqual(init.headers["content-type"], "application/json")
    assert.deepStrictEqual(JSON.parse(init.body!), {
      password: "N3w-secret!",
      passwordVerification: "N3w-secret?"
    })
    assert.strictEqual(pressed.result.textContent, "passwordVerification must equal password")
    assert.strictEqual(pressed.result.className, "error")
    assert.isFalse(pressed.form.hidden)
    assert.isFalse(pressed.button.disabled)
  })
})
