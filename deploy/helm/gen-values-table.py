#!/usr/bin/env python3
"""Regenerate the values table of the chart README from the `## @param` lines of values.yaml.

    python3 deploy/helm/gen-values-table.py          rewrite the table in place
    python3 deploy/helm/gen-values-table.py --check  exit 1 if the README table is out of date

The table sits between the `<!-- values-table:start -->` and `<!-- values-table:end -->` markers
of deploy/helm/cast-gatekeeper/README.md. Needs PyYAML only.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent / "cast-gatekeeper"
START = "<!-- values-table:start -->"
END = "<!-- values-table:end -->"
MAX_DEFAULT = 120


def _lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node[part]
    return node


def _default(value: Any) -> str:
    text = json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
    if len(text) > MAX_DEFAULT:
        text = text[: MAX_DEFAULT - 1] + "…"
    return text.replace("|", "\\|")


def table(values_text: str) -> str:
    values = yaml.safe_load(values_text)
    out: list[str] = []
    for line in values_text.splitlines():
        section = re.match(r"\s*## @section (.+)$", line)
        if section:
            out += ["", f"### {section.group(1)}", "", "| Key | Description | Default |"]
            out.append("| --- | --- | --- |")
            continue
        param = re.match(r"\s*## @param (\S+) (.+)$", line)
        if param:
            path, desc = param.group(1), param.group(2).strip().replace("|", "\\|")
            out.append(f"| `{path}` | {desc} | `{_default(_lookup(values, path))}` |")
    return "\n".join(out).strip() + "\n"


def main(argv: list[str]) -> int:
    readme_path = CHART / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    if not rest or END not in rest:
        print(f"{readme_path}: markers {START} / {END} not found", file=sys.stderr)
        return 2
    new = f"{head}{START}\n{table((CHART / 'values.yaml').read_text(encoding='utf-8'))}{END}{tail}"
    if argv[1:] == ["--check"]:
        if new != readme:
            print(f"{readme_path}: values table out of date (run {argv[0]})", file=sys.stderr)
            return 1
        return 0
    if argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    readme_path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
