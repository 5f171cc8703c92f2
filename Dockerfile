# The reference server's image. Build: docker build -t paas-server .
# It runs `paas-server` from the built packages; git is needed for repositories, and the Docker
# runtime talks to the engine through /var/run/docker.sock (mounted by docker-compose.yml).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc tsconfig.base.json tsconfig.json tsup.config.base.ts ./
COPY packages ./packages
COPY examples ./examples
RUN npm install --no-audit --no-fund && npm run build --workspace @paas/core --workspace @paas/auth \
      --workspace @paas/git --workspace @paas/builder --workspace @paas/runtime-process \
      --workspace @paas/runtime-docker --workspace @paas/server \
  && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates tini \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages ./packages
ENV NODE_ENV=production \
    PAAS_DATA_DIR=/data \
    PAAS_HTTP_HOST=0.0.0.0
VOLUME ["/data"]
EXPOSE 3000 2222
# tini reaps the processes builds leave behind and passes SIGTERM on, so shutdowns are clean.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "packages/server/dist/bin.js"]
