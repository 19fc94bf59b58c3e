import sys
from pathlib import Path

# tests/helpers.py is imported as `tests.helpers`; make the repo root importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
