"""Build and install storeedge.

One import root, ``storeedge``: the top-level folders ``firmware/``, ``native/``,
``drivers/`` and ``server/`` are mapped into it (``storeedge.firmware`` ...).  Every
``native/_<name>_cy.pyx`` is compiled as ``storeedge.native._<name>_cy``; its pure
twin ``native/_<name>_py.py`` is used when ``STOREEDGE_PURE=1``.

Compiler flags: ``-O3`` plus ``STOREEDGE_CFLAGS`` from the environment (for example
``-march=armv8-a`` on the device build). No x86-only intrinsics are used anywhere.
"""
import glob
import os

from setuptools import Extension, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
TOP_FOLDERS = ("firmware", "native", "drivers", "server")


def _packages():
    packages = ["storeedge"]
    package_dir = {"storeedge": "storeedge"}
    for top in TOP_FOLDERS:
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, top)):
            if "__init__.py" not in files or "__pycache__" in dirpath:
                continue
            rel = os.path.relpath(dirpath, ROOT)
            name = "storeedge." + rel.replace(os.sep, ".")
            packages.append(name)
            package_dir[name] = rel
    return packages, package_dir


def _extensions():
    import numpy
    from Cython.Build import cythonize

    extra = ["-O3"] + os.environ.get("STOREEDGE_CFLAGS", "").split()
    exts = []
    for pyx in sorted(glob.glob(os.path.join("native", "_*_cy.pyx"))):
        mod = os.path.splitext(os.path.basename(pyx))[0]
        exts.append(Extension(
            "storeedge.native." + mod, [pyx],
            include_dirs=[numpy.get_include(), "native"],
            extra_compile_args=extra,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        ))
    return cythonize(exts, language_level=3, include_path=["native"],
                     compiler_directives={"boundscheck": False, "wraparound": False,
                                          "cdivision": True, "initializedcheck": False})


PACKAGES, PACKAGE_DIR = _packages()

setup(
    name="storeedge",
    version="0.1.0",
    description="Firmware for a store's edge devices: checkout, dock door, freezer, gateway",
    python_requires=">=3.11",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={"": ["*.pxd", "*.pyx", "*.json", "*.tflite", "*.yaml", "templates/*.html",
                      "static/*.css", "static/*.js"]},
    ext_modules=_extensions(),
    install_requires=[
        "numpy>=2.0,<3",
        "paho-mqtt>=2.1,<3",
        "PyYAML>=6,<7",
        "ruamel.yaml>=0.18,<0.20",   # console commits keep the config file's comments and layout
        "pyserial>=3.5,<4",
        "gpiozero>=2.0,<3",
        "cryptography>=42",
        "msgspec>=0.18,<1",   # compiled envelope decode + check on the event path (pure fallback)
        "zxing-cpp>=2.2,<4",
        "ai-edge-litert>=1.2,<3",
        "Pillow>=10",
        "av>=12",   # PyAV (bundled FFmpeg): checkout replay of recorded lane video
        "psycopg[binary]>=3.1,<4",
        "tzdata",   # zoneinfo on images without /usr/share/zoneinfo (freezer HACCP schedules)
        "starlette>=0.37", "jinja2>=3.1", "uvicorn>=0.29", "python-multipart>=0.0.9",  # page
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100",
                 "selenium>=4.20", "httpx>=0.27"],
        "bench": ["opencv-python-headless>=4.9"],
    },
    entry_points={"console_scripts": ["storeedge=storeedge.cli:main"]},
)
