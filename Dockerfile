# wami-bench in a container: Debian 12 (bookworm) with Node 20, every command of the CLI.
#   docker build -t wami-bench .                            # the image deploy/k8s/ runs
#   docker build -t wami-bench --build-arg WITH_CADDY=1 .   # with Debian's Caddy 2 (scenarios with via: 'caddy')
#   docker run --rm wami-bench run smoke                    # the first argument is the command
# The entrypoint is the CLI, so a Kubernetes container's args start with the command (fleet-job.yaml:
# `fleet --segment …`); `wami-bench` is on PATH as well, for a shell (server.yaml: `sh -c "wami-bench run …"`).
# It runs as uid 1000 (the node image's `node` user), the fsGroup of the manifests; /data (results,
# the kept SQLite files: the runner's claim) and /results (the segments and their barrier: the
# shared claim) are its to write, and /data is the working directory, so results/ lands there too.
# Not built where it was written (no Docker daemon, no registry): test/dockerfile.test.ts checks it
# statically against package.json, the CLI and deploy/k8s (README.md, "Many hosts").

# Build: dev dependencies for tsc, and python3, make and g++ (in the full image) for better-sqlite3
# should its prebuilt binary not be available.
FROM node:20-bookworm AS build
WORKDIR /opt/wami-bench
COPY package.json package-lock.json ./
# no scripts yet: `prepare` (tsc) needs the sources below; better-sqlite3's native part is built on its own
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json index.ts Caddyfile ./
COPY protocol/ protocol/
COPY model/ model/
COPY servers/ servers/
COPY clients/ clients/
COPY scenarios/ scenarios/
COPY report/ report/
COPY micro/ micro/
COPY runner/ runner/
# the tests stay out of the image (test/ is not copied; tsc builds what is there), then the dev dependencies go
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ARG WITH_CADDY=0
RUN if [ "$WITH_CADDY" = 1 ]; then \
      apt-get update && apt-get install -y --no-install-recommends caddy && rm -rf /var/lib/apt/lists/*; \
    fi
# the package as built: dist/, the production node_modules, and what dist reads beside it at run time
# (package.json for the version, Caddyfile, report/page.js, model/result.schema.json)
COPY --from=build /opt/wami-bench /opt/wami-bench
RUN chmod 0755 /opt/wami-bench/dist/runner/cli.js \
    && ln -s /opt/wami-bench/dist/runner/cli.js /usr/local/bin/wami-bench \
    && mkdir -p /data /results/segments \
    && chown -R 1000:1000 /data /results
USER 1000:1000
WORKDIR /data
ENTRYPOINT ["node", "/opt/wami-bench/dist/runner/cli.js"]
CMD ["--help"]
