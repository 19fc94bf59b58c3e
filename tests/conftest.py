import os
import sys
from pathlib import Path

# tests/helpers.py is imported as `tests.helpers`; make the repo root importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# CLASSIFIER_TEST_BUILD=build/compiled runs the tests against the mypyc-compiled core that
# scripts/compile-core.sh builds there (scripts/test.sh does, for tests/unit). It is imported
# here, first: pytest puts the checkout (and its plain-Python worker/) back in front of
# sys.path when it imports the test modules.
_BUILD = os.environ.get("CLASSIFIER_TEST_BUILD")
if _BUILD:
    sys.path.insert(0, str(Path(_BUILD).resolve()))
    import worker.classify.core  # noqa: F401
