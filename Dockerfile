# fdnix-indexer container: the nightly Fargate task.
#   docker build -t fdnix-indexer .
#   docker run --rm -v "$PWD/out:/out" -e EMBEDDER=local fdnix-indexer
# The steps live in scripts (scripts/setup.sh, docker/entrypoint.sh) that CI also runs
# outside Docker.

# 1. Build the release binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY providers ./providers
COPY tests ./tests
COPY examples ./examples
RUN cargo build --release --locked --bin fdnix

# 2. Assets from the package registries: DuckDB extensions and the local model.
FROM python:3.11-slim-bookworm AS assets
WORKDIR /src
COPY scripts/setup.sh ./scripts/setup.sh
ENV FDNIX_HOME=/opt/fdnix
RUN bash scripts/setup.sh runtime

# 3. Nix: a release recent enough for current nixpkgs (Nix 2.24). Debian's nix-bin (2.8) is not.
FROM nixos/nix:2.24.10 AS nix

# 4. Runtime.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates=20230311* \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 fdnix \
 && mkdir -p /out /nix && chown fdnix:fdnix /out /nix
COPY --from=nix --chown=fdnix:fdnix /nix /nix
COPY --from=assets /opt/fdnix /opt/fdnix
COPY --from=build /src/target/release/fdnix /usr/local/bin/fdnix
COPY docker/entrypoint.sh /usr/local/bin/fdnix-entrypoint
COPY LICENSES /usr/share/doc/fdnix/LICENSES
ENV PATH=/nix/var/nix/profiles/default/bin:/usr/local/bin:/usr/bin:/bin \
    NIX_CONF_DIR=/etc/nix \
    FDNIX_IN_CONTAINER=1 \
    FDNIX_HOME=/opt/fdnix \
    PROCESSING_MODE=both \
    OUTPUT_PATH=/out/fdnix.duckdb \
    EMBEDDER=bedrock \
    FDNIX_LOG_FORMAT=json
RUN mkdir -p /etc/nix && printf 'sandbox = false\nexperimental-features = nix-command flakes\n' > /etc/nix/nix.conf
USER 10001
WORKDIR /home/fdnix
ENTRYPOINT ["/usr/local/bin/fdnix-entrypoint"]
CMD ["index"]
