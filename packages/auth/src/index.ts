/** @paas/auth: the password AuthProvider (argon2id, JWT sessions), SSH public keys, and Mailers. */
export * as OutboxMailer from "./OutboxMailer.js"
export * as PasswordAuth from "./PasswordAuth.js"
export * as SessionSecret from "./SessionSecret.js"
export * as SmtpMailer from "./SmtpMailer.js"
export * as SshPublicKey from "./SshPublicKey.js"
