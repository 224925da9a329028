# syntax=docker/dockerfile:1
# agentgate as a container: the single executable on a distroless base (glibc and
# libstdc++, no shell, no package manager), running as a non-root user, state in
# the /data volume. Build: docker build --build-arg AGENTGATE_COMMIT=$(git rev-parse --short=12 HEAD) -t agentgate .
# Run:   docker run -p 8765:8765 -v agentgate:/data -e AGENTGATE_TOKEN_ISSUE_SECRET=… agentgate
# (listening on all interfaces requires token or token_issue_secret; see deploy/README.md).

# ── build: npm is the only package manager; bun itself comes from npm ──────────
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
ARG AGENTGATE_COMMIT=dev
RUN AGENTGATE_COMMIT="$AGENTGATE_COMMIT" npm run build \
 && ./dist/agentgate version \
 && mkdir -p /out/data

# ── run ─────────────────────────────────────────────────────────────────────────
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/agentgate /usr/local/bin/agentgate
COPY --from=build --chown=nonroot:nonroot /out/data /data
ENV AGENTGATE_HOST=0.0.0.0 \
    AGENTGATE_PORT=8765 \
    AGENTGATE_DATA_DIR=/data \
    AGENTGATE_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8765
USER nonroot:nonroot
# The binary probes itself (distroless has no curl or shell), at the address the AGENTGATE_* environment
# configures; a config file for both serve and the probe goes in AGENTGATE_CONFIG.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/agentgate", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/agentgate"]
CMD ["serve"]
