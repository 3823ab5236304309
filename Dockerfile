# syntax=docker/dockerfile:1
# mullvad-sidecar: a fail-closed Mullvad WireGuard sidecar (see docs/deploy.md).
#
# Base images are pinned by full tag; for digest pinning append @sha256:<digest>
# to either ARG (the release workflow and Renovate/Dependabot can keep it current).
# The test scripts tag local stand-ins with exactly these names (scripts/podman-base-image).
ARG NODE_IMAGE=docker.io/library/node:20.20.2-bookworm-slim
ARG DEBIAN_IMAGE=docker.io/library/debian:bookworm-20250520-slim

# --- build: compile the TypeScript and bundle it (no node_modules in the image) --
# On the build machine's platform: the output is plain JavaScript (no native addons),
# so multi-arch builds do not run npm, tsc and esbuild under emulation.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/bundle.mjs ./scripts/
COPY bin ./bin
COPY src ./src
# The runtime is dist/bundle (the sources and their three dependencies, minified);
# `lab` and `demo` need the source tree and are not in the image.
RUN npx tsc -p tsconfig.json \
 && node scripts/bundle.mjs \
 && mkdir -p /out/opt/mullvad-sidecar/dist \
 && cp -r package.json bin /out/opt/mullvad-sidecar/ \
 && cp -r dist/bundle /out/opt/mullvad-sidecar/dist/

# --- node: the Node.js binary for the target platform ---------------------------
FROM ${NODE_IMAGE} AS node

# --- tools: Node.js and the network tools `run` uses, gathered into /rootfs ------
FROM ${DEBIAN_IMAGE} AS tools
# --no-install-recommends: wireguard-tools would otherwise pull a kernel, systemd and udev.
# conntrack is optional (flushing flows opened before the kill switch). netbase: /etc/protocols,
# which nft needs to read protocol names such as ipv6-icmp. binutils: strip.
RUN apt-get update \
 && apt-get install -y --no-install-recommends wireguard-tools wireguard-go nftables iproute2 conntrack netbase binutils
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY scripts/image-rootfs /usr/local/sbin/image-rootfs
# Node.js ships with its symbols (−12 MB stripped; only a debugger's symbol names are lost).
RUN strip /usr/local/bin/node && image-rootfs /rootfs

# --- runtime: only those programs, their libraries and the bundle ---------------
# No Debian base: apt, dpkg, perl and locales are not needed to run (199 → ~120 MB).
FROM scratch
COPY --from=tools /rootfs /
COPY --from=build /out/opt/mullvad-sidecar /opt/mullvad-sidecar

ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_ENV=production \
    LOG_FORMAT=json
EXPOSE 9999
STOPSIGNAL SIGTERM
# Ready = tunnel up and verified (DESIGN.md §6). Plain node: no curl in the image.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HEALTH_PORT||9999)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["mullvad-sidecar", "run"]

# Last, so a new build date or revision does not invalidate the cached layers above.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="mullvad-sidecar" \
      org.opencontainers.image.description="Fail-closed Mullvad WireGuard sidecar for Kubernetes pods and Docker Compose services" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/mullvad-sidecar/mullvad-sidecar" \
      org.opencontainers.image.documentation="https://github.com/mullvad-sidecar/mullvad-sidecar/blob/main/docs/deploy.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
