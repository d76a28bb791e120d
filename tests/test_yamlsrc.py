"""The fast (libyaml) parser and the pure-Python one read every shipped file the same: the same
data and the same line for every field, so problems name the same lines either way."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot import yamlsrc

ROOT = Path(__file__).resolve().parents[1]
# The project's own files (not .venv, nor what `safeguard demo` writes into .safeguard-demo/)
FILES = sorted(p for p in ROOT.glob("**/*.yaml")
               if not any(part.startswith(".") or part == "node_modules" for part in p.relative_to(ROOT).parts))


@pytest.mark.skipif(yamlsrc.FAST_LOADER is yaml.SafeLoader, reason="PyYAML built without libyaml")
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_both_parsers_agree(path):
    text = path.read_text(encoding="utf-8")
    try:
        slow = yamlsrc._parse(text, path.name, yaml.SafeLoader)
    except yamlsrc.ConfigError as err:  # the broken files of the tests: the same problems
        with pytest.raises(yamlsrc.ConfigError) as fast:
            yamlsrc.parse_yaml(text, path.name)
        assert fast.value.problems == err.problems
        return
    fast = yamlsrc._parse(text, path.name, yamlsrc.FAST_LOADER)
    assert fast.data == slow.data and fast.lines == slow.lines


def test_a_broken_file_reads_as_the_python_parser_says():
    text = "name: x\nsteps: [a, b\nowner: y\n"
    with pytest.raises(yamlsrc.ConfigError) as fast:
        yamlsrc.parse_yaml(text, "p.yaml")
    with pytest.raises(yamlsrc.ConfigError) as slow:
        yamlsrc._parse(text, "p.yaml", yaml.SafeLoader)
    assert fast.value.problems == slow.value.problems and fast.value.problems[0].line == 2
