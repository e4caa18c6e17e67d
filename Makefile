# storeedge: the two commands of the README are `make demo` and `make test`.
.PHONY: setup test test-slow test-faults test-image demo bench

setup:
	bash scripts/setup.sh

test:
	bash scripts/test.sh

test-slow: setup
	.venv/bin/python -m pytest -m slow
	STOREEDGE_PURE=1 .venv/bin/python -m pytest -m slow

# The network fault rig's full scenarios (root, network namespaces; see tests/faults/).
test-faults: setup
	.venv/bin/python -m pytest -m slow tests/faults

test-image: setup
	.venv/bin/python -m pytest -m image

demo: setup
	.venv/bin/storeedge demo --duration $${DURATION:-60}
