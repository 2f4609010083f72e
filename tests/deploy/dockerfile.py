"""A small reader of deploy/Dockerfile for the tests: instructions, ARG defaults, ENV."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword (upper case) and the rest of the line, continuations joined."""

    keyword: str
    args: str


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The instructions of a Dockerfile, without comments, continuation lines joined."""
    out: list[Instruction] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, args = text.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    return out


def stages(path: Path = DOCKERFILE) -> list[list[Instruction]]:
    """Instructions grouped by build stage (each starts with FROM); global ARGs first."""
    groups: list[list[Instruction]] = [[]]
    for ins in instructions(path):
        if ins.keyword == "FROM":
            groups.append([])
        groups[-1].append(ins)
    return groups


def arg_defaults(path: Path = DOCKERFILE) -> dict[str, str]:
    """Every `ARG NAME=default` of the file."""
    found: dict[str, str] = {}
    for ins in instructions(path):
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            found[name.strip()] = value.strip().strip('"')
    return found


def expand(text: str, values: dict[str, str]) -> str:
    """${NAME} and $NAME replaced from values (unknown names left as they are)."""
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)",
        lambda m: values.get(m.group(1) or m.group(2), m.group(0)),
        text,
    )


def env_of_final_stage(path: Path = DOCKERFILE) -> dict[str, str]:
    """The ENV values the runtime image sets (PATH left unexpanded)."""
    env: dict[str, str] = {}
    for ins in stages(path)[-1]:
        if ins.keyword == "ENV":
            for word in shlex.split(ins.args):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument list such as CMD ["ontwatch", "run"]."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def healthcheck_command(path: Path = DOCKERFILE) -> list[str]:
    """The HEALTHCHECK's CMD, in exec form."""
    for ins in stages(path)[-1]:
        if ins.keyword == "HEALTHCHECK":
            _, _, cmd = ins.args.partition("CMD ")
            return exec_form(cmd.strip())
    raise AssertionError("no HEALTHCHECK in the runtime stage")
