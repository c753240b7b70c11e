# tuskd: a resumable-upload (tus 1.0) and media-ingest server.
#
#   docker build -t tuskd .
#   docker run -p 1080:1080 -v tuskd-data:/data tuskd
#
# Configuration is by TUSKD_* environment variables (see the README) or flags after the image
# name (`docker run tuskd serve --max-size 10GiB`). The base images are build arguments, so a
# mirror or a pinned digest can stand in for the public ones.
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

# The tags are in the arguments above.
# hadolint ignore=DL3006
FROM ${RUST_IMAGE} AS build
# The GStreamer development files the media crates build against; a C compiler for SQLite and
# libwebp, which are built from source.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config \
      libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev \
      libheif-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and target caches make rebuilds incremental; the binary leaves the cache by copy.
# No debug information in the image's build (symbols stay, for backtraces).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_DEBUG=false cargo build --release --locked --bin tuskd \
 && install -D -m 0755 target/release/tuskd /out/tuskd

# The runtime's packages: poppler's pdftoppm for document previews, libheif for HEIC and AVIF
# photos, CA certificates for object
# stores and webhooks over TLS, and the user tuskd runs as. Debian's point releases replace
# package versions, so they are not pinned.
# hadolint ignore=DL3006
FROM ${RUNTIME_IMAGE} AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates poppler-utils libheif1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/tuskd \
      --shell /usr/sbin/nologin tuskd \
 && install -d -o tuskd -g tuskd -m 0750 /data

# GStreamer: the plugins the media pipeline uses, with the libraries they load, taken from
# Debian's plugin sets (see scripts/image-plugins.sh).
FROM runtime AS plugins
COPY scripts/image-plugins.sh /usr/local/bin/image-plugins.sh
# hadolint ignore=DL3008
RUN dpkg-query -W -f '${Package}\n' >/tmp/base-packages \
 && apt-get update \
 && apt-get install -y --no-install-recommends gstreamer1.0-plugins-base \
      gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
      gstreamer1.0-libav \
 && sh /usr/local/bin/image-plugins.sh /staging /tmp/base-packages

FROM runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tuskd" \
      org.opencontainers.image.description="A resumable-upload (tus 1.0) server with a media pipeline: HLS, images, audio, previews" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=plugins /staging/ /
COPY --from=build /out/tuskd /usr/local/bin/tuskd
RUN ldconfig
USER tuskd
ENV TUSKD_LISTEN=0.0.0.0:1080 \
    TUSKD_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 1080
# `tuskd health` asks the server's /readyz: metadata store, object store and media workers.
HEALTHCHECK --interval=10s --timeout=6s --start-period=15s --retries=3 CMD ["tuskd", "health"]
ENTRYPOINT ["tuskd"]
CMD ["serve"]
