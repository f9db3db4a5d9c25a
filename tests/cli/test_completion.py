"""``cvault completion``: the bash script completes commands, subcommands and options in a real bash."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.cvault_command import cvault_command, cvault_env


def _script(shell: str) -> str:
    done = subprocess.run(
        cvault_command("completion", shell), env=cvault_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _complete(script: str, *words: str) -> list[str]:
    cword = len(words) - 1
    words_text = " ".join(f"'{w}'" for w in words)
    program = f'{script}\nCOMP_WORDS=({words_text}); COMP_CWORD={cword}; _cvault; printf "%s\\n" "${{COMPREPLY[@]}}"'
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_commands_subcommands_and_options() -> None:
    script = _script("bash")
    assert "secrets" in _complete(script, "cvault", "sec")
    assert _complete(script, "cvault", "secrets", "li") == ["list"]
    assert "--vault" in _complete(script, "cvault", "secrets", "list", "--va")
    assert "--watch" in _complete(script, "cvault", "run", "--w")
    assert "query" in _complete(script, "cvault", "audit", "")


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_every_command(shell: str) -> None:
    script = _script(shell)
    for word in ("secrets", "run", "audit", "tokens", "watch", "vault"):
        assert word in script
    if shell == "zsh":
        assert "bashcompinit" in script and "complete -F _cvault cvault" in script
    else:
        assert "complete -c cvault -n __fish_use_subcommand" in script
