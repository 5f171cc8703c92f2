// The pages behind the links in account emails. A mail client or a link scanner may open a link
// before the person does, so opening one changes nothing: the page asks, and its button sends the
// API's POST to the same address (the contract's routes stay as they are).
//
// The pages hold no user data (the token stays in the address), load nothing from elsewhere and
// run only their own inline script, pinned by its hash in the Content-Security-Policy.
import { createHash } from "node:crypto"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"

const style = `body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.4rem;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1rem}.ok{color:#065f2c}.error{color:#a40e26}`

// Posts the form to the page's own address and shows the API's message.
const script = `const form = document.getElementById("form")
const result = document.getElementById("result")
form.addEventListener("submit", async (event) => {
  event.preventDefault()
  const button = form.querySelector("button")
  button.disabled = true
  result.className = ""
  result.textContent = "…"
  const fields = new FormData(form)
  const body = form.dataset.send === "passwords"
    ? JSON.stringify({ password: fields.get("password"), passwordVerification: fields.get("passwordVerification") })
    : undefined
  try {
    const response = await fetch(location.pathname, {
      method: "POST",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body,
      credentials: "omit"
    })
    const reply = await response.json().catch(() => ({}))
    result.className = response.ok ? "ok" : "error"
    result.textContent = reply.message || (response.ok ? "Done." : "That did not work (HTTP " + response.status + ").")
    if (response.ok) form.hidden = true
    else button.disabled = false
  } catch {
    result.className = "error"
    result.textContent = "The server could not be reached; try again."
    button.disabled = false
  }
})`

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`

/** The policy of every page: its own style and script, requests to this server, nothing else. */
export const contentSecurityPolicy = [
  "default-src 'none'",
  `script-src ${sha256(script)}`,
  `style-src ${sha256(style)}`,
  "connect-src 'self'",
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'"
].join("; ")

const page = (title: string, body: string) =>
  HttpServerResponse.text(
    `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
      `<meta name="viewport" content="width=device-width,initial-scale=1"><title>${title}</title>` +
      `<style>${style}</style></head><body><main><h1>${title}</h1>${body}` +
      `<p id="result" role="status"></p>` +
      "<noscript><p>This page needs JavaScript to send the request.</p></noscript>" +
      `</main><script>${script}</script></body></html>\n`,
    {
      contentType: "text/html; charset=utf-8",
      headers: {
        "cache-control": "no-store",
        // The token is in the address: never pass it on to another site.
        "referrer-policy": "no-referrer",
        "content-security-policy": contentSecurityPolicy,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY"
      }
    }
  )

/** The page of the confirmation link: one button that confirms. */
export const confirmEmail = () =>
  page(
    "Confirm your email",
    "<p>Confirm the email address of your account to be able to log in.</p>" +
      '<form id="form"><button type="submit">Confirm my email</button></form>'
  )

/** The page of the reset link: the new password twice. */
export const resetPassword = () =>
  page(
    "Choose a new password",
    "<p>At least 8 characters (72 bytes at most), with a lower-case letter, an upper-case letter, a digit and a special character.</p>" +
      '<form id="form" data-send="passwords">' +
      '<label for="password">New password</label>' +
      '<input id="password" name="password" type="password" autocomplete="new-password" minlength="8" required>' +
      '<label for="passwordVerification">The same again</label>' +
      '<input id="passwordVerification" name="passwordVerification" type="password" autocomplete="new-password" minlength="8" required>' +
      '<button type="submit">Set the new password</button></form>'
  )
