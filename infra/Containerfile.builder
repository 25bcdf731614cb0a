# The Anvil image built entirely inside containers, for users whose build machine can pull base images
# (Docker with BuildKit, or podman/buildah):
#
#     docker build -f infra/Containerfile.builder -t anvil:dev .
#
# The result matches infra/Containerfile (which CI builds from binaries made on the host, since no registry
# is reachable there): a FROM-scratch image with the static musl `anvil`, the SPA and a CA
# bundle. This file is not built by the tests here — keep its steps in step with infra/image-build.sh.
# Context filter: infra/Containerfile.builder.dockerignore.

# ---- build: Rust (the workspace's rust-version), musl-gcc for the C in aws-lc-sys and SQLite, node for
# binaryen's wasm-opt, wasm-bindgen-cli at the version in spa/Cargo.lock
FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl wasm32-unknown-unknown \
 && cargo install wasm-bindgen-cli --version 0.2.130
WORKDIR /src
COPY . .
ENV CC_x86_64_unknown_linux_musl=musl-gcc
RUN bash spa/build.sh
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p anvil-server
RUN mkdir -p /out/rootfs/data /out/spa \
 && cp target/x86_64-unknown-linux-musl/release/anvil /out/ \
 && cp -R spa/dist/. /out/spa/ \
 && cp /etc/ssl/certs/ca-certificates.crt /out/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nanvil:x:65532:65532:anvil:/data:/sbin/nologin\n' > /out/passwd \
 && printf 'root:x:0:\nanvil:x:65532:\n' > /out/group \
 && chmod 0700 /out/rootfs/data && chmod -R a+rX /out/spa

# ---- the image: as infra/Containerfile
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="anvil" \
      org.opencontainers.image.description="Anvil: multi-tenant human data labeling (API, labeling app, job worker)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /out/group /etc/
COPY --from=build /out/anvil /usr/local/bin/anvil
COPY --from=build /out/spa/ /app/spa/
COPY --from=build --chown=65532:65532 /out/rootfs/ /
ENV ANVIL_BIND=0.0.0.0:8080 \
    ANVIL_DATA_DIR=/data \
    ANVIL_SPA_DIR=/app/spa \
    ANVIL_LOG_FORMAT=json \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=6s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/anvil", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/anvil"]
CMD ["serve"]
