#!/usr/bin/env bash
# build.sh: build regent's .deb and .rpm packages with nfpm (packaging/nfpm.yaml).
#
# Run from anywhere; works in the repository root. Environment (all optional):
#   REGENT_VERSION     package version; default from git (see version below)
#   REGENT_ARCHES      GOARCHes to package; default "amd64 arm64"
#   SOURCE_DATE_EPOCH  timestamp of every file; default the last commit's time
#   BUILD_DIR          scratch space; default _build
#   DIST_DIR           where packages go; default dist
#   TOOLS_DIR          where the pinned nfpm is built; default $BUILD_DIR/tools
# Output: $DIST_DIR/regent_<version>_<arch>.deb and
#         $DIST_DIR/regent-<version>-1.<rpm arch>.rpm
# Two runs on the same commit give byte-identical packages.
set -euo pipefail

cd "$(dirname "$0")/.."

NFPM_VERSION=v2.45.2
BUILD_DIR=${BUILD_DIR:-_build}
DIST_DIR=${DIST_DIR:-dist}
TOOLS_DIR=${TOOLS_DIR:-$BUILD_DIR/tools}
ARCHES=${REGENT_ARCHES:-amd64 arm64}
GO=${GO:-go}

# version prints the package version. A tag vX.Y.Z gives X.Y.Z; commits after
# it give X.Y.Z+git<n>.<sha>; with no tag, 0.0.0~git<commit time>.<sha> (the
# "~" sorts before any release). A dirty tree adds ".dirty".
version() {
	local desc sha ts v
	sha=$(git rev-parse --short=12 HEAD)
	if desc=$(git describe --tags --match 'v[0-9]*' --long 2>/dev/null); then
		# v1.2.3-4-gabcdef
		local tag n
		tag=${desc%-*-g*}
		n=${desc%-g*}
		n=${n##*-}
		v=${tag#v}
		[[ $n != 0 ]] && v+="+git$n.$sha"
	else
		ts=$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd)
		v="0.0.0~git$ts.$sha"
	fi
	if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
		v+=".dirty"
	fi
	echo "$v"
}

VERSION=${REGENT_VERSION:-$(version)}
if [[ ! $VERSION =~ ^[0-9][0-9A-Za-z.+~]*$ ]]; then
	echo "build.sh: version '$VERSION' is not a valid deb and rpm version" >&2
	exit 2
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
COMMIT=${REGENT_COMMIT:-$(git rev-parse HEAD)}
DATE=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
MAINTAINER="regent maintainers <regent@regent-ha.invalid>"

gen=$BUILD_DIR/pkg
mkdir -p "$gen" "$DIST_DIR" "$TOOLS_DIR"

# nfpm, pinned, built once into the build dir (not imported by the module).
nfpm=$TOOLS_DIR/nfpm-$NFPM_VERSION
if [[ ! -x $nfpm ]]; then
	GOBIN=$(realpath "$TOOLS_DIR") "$GO" install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
	mv "$TOOLS_DIR/nfpm" "$nfpm"
fi

ldflags="-s -w -X github.com/regent-ha/regent/appliance.Version=$VERSION"
for arch in $ARCHES; do
	echo "build.sh: regent $VERSION linux/$arch"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch "$GO" build -trimpath -ldflags "$ldflags" \
		-o "$gen/$arch/regent" ./cmd/regent
done

# The man page, from the help of a binary that runs here.
host=$("$GO" env GOARCH)
manbin=$gen/$host/regent
if [[ ! -x $manbin ]]; then
	manbin=$gen/host/regent
	CGO_ENABLED=0 "$GO" build -trimpath -ldflags "$ldflags" -o "$manbin" ./cmd/regent
fi
packaging/mkman.sh "$manbin" "$VERSION" "$DATE" | gzip -9n >"$gen/regent.1.gz"

# The changelog: one entry for this build (deb changelog.Debian.gz, rpm
# %changelog). Release notes live in the repository, not here.
cat >"$gen/changelog.yml" <<YAML
- semver: "$VERSION"
  date: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  packager: "$MAINTAINER"
  deb:
    urgency: medium
    distributions: [stable]
  changes:
    - commit: "$COMMIT"
      note: "Built from git commit ${COMMIT:0:12}."
YAML

# nfpm does not expand variables in "changelog": point it at this build's.
sed "s|^changelog: .*|changelog: $gen/changelog.yml|" packaging/nfpm.yaml >"$gen/nfpm.yaml"

for arch in $ARCHES; do
	for fmt in deb rpm; do
		REGENT_VERSION=$VERSION REGENT_ARCH=$arch REGENT_BIN=$gen/$arch/regent REGENT_GEN=$gen \
			"$nfpm" package --config "$gen/nfpm.yaml" --packager "$fmt" --target "$DIST_DIR/"
	done
done
