# Dockerfile for the kvstore server: a static binary on an empty image.
#
#   docker build -t kvstore/kvstore:dev .                  # public images, go mod download
#   hack/images.sh                                         # offline: local images, vendor/
#
# GO_IMAGE is the Go toolchain image of the build stage and RUNTIME_IMAGE
# the base of the final one. When the build context has a vendor/ directory
# the build is offline (-mod=vendor); otherwise modules are downloaded first.
# No "# syntax=" line and no BuildKit-only instructions: this must build
# with the classic builder (docker-compose v1) as well as with BuildKit.
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=scratch

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0
# Dependencies first, in layers that stay cached until go.mod, go.sum or
# vendor/ change: downloaded, or, when vendored, compiled into the build
# cache, so that a change to the sources recompiles only this module.
# "vendo[r]" matches nothing, without an error, when there is no vendor/;
# go.sum keeps the source list from being empty, and lands in vendor/ only
# to be deleted.
COPY go.mod go.sum ./
COPY go.sum vendo[r] ./vendor/
RUN set -eu; \
    rm vendor/go.sum; \
    if [ -f vendor/modules.txt ]; then \
        echo "vendor/ present: building offline with -mod=vendor"; \
        pkgs="$(go list -mod=vendor -e -f '{{if not .Error}}{{if not .DepsErrors}}{{.ImportPath}}{{end}}{{end}}' \
            $(grep -v '^#' vendor/modules.txt))"; \
        if [ -n "$pkgs" ]; then go build -mod=vendor -trimpath $pkgs; fi; \
    else \
        rmdir vendor; \
        echo "no vendor/: go mod download"; \
        go mod download; \
    fi
# Declared before COPY so that this step stays cached while only the
# sources change: each step that is not costs seconds on fuse-overlayfs.
ARG VERSION=dev
COPY . .
RUN set -eu; \
    if [ -f vendor/modules.txt ]; then mod=vendor; else mod=readonly; fi; \
    go build -mod=$mod -trimpath \
        -ldflags "-s -w -X kvstore.dev/kvstore/internal/server.Version=${VERSION}" \
        -o /out/kvstore ./cmd/server; \
    mkdir -p /out/data /out/certs

FROM ${RUNTIME_IMAGE}
ARG RUNTIME_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kvstore" \
      org.opencontainers.image.description="kvstore: a key-value store on bbolt with an HTTP/JSON API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
COPY --from=build /out/kvstore /usr/local/bin/kvstore
# Empty directories owned by the runtime user: a new named volume mounted
# on them takes that ownership (/certs is where `kvstore certs` writes).
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/certs /certs
USER 65532:65532
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["/usr/local/bin/kvstore"]
CMD ["--config", "/etc/kvstore/config.yaml"]
