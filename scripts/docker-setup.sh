#!/usr/bin/env bash
# Makes a Docker Engine available for the Docker tests: starts dockerd in the background when none
# answers (CI machines have none running), waits for it, then builds the test image
# gantry-test/busybox:latest with `docker import` from a root file system made of busybox-static
# (there is no registry here). Idempotent. Needs root for dockerd; Debian packages docker.io and
# busybox-static (installed by .ci/run).
set -euo pipefail

if ! docker info >/dev/null 2>&1; then
  echo "docker-setup: starting dockerd (log in /tmp/dockerd.log)"
  nohup dockerd >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
docker info >/dev/null 2>&1 || { echo "docker-setup: dockerd did not come up:"; tail -20 /tmp/dockerd.log; exit 1; }

IMAGE=gantry-test/busybox:latest
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  busybox=$(command -v busybox || true)
  [ -n "$busybox" ] || { echo "docker-setup: busybox not found (apt-get install busybox-static)"; exit 1; }
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/tmp" "$root/www"
  cp "$busybox" "$root/bin/busybox"
  for applet in sh httpd nc sleep echo cat ls env printf wget head tail dd yes true false kill; do
    ln -sf busybox "$root/bin/$applet"
  done
  echo "gantry test image" > "$root/www/index.html"
  tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
  echo "docker-setup: built $IMAGE"
fi
echo "docker-setup: engine $(docker version --format '{{.Server.Version}}'), image $IMAGE ready"
