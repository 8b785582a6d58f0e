"""`ferry serve --help` tells an operator what a new user asks first: where logs go, what the signals do, the exit
statuses and the rule for starting as root."""
import subprocess

from ferrytest import ferry_bin


def test_serve_help_names_logs_signals_exit_statuses_and_the_root_rule():
    out = subprocess.run([ferry_bin(), "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "standard error" in text
    for signal in ("SIGHUP", "SIGTERM", "SIGINT"):
        assert signal in text
    assert "Exit status" in text and "0 stopped" in text and "2 the configuration file is invalid" in text
    assert "run_as_root" in text and "user" in text
