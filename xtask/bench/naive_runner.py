"""The naive reference runner of `cargo xtask bench`: a harness without Warden's bounded capture.

It runs pytest with both output streams captured whole in memory
(`subprocess.run(capture_output=True)`), then keeps only the last 50 KiB of each (Warden's
default cap), as a runner that truncates afterwards would. The bench measures this process's
peak memory, the way it measures Warden's.

usage: naive_runner.py ROOT PYTHON_ARGS...   (Warden's own interpreter arguments, `-P -c
BOOTSTRAP` and pytest's; run under this same interpreter)
"""

import subprocess
import sys

CAP = 50 * 1024


def main() -> int:
    root, *args = sys.argv[1:]
    done = subprocess.run(
        [sys.executable, *args],
        cwd=root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    kept_out = done.stdout[-CAP:]
    kept_err = done.stderr[-CAP:]
    print(
        f"pytest exited {done.returncode}; kept {len(kept_out)} of {len(done.stdout)} stdout "
        f"bytes and {len(kept_err)} of {len(done.stderr)} stderr bytes"
    )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
