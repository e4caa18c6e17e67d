# cython: language_level=3
"""Build smoke kernel: sums a const uint8 memoryview (used by tests of the backend switch)."""
BACKEND = "cython"


def byte_sum(const unsigned char[::1] data) -> int:
    """Sum of the bytes of ``data``."""
    cdef Py_ssize_t i
    cdef unsigned long long total = 0
    with nogil:
        for i in range(data.shape[0]):
            total += data[i]
    return total
