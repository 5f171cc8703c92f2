// The apps the push-to-live benchmarks deploy, one version after another.
// The app: a tiny Node server for processes; for Docker, busybox httpd in an image FROM scratch
// (no image can be pulled here), its page carrying the version.
export const nodeApp = (version: number) => ({
  "package.json": JSON.stringify({ name: "tiny", version: "1.0.0", scripts: { start: "node server.js" } }),
  "server.js": `require("node:http").createServer((_, res) => res.end("v${version}")).listen(Number(process.env.PORT), "127.0.0.1")\n`
})
export const dockerApp = (version: number) => ({
  Dockerfile: [
    "FROM scratch",
    "COPY busybox /bin/busybox",
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    "EXPOSE 8080",
    'CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]',
    // What changes from push to push comes last, so every step before it stays cached.
    "COPY www /www",
    ""
  ].join("\n"),
  "www/index.html": `v${version}`
})
