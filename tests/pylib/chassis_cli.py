"""The chassis binary as the Python test drivers call it: set BINARY once, then run(*args) returns
stdout and turns a non-zero exit into a test failure that shows stderr."""
import subprocess

BINARY = None


def run(*args, timeout=300, **kw):
    p = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise AssertionError(f'chassis {" ".join(args)} failed:\n{p.stderr}')
    return p.stdout
