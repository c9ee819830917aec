"""The suite does not depend on the shell it was started from (tests/conftest.py, families.py)."""

from __future__ import annotations

from tests.families import SESSION_ENVIRONMENT, SHELL_VARIABLES, run_python, subprocess_env


def test_the_session_has_none_of_the_shells_variables():
    assert SESSION_ENVIRONMENT, "tests/conftest.py did not record the session's environment"
    assert not [name for name in SHELL_VARIABLES if name in SESSION_ENVIRONMENT]


def test_subprocesses_get_no_strategy_variables_and_write_no_bytecode(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    monkeypatch.setenv("TPU_NAME", "somewhere")
    env = subprocess_env({"TMPDIR": "/x"})
    assert "TF_CONFIG" not in env and "TPU_NAME" not in env
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["TMPDIR"] == "/x"
    assert subprocess_env({"TF_CONFIG": "{}"})["TF_CONFIG"] == "{}"  # unless a test sets them
    code = "import os, sys; print(sys.dont_write_bytecode, 'TF_CONFIG' in os.environ)"
    result = run_python(code)
    assert result.returncode == 0 and result.stdout.split() == ["True", "False"], result.stderr
