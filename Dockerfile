# syntax=docker/dockerfile:1
# fedicache: a static binary on a distroless image with CA certificates, run as a non-root user,
# with no shell. Build: docker build --build-arg VERSION=v1.0.0 -t fedicache .

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# The same script CI runs.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH VERSION=$VERSION scripts/build.sh /out/fedicache

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fedicache /usr/local/bin/fedicache
# 65532 is distroless's "nonroot" user; Kubernetes' runAsNonRoot needs a numeric user.
USER 65532:65532
# 8080: the public listener (listen); 9090: the admin listener (admin_listen).
EXPOSE 8080 9090
ENTRYPOINT ["fedicache"]
CMD ["serve"]
