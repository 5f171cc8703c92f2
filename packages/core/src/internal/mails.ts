// The account emails. The token is printed on its own line so a person can copy it even when
// the link is not clickable (and a test can find it).
import type { Mail } from "../Mailer.js"

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const mail = (
  to: string,
  subject: string,
  intro: string,
  link: string,
  token: string,
  outro: string
): Mail => ({
  to,
  subject,
  text: `${intro}\n\n${link}\n\nToken: ${token}\n\n${outro}\n`,
  html: `<p>${escapeHtml(intro)}</p><p><a href="${escapeHtml(link)}">${escapeHtml(link)}</a></p><p>Token: <code>${escapeHtml(token)}</code></p><p>${escapeHtml(outro)}</p>`
})

export const confirmation = (to: string, username: string, publicUrl: string, token: string): Mail =>
  mail(
    to,
    "Confirm your email",
    `Hello ${username}, confirm your email address to finish creating your account:`,
    `${publicUrl.replace(/\/+$/, "")}/auth/confirm/${token}`,
    token,
    "If you did not create an account, ignore this message."
  )

export const passwordReset = (to: string, publicUrl: string, token: string): Mail =>
  mail(
    to,
    "Reset your password",
    "Someone asked to reset the password of your account. To choose a new password, use:",
    `${publicUrl.replace(/\/+$/, "")}/auth/password/reset/${token}`,
    token,
    "If it was not you, ignore this message: your password stays as it is."
  )
