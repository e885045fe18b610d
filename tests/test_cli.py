import subprocess
import sys

from guardstack.cli import main


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_expected_errors_are_one_line_without_traceback(tmp_path, capsys):
    bad = tmp_path / "p.yaml"
    bad.write_text("prompt:\n  default: {threshold: 7}\n")
    assert main(["policy", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("guardstack: error: ")
    assert "prompt.default.threshold" in err and "Traceback" not in err


def test_a_closed_pipe_ends_quietly():
    # `guardstack ... | head -c 10`: the reader leaves early. Enough output to
    # overflow the pipe buffer, so the writer really meets the closed pipe.
    code = ("from guardstack.cli import main\n"
            "codes = {main(['taxonomy', '--json']) for _ in range(40)}\n"
            "assert 141 in codes, codes\n")
    proc = subprocess.run(
        f"{sys.executable} -c \"{code}\" | head -c 10",
        shell=True, capture_output=True, text=True, check=False,
    )
    assert len(proc.stdout) == 10
    assert "Traceback" not in proc.stderr, proc.stderr
