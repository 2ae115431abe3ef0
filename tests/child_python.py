"""Run Python code in a child process that imports the same pyrnn as the tests (the installed
package, not the source tree it may be run from), with extra environment variables."""
import os
import subprocess
import sys

import pyrnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pyrnn.__file__)))


def run(code: str, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
                **env)
    return subprocess.run([sys.executable, "-c", code], env=full, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
