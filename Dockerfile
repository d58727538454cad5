# syntax=docker/dockerfile:1

# Build with the dependency layer cached apart from the source (cargo-chef).
FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.73
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin babysync
COPY . .
RUN cargo build --release --locked --bin babysync \
    && mkdir -p /data

# Small runtime: glibc, CA certificates, the non-root user 65532 ("nonroot"); no shell.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /app/target/release/babysync /usr/local/bin/babysync
COPY --from=builder --chown=65532:65532 /data /data
WORKDIR /data
ENV BIND_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/babysync.db?mode=rwc \
    LOG_FORMAT=json \
    RUST_LOG=info
USER 65532:65532
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/babysync", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/babysync"]
CMD ["serve"]
