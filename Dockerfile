# netcore-connect: a static binary on a small base, run as a non-root user.
#   docker build -t netcore-connect .
#   docker run -p 8080:8080 -p 4195:4195 -v netcore-data:/data \
#     -e MEIRO_EVENTS_URL=https://meiro.example.com/collect/netcore \
#     -e NETCORE_ALLOWED_IPS=203.0.113.0/24 netcore-connect

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.dateBuilt=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
      -o /out/netcore-connect ./cmd/netcore-connect

FROM alpine:3.22
RUN addgroup -S netcore && adduser -S -G netcore -H -h /data netcore \
    && mkdir -p /data /etc/netcore-connect && chown netcore:netcore /data
COPY --from=build /out/netcore-connect /usr/local/bin/netcore-connect
COPY config/ /etc/netcore-connect/
USER netcore
WORKDIR /data
VOLUME /data
# The admin server listens on every address of the container (the binary's
# default is loopback), so that a published 4195 can be scraped.
ENV NETCORE_ADDRESS=0.0.0.0:8080 \
    NETCORE_ADMIN_ADDRESS=0.0.0.0:4195 \
    NETCORE_DATA_DIR=/data
# 8080: Netcore posts; 4195: admin server (/ready, /ping, /metrics).
EXPOSE 8080 4195
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
  CMD wget -q -O /dev/null http://127.0.0.1:4195/ready || exit 1
ENTRYPOINT ["netcore-connect"]
CMD ["run", "/etc/netcore-connect/netcore-to-meiro.yaml"]
