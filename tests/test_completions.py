"""The committed completion scripts are exactly what the installed program generates, they pass
their shell's syntax check, and they complete real candidates."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import BIN

pytestmark = pytest.mark.e2e

COMPLETIONS = Path(__file__).parent.parent / "completions"
SCRIPTS = {"bash": "kazoo-tail.bash", "zsh": "_kazoo-tail", "fish": "kazoo-tail.fish"}


def generate(shell: str) -> str:
    env = {**os.environ, "_KAZOO_TAIL_COMPLETE": f"{shell}_source"}
    return subprocess.run([str(BIN)], env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_committed_script_is_what_the_program_generates(shell: str) -> None:
    committed = (COMPLETIONS / SCRIPTS[shell]).read_text()
    # click 8.1 (Python 3.9) ends each script with one more blank line than click 8.2.
    assert committed.rstrip("\n") == generate(shell).rstrip("\n"), (
        f"completions/{SCRIPTS[shell]} is stale; regenerate it with "
        f"_KAZOO_TAIL_COMPLETE={shell}_source kazoo-tail > completions/{SCRIPTS[shell]}"
    )


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_script_passes_its_shells_syntax_check(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (CI installs it)")
    check = subprocess.run(
        [shell, "-n", str(COMPLETIONS / SCRIPTS[shell])], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def complete(words: str, cword: int) -> list[str]:
    env = {
        **os.environ,
        "_KAZOO_TAIL_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
    }
    out = subprocess.run([str(BIN)], env=env, capture_output=True, text=True, check=True).stdout
    return [line.split(",", 1)[1] for line in out.splitlines()]


def test_options_and_commands_complete() -> None:
    assert complete("kazoo-tail --bi", 1) == ["--binding"]
    assert set(complete("kazoo-tail lo", 1)) == {"login", "logout"}
    assert complete("kazoo-tail -b x -o ", 4) == ["pretty", "json"]
    assert "--event-rate" in complete("kazoo-tail demo --ev", 2)
    assert complete("kazoo-tail simulator --crossbar-p", 2) == ["--crossbar-port"]


def test_bindings_complete_from_the_remembered_catalogue(isolated_env: Path) -> None:
    """The server's catalogue, as 'bindings' saved it, completes in demo too (no --config-dir
    there: the environment's config dir holds)."""
    from kazoo_tail.auth.store import ConfigStore

    ConfigStore(isolated_env).save_catalogue({"call": ["call.ZZTOP_EVENT.{CALL_ID}"]})
    assert complete("kazoo-tail demo -b call.ZZ", 3) == ["call.ZZTOP_EVENT.*"]
    assert complete("kazoo-tail -b call.ZZ", 2) == ["call.ZZTOP_EVENT.*"]


def test_bash_script_completes_when_sourced() -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    script = f"""
source {COMPLETIONS / SCRIPTS["bash"]}
COMP_WORDS=(kazoo-tail --bin); COMP_CWORD=1
_kazoo_tail_completion kazoo-tail
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = {**os.environ, "PATH": f"{BIN.parent}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["--binding"], out.stderr


# -- `kazoo-tail completion SHELL`: the one line the README gives for each shell -------------------


def printed(shell: str) -> str:
    done = subprocess.run([str(BIN), "completion", shell], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_completion_command_prints_the_committed_script(shell: str) -> None:
    assert printed(shell) == (COMPLETIONS / SCRIPTS[shell]).read_text()


def in_shell(argv: list[str]) -> list[str]:
    """Run a shell with only the installed kazoo-tail's directory added to its PATH, as after
    pip or pipx; its stdout's lines."""
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed (CI installs it)")
    env = {**os.environ, "PATH": f"{BIN.parent}:{os.environ['PATH']}"}
    env.pop("_KAZOO_TAIL_COMPLETE", None)
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_bash_line_from_the_readme_completes() -> None:
    script = """
eval "$(kazoo-tail completion bash)"
complete -p kazoo-tail
COMP_WORDS=(kazoo-tail --bi); COMP_CWORD=1
_kazoo_tail_completion kazoo-tail
printf '%s\\n' "${COMPREPLY[@]}"
"""
    assert in_shell(["bash", "--norc", "--noprofile", "-c", script]) == [
        "complete -o nosort -F _kazoo_tail_completion kazoo-tail",
        "--binding",
    ]


@pytest.mark.parametrize(
    "line", ['eval "$(kazoo-tail completion zsh)"', "source <(kazoo-tail completion zsh)"]
)
def test_zsh_line_from_the_readme_completes(line: str) -> None:
    # Registered with compdef after compinit; then the function is called as the completion
    # system would call it, with what it hands to _describe and compadd printed (those two
    # draw on the terminal's line editor, which a non-interactive zsh has none of).
    script = f"""
autoload -Uz compinit && compinit -u -D
{line}
print -r -- $_comps[kazoo-tail]
_describe() {{ print -rl -- "${{(@P)3}}"; }}
compadd() {{ print -rl -- "${{(@P)${{@[-1]}}}}"; }}
words=(kazoo-tail lo); CURRENT=2; _kazoo_tail_completion
words=(kazoo-tail --bi); CURRENT=2; _kazoo_tail_completion
"""
    out = in_shell(["zsh", "-f", "-c", script])
    assert out[0] == "_kazoo_tail_completion"
    assert [entry.split(":", 1)[0] for entry in out[1:]] == ["login", "logout", "--binding"]


def test_fish_line_from_the_readme_completes() -> None:
    script = 'kazoo-tail completion fish | source; complete -C "kazoo-tail --bi"'
    out = in_shell(["fish", "--no-config", "-c", script])
    assert [entry.split("\t", 1)[0] for entry in out] == ["--binding"]
