# xmpp-msg-gw: webhook → XMPP gateway. Multi-stage: production dependencies only,
# a non-root user, the spool on a volume, and node as PID 1 so SIGTERM reaches the
# gateway's graceful shutdown (it handles SIGTERM and SIGINT itself).
#
#   docker build .                   the gateway (the last stage, `runtime`)
#   docker build --target demo .     a self-contained demo: throwaway Prosody + gateway
#
# test/container-run.test.ts builds both targets from this file as it is and runs them.

# The TypeScript sources compiled to JavaScript: no type stripper at run time, about
# 20 MB less memory and a faster start (BENCHMARKS.md).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# --omit=optional: the image has its Node; package.json's optional dependencies are the
# Node 24 binaries a checkout runs under (bin/node), 190 MB each.
RUN npm ci --omit=optional --no-audit --no-fund
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund

# `docker compose -f docker-compose.demo.yml up --build`: a throwaway Prosody with a room
# inside the container, the gateway wired to it, a sample message shown arriving. Prosody
# is installed before the gateway is copied in, so a code change does not repeat it.
FROM node:24-bookworm-slim AS demo
RUN apt-get update \
 && apt-get install -y --no-install-recommends prosody openssl \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=10080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
# The demo's spool (./data) in the node user's home; Prosody's throwaway one is in /tmp.
WORKDIR /home/node
USER node
EXPOSE 10080
ENTRYPOINT ["node", "/app/bin/xmpp-msg-gw.js"]
CMD ["demo"]

# The gateway. Its working directory, /config, is where it reads `.env` and the old
# gateway's `.pyenv` (docker-compose.yml mounts the compose directory there, read-only).
FROM node:24-bookworm-slim AS runtime
# The system store the gateway trusts besides Node's own roots and XMPP_CA_FILE (the slim
# image has none, and OpenSSL complains of the missing /etc/ssl/certs at every start).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# NODE_OPTIONS: what bin/xmpp-msg-gw sets on a host (a 2 MB young generation: less memory).
ENV NODE_OPTIONS=--max-semi-space-size=2 \
    NODE_ENV=production \
    DATA_DIR=/data \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=10080
# As in the demo: the dependencies get a layer of their own, which changes only with them.
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
RUN mkdir -p /data /config && chown node:node /data
WORKDIR /config
USER node
VOLUME ["/data"]
EXPOSE 10080
# /health answers 200 while the process runs (fetch() refuses port 10080: use node:http).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "require('node:http').get('http://127.0.0.1:'+(process.env.HTTP_PORT||10080)+'/health',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]
# The same command the tests start on the host: node bin/xmpp-msg-gw.js serve
ENTRYPOINT ["node", "/app/bin/xmpp-msg-gw.js"]
CMD ["serve"]
