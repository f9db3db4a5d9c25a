"""docs/config.md lists every setting of vault/config.py with its variable and default, and nothing else."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields

from tests.support.cvault_command import PROJECT_ROOT
from vault.config import CLIENT_VARIABLES, TOOL_PREFIX, Config

DOC = PROJECT_ROOT / "docs" / "config.md"

# The variables the test suite reads: its own, so named under the prefix the servers leave to tools.
TEST_VARIABLES = (
    "CVAULT_TEST_DATABASE_URL",
    "CVAULT_TEST_REQUIRE_VECTORS",
    "CVAULT_TEST_SCREENSHOT_DIR",
    "CVAULT_TEST_WORKERS",
)
_READ = re.compile(r'environ(?:\.get\(|\[)\s*"(CVAULT_\w+)"')
ROW = re.compile(r"^\| `(\w+)` \| (.+?) \| (.+?) \| .+ \|$")


def _rendered(value: object) -> str:
    """How the doc writes a default."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == ():
        return "none"
    return f"`{value}`"


def _rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


def test_every_setting_is_documented_with_its_variable_and_default() -> None:
    rows = _rows()
    settings = {f.name: f for f in fields(Config)}
    missing = sorted(set(settings) - set(rows))
    assert not missing, f"docs/config.md has no row for {missing}: add them to the 'Server settings' table"
    stale = sorted(set(rows) - set(settings))
    assert not stale, f"docs/config.md documents {stale}, which vault/config.py no longer has"
    for name, f in settings.items():
        variable, default = rows[name]
        if name != "dev":
            assert variable == f"`CVAULT_{name.upper()}`", f"{name}: variable column should be `CVAULT_{name.upper()}`"
        if f.default is not MISSING:
            assert default == _rendered(f.default), f"{name}: default is {_rendered(f.default)} in vault/config.py"


def test_every_client_variable_is_documented() -> None:
    text = DOC.read_text()
    section = text[text.index("## Client and test variables") :]
    for variable in sorted(CLIENT_VARIABLES):
        assert f"`{variable}`" in section, f"docs/config.md does not describe {variable}"


def test_every_test_variable_is_documented_under_the_tools_prefix() -> None:
    text = DOC.read_text()
    section = text[text.index("## Client and test variables") :]
    for variable in TEST_VARIABLES:
        assert variable.startswith(TOOL_PREFIX), f"{variable}: the test suite's variables are named {TOOL_PREFIX}*"
        assert f"`{variable}`" in section, f"docs/config.md does not describe {variable}"


def test_the_suite_reads_only_settings_client_variables_and_its_own() -> None:
    """A variable the suite reads that the servers do not know would make them refuse their inherited environment."""
    settings = {f"CVAULT_{f.name.upper()}" for f in fields(Config)}
    read = {name for path in (PROJECT_ROOT / "tests").rglob("*.py") for name in _READ.findall(path.read_text())}
    assert read - settings - CLIENT_VARIABLES <= set(TEST_VARIABLES)
