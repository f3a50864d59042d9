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
        list=vendor/modules.txt; if [ -f vendor/prebuild.txt ]; then list=vendor/prebuild.txt; fi; \
        pkgs="$(go list -mod=vendor -e -f '{{if not .Error}}{{if not .DepsErrors}}{{.ImportPath}}{{end}}{{end}}' \
            $(grep -v '^#' $list))"; \
        if [ -n "$pkgs" ]; then go build -mod=vendor -trimpath $pkgs; fi; \
    else \
        rmdir vendor; \
        echo "no vendor/: go mod download"; \
        go mod download; \
    fi
# Declared before COPY so that this step stays cached while only the
# sources change: each step that is not costs seconds on fuse-overlayfs.
ARG VERSION=dev
# BINARIES: "server" (the default image), or "server operator" for the
# operator image (target "operator").
ARG BINARIES=server
COPY . .
RUN set -eu; \
    if [ -f vendor/modules.txt ]; then mod=vendor; else mod=readonly; fi; \
    for b in $BINARIES; do \
        case $b in server) out=kvstore ;; operator) out=kvstore-operator ;; *) echo "unknown binary $b"; exit 1 ;; esac; \
        go build -mod=$mod -trimpath \
            -ldflags "-s -w -X kvstore.dev/kvstore/internal/server.Version=${VERSION}" \
            -o /out/bin/$out ./cmd/$b; \
    done; \
    mkdir -p /out/data /out/certs /out/ca

# The operator: docker build --target operator --build-arg BINARIES="server operator"
# (hack/images.sh --operator). Copies the whole bin directory so that a
# default build, which does not build the operator, still passes this stage.
FROM ${RUNTIME_IMAGE} AS operator
ARG VERSION=dev
LABEL org.opencontainers.image.title="kvstore-operator" \
      org.opencontainers.image.description="kvstore operator: runs KVStores on Kubernetes" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/bin/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kvstore-operator"]

# The server, the default target.
FROM ${RUNTIME_IMAGE} AS server
ARG RUNTIME_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kvstore" \
      org.opencontainers.image.description="kvstore: a key-value store on bbolt with an HTTP/JSON API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
COPY --from=build /out/bin/kvstore /usr/local/bin/kvstore
# Empty directories owned by the runtime user: a new named volume mounted
# on them takes that ownership (/certs is where `kvstore certs` writes the
# server's certificate, /ca where it keeps the CA with --ca-dir).
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/certs /certs
COPY --from=build --chown=65532:65532 /out/ca /ca
USER 65532:65532
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["/usr/local/bin/kvstore"]
CMD ["--config", "/etc/kvstore/config.yaml"]
