# packaging/package.mk: the package targets, included by the root Makefile
# ("include packaging/package.mk"). See docs/packaging.md.

# Debian packages the package test needs; installed when missing.
PACKAGE_TEST_TOOLS := debootstrap lintian rpm shellcheck systemd

.PHONY: package
package: ## build dist/regent_<version>_{amd64,arm64}.deb and regent-<version>-1.{x86_64,aarch64}.rpm
	packaging/build.sh

.PHONY: package-test
package-test: package ## lint the packages, install them into rpm roots and a Debian rootfs under a real systemd (root)
	@missing=""; for p in $(PACKAGE_TEST_TOOLS); do \
		dpkg-query -W -f '$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi
	packaging/test/package-test.sh
