# One command per habit. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast lint services fmt bench image cluster

# The gateway and, beside it, the demo kit (demo/: demo data, the platforms'
# simulators, `xyd demo`), which a production install (`pip install .`) leaves out.
$(STAMP): pyproject.toml demo/pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip>=24'
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]' -e ./demo
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/xyd db upgrade
	$(BIN)/xyd demo seed --enterprises 2000 --seed 42 --reset
	@# The platforms' demo traffic and the demo identity provider (enterprise
	@# login) run beside the gateway and stop with it.
	@echo "enterprise logins: .xyd/demo/enterprise-users.csv; identity provider: .xyd/demo/oidc/issuer"
	umask 077; $(BIN)/xyd demo platforms > .xyd/demo/platforms.log 2>&1 & pid=$$!; \
	  $(BIN)/xyd demo oidc > .xyd/demo/oidc.log 2>&1 & oidc=$$!; \
	  trap 'kill $$pid $$oidc 2>/dev/null' EXIT INT TERM; $(BIN)/xyd serve

# Debian's PostgreSQL, Redis and Chromium (with CJK fonts for the dashboard's
# screenshots and the printable report), pango for WeasyPrint's PDF and
# poppler-utils to look at it, prometheus for its promtool (a 19 MB
# download) to check the alert rules, the cluster's engines (Patroni on
# etcd, Redis Sentinel, HAProxy; iptables to cut one host's path to another),
# and buildah and mmdebstrap for the gateway's image (deploy/image: a Debian
# base, no registry; Debian's python3 with pip builds the image's wheels),
# installed when missing; the tests start and stop their own throw-away servers
# and a headless browser from these binaries.
services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null \
	  && command -v redis-sentinel >/dev/null && command -v chromium >/dev/null \
	  && test -d /usr/share/fonts/opentype/noto \
	  && command -v pdftoppm >/dev/null && ldconfig -p | grep -q libpangoft2-1.0 \
	  && command -v promtool >/dev/null && command -v buildah >/dev/null \
	  && command -v mmdebstrap >/dev/null && /usr/bin/python3 -m pip --version >/dev/null 2>&1 \
	  && command -v patroni >/dev/null \
	  && command -v etcd >/dev/null && command -v etcdctl >/dev/null \
	  && command -v haproxy >/dev/null \
	  && command -v iptables >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	       --no-install-recommends postgresql redis-server redis-sentinel chromium \
	       fonts-liberation fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 poppler-utils prometheus \
	       buildah mmdebstrap python3-pip patroni etcd-server etcd-client haproxy iptables >/dev/null; }

# The production topology on this machine, each host a network namespace (root
# only; deploy/cluster/): etcd, PostgreSQL under Patroni on two hosts, Redis with
# Sentinel on three, two gateway hosts, the monitor, HAProxy and a client host.
# Up in about 30 s; it prints how to reach it, and Ctrl-C takes it all down.
# Beside another: make cluster CLUSTER_ARGS='--prefix xyd2 --dir .xyd/cluster2'.
# gw2 from the image's root (read-only, uid 10001): CLUSTER_ARGS=--gateway-from-image.
cluster: $(STAMP) services
	$(BIN)/python -m deploy.cluster run $(CLUSTER_ARGS)

# Two pytest workers, a test file each: most tests wait on servers and
# subprocesses, so two share the two cores well. Each worker starts its own
# throw-away PostgreSQL and Redis.
TEST_WORKERS ?= 2
# 1: the dependency audit passes, warning, when it reaches no vulnerability
# service (.ci/audit_deps.py). This workplace's machines reach none.
AUDIT_DEPS_OFFLINE ?= 1
# The Kubernetes version the manifests are validated against (kubernetes-validate
# ships schemas up to its own version).
KUBERNETES_VERSION ?= 1.37.0

test: $(STAMP) services lint
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

# The inner loop: the suite without the browser, the fuzzer, the faults, the
# the cluster, the load-test tools and the image (markers in pyproject.toml), and
# without lint; `make test` runs them all.
test-fast: $(STAMP) services
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile \
	  -m 'not browser and not fuzz and not faults and not load and not image and not cluster'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gateway adapters policies loadtests demo/xyd_demo deploy
	@# Packages form layers: an import cycle between two of them fails.
	$(BIN)/pytest -q -p no:cacheprovider tests/test_import_cycles.py
	@# Known vulnerabilities in the pinned dependencies fail, and so does an
	@# audit that audited nothing. These machines reach no vulnerability service
	@# (PyPI's index only), so the run says it is air-gapped and the audit warns
	@# instead; make lint AUDIT_DEPS_OFFLINE=0 where one is reachable.
	XYD_AUDIT_DEPS_OFFLINE=$(AUDIT_DEPS_OFFLINE) $(BIN)/python .ci/audit_deps.py constraints.txt
	@# The Kubernetes manifests rendered (deploy/render.py: no kustomize can be
	@# installed here) and every object checked strictly against the schemas.
	$(BIN)/python -m deploy.validate --kubernetes-version $(KUBERNETES_VERSION)

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The gateway against a bare FastAPI endpoint over HTTP, and the other load
# figures, into loadtests/RESULTS.md (under 10 minutes on 2 cores). wrk is
# Debian's, installed when missing with the PostgreSQL and Redis the run
# starts its own servers from. Extra flags: make bench BENCH_ARGS='--enterprises 1000000'.
bench: $(STAMP)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null \
	  && command -v wrk >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	       --no-install-recommends postgresql redis-server wrk >/dev/null; }
	$(BIN)/python -m loadtests.bench $(BENCH_ARGS)

# The gateway's OCI image, xyd-gateway:<version> and :latest, in buildah's
# storage (as root), and its root filesystem in .xyd/image/rootfs with the
# config a runtime acts on in .xyd/image/image.json (deploy/image/). The Debian
# base is cached in .xyd/image-cache by its package list: the first build
# takes a few minutes, later ones reuse it, and an unchanged tree reuses the image.
image: $(STAMP) services
	$(BIN)/python -m deploy.image export
