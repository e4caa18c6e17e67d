"""Native kernels (Cython) and their pure-Python twins.

Each kernel ``foo`` has three files:

* ``native/_foo_cy.pyx`` -- the private Cython kernel (typed ``const`` memoryviews, ``nogil``);
* ``native/_foo_py.py``  -- the pure numpy/Python twin, same names, same results;
* ``native/foo.py``      -- the thin public wrapper that validates and picks the backend with
  :func:`storeedge.native._backend.load_kernel`.

``STOREEDGE_PURE=1`` forces every twin.  Without it a missing compiled kernel is an error, never
a silent fallback.
"""
