# syntax=docker/dockerfile:1
#
# plumber: built with npm ci + tsc, run on a slim Node 20 image with production dependencies
# only, plus kustomize and git (Debian's package: plumber fetches and reads trees with the git CLI). Runs as a non-root user (uid 1000)
# with a read-only root filesystem: the only writable paths are the git cache volume and /tmp.
#
#   docker build -t plumber .
#   docker run --read-only --tmpfs /tmp -v plumber-cache:/var/cache/plumber \
#     -v $PWD/plumber.yaml:/etc/plumber/config/plumber.yaml:ro plumber run
#
# scripts/check-image-steps.sh lints this file and runs the same steps without a Docker engine.
# The image holds the compiled src/ only: no test bed (test/), no benchmarks (bench/), no demo data.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG GO_IMAGE=golang:1.24-bookworm

# kustomize, static, from the Go module proxy.
FROM ${GO_IMAGE} AS kustomize
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
RUN go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.1

# Compile: all dependencies (typescript), then tsc.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY config ./config
COPY src ./src
RUN npx tsc -p tsconfig.json

# Production dependencies only.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
# git fetches and reads repositories (src/git/cli.ts); ca-certificates for its https.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    PLUMBER_CONFIG=/etc/plumber/config/plumber.yaml \
    PLUMBER_CACHE_DIR=/var/cache/plumber/repos
WORKDIR /app
COPY --from=kustomize /go/bin/kustomize /usr/local/bin/kustomize
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY package.json ./
COPY config/plumber.schema.json ./config/plumber.schema.json
RUN mkdir -p /var/cache/plumber && chown 1000:1000 /var/cache/plumber
# uid 1000 is the node user of the Node images; numeric, so runAsNonRoot can check it.
USER 1000:1000
VOLUME ["/var/cache/plumber"]
# /metrics, /healthz, /readyz (--metrics-addr)
EXPOSE 8080
# A 4 MiB young generation (V8's default grows to 16 MiB a semi-space, 32 MiB resident): the
# daemon's live heap is ~20 MiB at 20k objects, the rest of a default young generation is slack.
# RSS of `plumber run` over 5k objects / 50 apps: ~82 MiB with it, ~108 MiB without, for a little
# more CPU (more scavenges); npm run bench, section fleet.
ENTRYPOINT ["node", "--max-semi-space-size=4", "/app/dist/src/cli/main.js"]
CMD ["run"]
