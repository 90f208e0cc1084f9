# Multi-stage build: dependencies are compiled in their own cached layer (cargo-chef), the
# runtime image holds only the binary (templates and static assets are compiled into it).
FROM rust:1-bookworm AS chef
RUN cargo install cargo-chef --locked
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin strangers

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home strangers \
    && mkdir /data && chown strangers /data
COPY --from=build /app/target/release/strangers /usr/local/bin/strangers
USER strangers
ENV STRANGERS_LISTEN=0.0.0.0:8080 \
    STRANGERS_REPORT_LOG=/data/reports.jsonl
WORKDIR /data
EXPOSE 8080
CMD ["strangers"]
