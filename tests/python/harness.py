"""What the SDK scripts share: the built examples, starting a process that prints its address,
a gateway over a config text, and running named checks that all report before the exit code.
"""
import os
import subprocess
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "examples")


def start(args, marker):
    """Starts `args`; returns the process and the address it printed after `http://` on the
    first line containing `marker`."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if marker in line:
            return proc, line.strip().split("http://", 1)[1]
    raise RuntimeError(f"{args[0]} exited before printing {marker!r}")


def start_gateway(config):
    """The example gateway over a config text, on a free port: the process and its
    `host:port/api/v1`."""
    cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    cfg.write(config)
    cfg.close()
    return start([os.path.join(EXAMPLES, "gateway"), "--config", cfg.name, "--listen", "127.0.0.1:0"], "listening on")


def start_fake_upstream():
    """The example fake OpenAI-compatible upstream: the process and its `host:port`."""
    return start([os.path.join(EXAMPLES, "fake_upstream"), "127.0.0.1:0"], "listening on")


def run_checks(checks):
    """Runs each (name, function), printing ok or FAIL with the traceback; returns the exit
    code (0 when every check passed)."""
    passed, failed = 0, 0
    for name, fn in checks:
        try:
            fn()
            passed += 1
            print(f"ok   {name}")
        except Exception:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
