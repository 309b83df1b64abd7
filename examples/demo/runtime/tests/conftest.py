import os
import sys

# Make the demo's `src/` importable without installing it.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src"))
