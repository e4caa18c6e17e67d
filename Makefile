# storeedge: the two commands of the README are `make demo` and `make test`.
.PHONY: setup test test-slow test-image demo bench

setup:
	bash scripts/setup.sh

test:
	bash scripts/test.sh

test-slow: setup
	.venv/bin/python -m pytest -m slow
	STOREEDGE_PURE=1 .venv/bin/python -m pytest -m slow

test-image: setup
	.venv/bin/python -m pytest -m image

demo: setup
	.venv/bin/storeedge demo --duration $${DURATION:-60}
