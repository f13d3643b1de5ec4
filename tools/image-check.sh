#!/usr/bin/env bash
# Builds the container image of docker/Dockerfile and runs docker/README.md's
# setup against it, on a Debian 12 machine without a Docker engine: buildah
# builds (vfs storage, chroot isolation), podman runs, and the base image
# debian:12-slim is made locally with debootstrap from Debian's mirror, so
# nothing comes from a container registry. The gateway's container gets its
# own network namespace (ip netns) joined to this machine by a veth pair:
# clients reach it from outside, as another machine would, at
# https://fhir.example.org:8443 (the name resolved to the namespace's
# address).
#
# What it checks, each printed as "ok N - ..." or "not ok N - ...":
#   the image runs as the unprivileged user crosswalk, listening on
#   0.0.0.0:8443 with TLS and auth; the README's three commands (client new
#   in a container, the gateway with the printed entry, a token from
#   `crosswalk token` in a container, then the curl line) give 200; no token
#   gives 401 with WWW-Authenticate; a forged token 401; plain HTTP gets no
#   HTTP answer; the shipped configuration without a client exits 2; the
#   health check passes; `podman stop` ends it with status 0.
#
# Not part of `make test`: it downloads a Debian base system (about 40 MB)
# and the image's packages, and builds the project twice (image stages).
# Run as root from the repository root:
#   tools/image-check.sh            build (reusing the base image) and check
#   tools/image-check.sh --reuse    the same without rebuilding an image built before
#   tools/image-check.sh --clean    remove its work directory and stop
# Environment: CW_IMAGE_WORK (work directory, default /var/tmp/crosswalk-image),
# CW_DEBIAN_MIRROR (default http://deb.debian.org/debian).
# Needs: buildah podman debootstrap iproute2 curl openssl (apt-get install).
set -euo pipefail

work=${CW_IMAGE_WORK:-/var/tmp/crosswalk-image}
mirror=${CW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=docker.io/library/debian:12-slim # FROM in docker/Dockerfile
image=localhost/crosswalk
host=fhir.example.org # the name docker/README.md uses
ns=cwimg$$ # also the veth names: at most 15 characters
net=10.231.$((RANDOM % 250)).0 # a /30 for the veth pair
hostip=${net%.0}.1
ctip=${net%.0}.2

if [ "$(id -u)" -ne 0 ]; then
	echo "tools/image-check.sh: run as root (debootstrap, ip netns, rootful podman)" >&2
	exit 2
fi
[ -f docker/Dockerfile ] || {
	echo "tools/image-check.sh: run from the repository root" >&2
	exit 2
}
reuse=""
case "${1:-}" in
--clean)
	rm -rf "$work"
	exit 0
	;;
--reuse) reuse=1 ;;
esac
for t in buildah podman debootstrap ip curl openssl; do
	command -v "$t" >/dev/null || {
		echo "tools/image-check.sh: $t is missing (apt-get install buildah podman debootstrap iproute2 curl openssl)" >&2
		exit 2
	}
done

mkdir -p "$work"
# Its own image store, so that the machine's containers are not touched.
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
# runc, cgroupfs, file events: no systemd needed, and crun refuses a hybrid
# cgroup hierarchy. Explicit limits: podman would otherwise raise the open
# files limit to 1048576, above what an unprivileged-limits host allows.
pm() { podman "${store[@]}" --runtime runc --cgroup-manager cgroupfs --events-backend file "$@"; }
limits=(--ulimit nofile=16384:16384 --ulimit nproc=8192:8192)
bh() { buildah "${store[@]}" "$@"; }

n=0
fails=0
ok() {
	n=$((n + 1))
	echo "ok $n - $*"
}
notok() {
	n=$((n + 1))
	fails=$((fails + 1))
	echo "not ok $n - $*"
}
check() { # check "what" command...: ok when the command succeeds
	local what=$1
	shift
	if "$@"; then ok "$what"; else notok "$what"; fi
}

t0=$(date +%s)
# ---------------------------------------------------------------- base image
if ! pm image exists "$base"; then
	if [ ! -d "$work/rootfs" ]; then # a finished debootstrap is kept until imported
		echo "# base: debootstrap --variant=minbase bookworm from $mirror"
		rm -rf "$work/rootfs.part"
		debootstrap --variant=minbase bookworm "$work/rootfs.part" "$mirror" >"$work/debootstrap.log" 2>&1 || {
			tail -20 "$work/debootstrap.log" >&2
			exit 1
		}
		mv "$work/rootfs.part" "$work/rootfs"
	fi
	# The sources of Debian's own images: the release, its updates and security.
	rm -f "$work/rootfs/etc/apt/sources.list"
	cat >"$work/rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	chroot "$work/rootfs" apt-get clean
	rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
	tar -C "$work/rootfs" --numeric-owner -cf - . |
		pm import -q --change 'CMD ["bash"]' - "$base" >/dev/null
	rm -rf "$work/rootfs"
fi
echo "# base image $base: $(pm image inspect --format '{{.Size}}' "$base") bytes"

# ---------------------------------------------------------------- the image
t1=$(date +%s)
# Docker's image format: the OCI format has no HEALTHCHECK, which buildah
# would drop (with a warning) from an OCI image.
if [ -n "$reuse" ] && pm image exists "$image"; then
	ok "the image $image is there (--reuse: not rebuilt)"
elif bh bud --isolation chroot --format docker --pull=never --layers=false -f docker/Dockerfile -t "$image" . \
	>"$work/build.log" 2>&1; then
	ok "docker/Dockerfile builds ($(($(date +%s) - t1)) s; log $work/build.log)"
else
	notok "docker/Dockerfile builds (log $work/build.log)"
	tail -30 "$work/build.log" | sed 's/^/# /'
	exit 1
fi
echo "# image $image: $(pm image inspect --format '{{.Size}}' "$image") bytes"

# ---------------------------------------------------------------- the network
# The container's namespace, joined to this one by a veth pair: what the
# client side uses is this machine's stack, as another machine's would be.
cleanup() {
	pm rm -f -t 0 crosswalk >/dev/null 2>&1 || true
	pm volume rm -f crosswalk-data >/dev/null 2>&1 || true
	ip netns del "$ns" 2>/dev/null || true
	ip link del "${ns}h" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$ns"
ip link add "${ns}h" type veth peer name "${ns}c"
ip link set "${ns}c" netns "$ns"
ip addr add "$hostip/30" dev "${ns}h"
ip link set "${ns}h" up
ip -n "$ns" addr add "$ctip/30" dev "${ns}c"
ip -n "$ns" link set "${ns}c" up
ip -n "$ns" link set lo up
netns=(--network "ns:/run/netns/$ns" --add-host "$host:$ctip")
resolve=(--resolve "$host:8443:$ctip")

# ---------------------------------------------------------------- README, verbatim but for docker -> podman
d="$work/client"
rm -rf "$d"
mkdir -p "$d"
cd "$d"
mkdir -p etc/tls keys && cp "$OLDPWD/docker/crosswalk.json" etc/
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
	-subj /CN=$host -addext subjectAltName=DNS:$host \
	-keyout etc/tls/key.pem -out etc/tls/cert.pem 2>/dev/null && chmod 0644 etc/tls/key.pem

# The shipped configuration has no client: the gateway refuses to start.
set +e
pm run "${limits[@]}" --rm "${netns[@]}" -v "$PWD/etc:/etc/crosswalk:ro" "$image" >"$work/noclient.log" 2>&1
rc=$?
set -e
if [ $rc -eq 2 ] && grep -q auth "$work/noclient.log"; then
	ok "without a client in auth.clients the gateway exits 2: $(grep -m1 auth "$work/noclient.log")"
else
	notok "without a client the gateway exits 2 (exit $rc: $(tail -1 "$work/noclient.log"))"
fi

# 1. a client: its key pair in keys/, its entry printed
t2=$(date +%s)
pm run "${limits[@]}" --rm --user "$(id -u)" -v "$PWD/keys:/keys" "$image" \
	client new billing-app --dir /keys --purpose billing \
	--url https://$host:8443 --ca /keys/cert.pem >"$work/client-new.out"
entry=$(grep -m1 '^ *{"client_id"' "$work/client-new.out" | sed 's/^ *//')
if [ -n "$entry" ] && [ -f keys/billing-app.pem ]; then
	ok "1. client new writes keys/billing-app.pem and prints the entry $entry"
else
	notok "1. client new (output: $(cat "$work/client-new.out"))"
	exit 1
fi
# paste the printed entry into auth.clients of etc/crosswalk.json
python3 - "$entry" etc/crosswalk.json <<'EOF'
import json, sys
entry, path = json.loads(sys.argv[1]), sys.argv[2]
cfg = json.load(open(path))
cfg["auth"]["clients"].append(entry)
json.dump(cfg, open(path, "w"), indent=2)
EOF
cp etc/tls/cert.pem keys/

# 2. the gateway
pm volume create crosswalk-data >/dev/null
pm run "${limits[@]}" -d --name crosswalk "${netns[@]}" \
	-v crosswalk-data:/var/lib/crosswalk -v "$PWD/etc:/etc/crosswalk:ro" "$image" >/dev/null
up=""
for _ in $(seq 1 100); do
	if curl -s -o /dev/null --cacert etc/tls/cert.pem "${resolve[@]}" https://$host:8443/healthz; then
		up=1
		break
	fi
	sleep 0.1
done
if [ -n "$up" ]; then
	ok "2. the gateway serves https://$host:8443 from its container ($ctip, its own network namespace)"
else
	notok "2. the gateway serves (its log:)"
	pm logs crosswalk 2>&1 | tail -20 | sed 's/^/# /'
	exit 1
fi
listen=$(ip netns exec "$ns" ss -Hltn 'sport = :8443' | awk '{print $4}')
check "it listens on $listen" test "$listen" = "0.0.0.0:8443"
who=$(pm exec crosswalk id -un)
check "it runs as $who" test "$who" = crosswalk
pm logs crosswalk 2>&1 | sed -n '1,3p' | sed 's/^/# gateway: /'

# 3. a request with a token (the curl line client new printed)
token=$(pm run "${limits[@]}" --rm "${netns[@]}" --user "$(id -u)" -v "$PWD/keys:/keys" "$image" \
	token --client billing-app --key /keys/billing-app.pem --url https://$host:8443 --ca /keys/cert.pem)
code=$(curl -s -o "$work/read.json" -w '%{http_code}' --cacert etc/tls/cert.pem "${resolve[@]}" \
	-H "Authorization: Bearer $token" "https://$host:8443/fhir/Patient?_count=1")
check "3. crosswalk token then curl: GET /fhir/Patient?_count=1 over TLS answers $code ($(head -c 60 "$work/read.json")...)" \
	test "$code" = 200

code=$(curl -s -D "$work/anon.hdr" -o /dev/null -w '%{http_code}' --cacert etc/tls/cert.pem "${resolve[@]}" \
	"https://$host:8443/fhir/Patient?_count=1")
check "without a token: $code, $(grep -i '^www-authenticate' "$work/anon.hdr" | tr -d '\r')" \
	sh -c "[ $code = 401 ] && grep -qi '^www-authenticate: Bearer' '$work/anon.hdr'"
forged="${token%.*}.$(printf 'x%.0s' $(seq 1 86))"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert etc/tls/cert.pem "${resolve[@]}" \
	-H "Authorization: Bearer $forged" "https://$host:8443/fhir/Patient?_count=1")
check "with a forged signature: $code" test "$code" = 401
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$ctip:8443/fhir/metadata" || true)
check "plain HTTP gets no HTTP answer ($code)" test "$code" = 000
# The protocol versions: TLS 1.3 by default; TLS 1.1 refused by the server
# (the client side allowed it: security level 0).
p13=$(openssl s_client -connect "$ctip:8443" -servername $host </dev/null 2>/dev/null |
	sed -n 's/^ *Protocol *: *//p; s/^New, \(TLSv[0-9.]*\),.*/\1/p' | head -1)
check "TLS negotiated by default: $p13" test "$p13" = TLSv1.3
if openssl s_client -connect "$ctip:8443" -servername $host -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
	</dev/null >"$work/tls11.log" 2>&1; then
	notok "TLS 1.1 is refused ($(grep -m1 Protocol "$work/tls11.log"))"
else
	ok "TLS 1.1 is refused ($(grep -m1 -o 'alert [a-z ]*' "$work/tls11.log" || echo 'no handshake'))"
fi
check "the health check passes" pm healthcheck run crosswalk
echo "# client side: README commands took $(($(date +%s) - t2)) s"

set +e
pm stop -t 15 crosswalk >/dev/null
set -e
st=$(pm inspect --format '{{.State.ExitCode}}' crosswalk)
check "podman stop (SIGTERM) ends the gateway with status $st" test "$st" = 0

echo "# $n checks, $fails failed; $(($(date +%s) - t0)) s in all"
[ $fails -eq 0 ]
