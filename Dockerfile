# Multi-stage build of both binaries; small final images running as a non-root user.
#   docker build --target auth-server -t auth-server .
#   docker build --target rooms-api -t rooms-api .
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p auth-server -p rooms-api \
 && strip target/release/auth-server target/release/rooms-api

FROM debian:bookworm-slim AS runtime
# libssl3: josekit and the TLS stack link OpenSSL; curl: the compose health checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --create-home app
WORKDIR /app
USER app

FROM runtime AS auth-server
COPY --from=build /src/target/release/auth-server /usr/local/bin/auth-server
EXPOSE 8081 9081
ENTRYPOINT ["auth-server"]
CMD ["serve"]

FROM runtime AS rooms-api
COPY --from=build /src/target/release/rooms-api /usr/local/bin/rooms-api
EXPOSE 8082 9082
ENTRYPOINT ["rooms-api"]
CMD ["serve"]
