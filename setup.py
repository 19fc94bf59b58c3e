"""Build hook for the optional compiled classifier core; everything else is in pyproject.toml.

With ``CLASSIFIER_COMPILE=1`` the modules of the pure core package ``worker/classify`` (no
I/O, fully typed) are compiled to C extensions with mypyc, which runs them about 1.2x faster;
they behave the same, and the unit tests run against both builds (``scripts/test.sh``).
Without it (the default, and every editable install) the package is plain Python. The
compiled build needs mypy and a C compiler in the build environment, so build it without
isolation:

    pip install "setuptools>=69" wheel "mypy>=1.11"
    CLASSIFIER_COMPILE=1 pip wheel --no-build-isolation --no-deps --wheel-dir dist .
"""

import os
from pathlib import Path

from setuptools import setup

# Exactly the pure core package: decode, normalize, classify and the tables they read. A new
# module there is compiled too (and must therefore be fully typed).
COMPILED_MODULES = sorted(str(p) for p in Path("worker/classify").glob("*.py"))

ext_modules = []
if os.environ.get("CLASSIFIER_COMPILE", "0") == "1":
    from mypyc.build import mypycify

    ext_modules = mypycify(COMPILED_MODULES, opt_level="3")

setup(ext_modules=ext_modules)
