# The tlsbench image: one static-enough binary on a slim Debian, run as a non-root user.
# `tlsbench load --segment` in deploy/k8s/load-job.yaml and `tlsbench merge` in
# deploy/k8s/merge-job.yaml run it; README "More load than one machine".
#
#   docker build -t tlsbench .
#
# Stage 1: the release build (LTO, as the numbers in results/ were measured), from the
# lockfile only, so the image has the versions the repository tested.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tlsbench

# Stage 2: the binary and the CA roots (for a target with a public certificate), nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/tlsbench tlsbench
COPY --from=builder /src/target/release/tlsbench /usr/local/bin/tlsbench
# By number, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
WORKDIR /home/tlsbench
ENTRYPOINT ["tlsbench"]
CMD ["--help"]
