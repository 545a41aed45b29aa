# syntax=docker/dockerfile:1
#
# Image of the `promote` GitHub Action (runs.using: docker).
# Releases publish it to ghcr.io and pin action.yml to its digest (.github/workflows/release.yml), so jobs only pull it.

# ---- builder -------------------------------------------------------------------------------------------------------
# Exact toolchain tag: Debian 12 (bookworm), the same glibc (2.36) as the distroless runtime below.
# TLS is rustls with aws-lc-rs. On x86_64-unknown-linux-gnu aws-lc-sys compiles with its "CC" builder and ships
# pregenerated bindings, so gcc + libc6-dev (both in this image) are all it needs: no cmake, nasm, clang or bindgen.
FROM rust:1.95.0-slim-bookworm AS builder
WORKDIR /build

# Dependencies first, against a dummy main: this layer stays cached until Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src target/release/promote target/release/deps/promote-* target/release/deps/libpromote_action-* \
      target/release/deps/promote_action-* target/release/.fingerprint/promote-action-*

# Then the crate itself (its dummy artifacts were removed above, so cargo cannot mistake them for fresh).
COPY src ./src
RUN cargo build --release --locked

# ---- runtime -------------------------------------------------------------------------------------------------------
# distroless/cc: glibc, libgcc and CA certificates, nothing else. Its default user is root, which the Actions runner
# needs (the action writes /github/file_commands and the workspace): do NOT add USER. No WORKDIR either: the runner
# mounts the workspace and sets the working directory itself.
# distroless publishes floating tags only; pin a digest here once one can be checked against the registry.
# hadolint ignore=DL3007
FROM gcr.io/distroless/cc-debian12:latest
LABEL org.opencontainers.image.source="https://github.com/studysphere/promote-action" \
      org.opencontainers.image.description="Promote one container image by digest through development, testing and production on Kubernetes" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.title="promote-action"
COPY --from=builder /build/target/release/promote /promote
ENTRYPOINT ["/promote"]
