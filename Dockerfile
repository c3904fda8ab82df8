# syntax=docker/dockerfile:1
#
# The `booking` binary: built in the Rust image, run in a slim Debian.
#
#   docker build -t booking-engine .
#   docker run --rm -p 8080:8080 -e DATABASE_URL=postgres://... booking-engine serve
#
# The builder is the Rust image's bookworm variant so that the binary links
# against the same glibc as the bookworm runtime below.

FROM rust:1-bookworm AS builder
WORKDIR /src
# Only what the build reads: the workspace and its crates (each crate's
# migrations, which `sqlx::migrate!` embeds at compile time, are inside it).
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p engine \
    && install -m 0755 target/release/booking /usr/local/bin/booking

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/booking --create-home booking
COPY --from=builder /usr/local/bin/booking /usr/local/bin/booking
USER booking
WORKDIR /var/lib/booking
# Inside a container the server must listen on every interface.
ENV BOOKING_ADDR=0.0.0.0:8080 \
    RUST_LOG=info,sqlx=warn
EXPOSE 8080
# `booking serve` stops on SIGTERM: open requests get 8 s to finish.
STOPSIGNAL SIGTERM
ENTRYPOINT ["booking"]
CMD ["serve"]
