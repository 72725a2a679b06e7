"""First layers: `terraform fmt -check` over the tree, `terraform validate` of every root (envs,
bootstrap), and a parse of the HCL that pins where security-group rules may live.

The HCL tests need no terraform binary: they read the ``.tf`` files with a small block parser
(blocks, labels and attribute names; expressions are skipped, not evaluated). The rules
themselves, as (group, protocol, ports, peer), are pinned by the security-groups module's
``terraform test``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

ROOTS = ("envs/dev", "envs/staging", "envs/prod", "bootstrap")
TERRAFORM_ROOT = Path(__file__).resolve().parents[2] / "infra" / "terraform"


@pytest.mark.terraform
def test_fmt(tf: ModuleType, terraform_bin: str) -> None:
    # fmt needs no init, no provider and -check writes nothing: it runs on the repository itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env["CHECKPOINT_DISABLE"] = "1"
    proc = tf.run(
        terraform_bin,
        ["fmt", "-check", "-recursive", "-diff", "-no-color"],
        tf.TERRAFORM_ROOT,
        env,
        check=False,
    )
    assert proc.returncode == 0, (
        f"run `terraform fmt -recursive infra/terraform`:\n{proc.stdout}{proc.stderr}"
    )


@pytest.mark.terraform
@pytest.mark.parametrize("root", ROOTS)
def test_validate(
    tf: ModuleType, terraform_bin: str, tf_env: dict[str, str], tf_tree: Path, root: str
) -> None:
    env_dir = tf_tree / root
    tf.init(terraform_bin, env_dir, tf_env)
    proc = tf.run(terraform_bin, ["validate", "-json", "-no-color"], env_dir, tf_env, check=False)
    report = json.loads(proc.stdout)
    problems = [
        f"{d['severity']}: {d['summary']}: {d.get('detail', '')}" for d in report["diagnostics"]
    ]
    assert report["valid"], "\n".join(problems)
    assert not problems, "validate reported warnings:\n" + "\n".join(problems)


# -- HCL ----------------------------------------------------------------------------------------

_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_]*)\n.*?\n[ \t]*\1[ \t]*(?=\n|$)", re.S)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _tokens(text: str) -> list[tuple[str, str]]:
    """``(kind, text)`` tokens: ident, string, newline, one-character punctuation; comments,
    heredocs and the insides of strings (interpolations included) are consumed whole."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            out.append(("nl", c))
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
        elif text.startswith("<<", i) and (m := _HEREDOC.match(text, i)):
            out.append(("string", m.group(0)))
            i = m.end()
        elif c == '"':
            j, depth = i + 1, 0
            while True:
                if text[j] == "\\":
                    j += 2
                    continue
                if text.startswith("${", j) or text.startswith("%{", j):
                    depth += 1
                    j += 2
                    continue
                if depth and text[j] == "{":
                    depth += 1
                elif depth and text[j] == "}":
                    depth -= 1
                elif depth and text[j] == '"':
                    j = text.index('"', j + 1)
                elif not depth and text[j] == '"':
                    break
                j += 1
            out.append(("string", text[i : j + 1]))
            i = j + 1
        elif m := _IDENT.match(text, i):
            out.append(("ident", m.group(0)))
            i = m.end()
        else:
            out.append(("punct", c))
            i += 1
    return out


@dataclass
class Block:
    """One HCL block: ``type "label" ... { attributes and blocks }``."""

    type: str
    labels: tuple[str, ...]
    path: Path
    attributes: set[str] = field(default_factory=set)
    blocks: list[Block] = field(default_factory=list)


def _skip_expression(tokens: list[tuple[str, str]], i: int) -> int:
    depth = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "punct" and text in "([{":
            depth += 1
        elif kind == "punct" and text in ")]}":
            if depth == 0:
                return i
            depth -= 1
        elif kind == "nl" and depth == 0:
            return i
        i += 1
    return i


def _body(tokens: list[tuple[str, str]], i: int, block: Block) -> int:
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "nl":
            i += 1
        elif kind == "punct" and text == "}":
            return i + 1
        elif kind == "ident" and i + 1 < len(tokens) and tokens[i + 1] == ("punct", "="):
            block.attributes.add(text)
            i = _skip_expression(tokens, i + 2)
        elif kind == "ident":
            j, labels = i + 1, []
            while tokens[j][0] in ("string", "ident"):
                labels.append(tokens[j][1].strip('"'))
                j += 1
            assert tokens[j] == ("punct", "{"), f"{block.path}: unexpected {tokens[j]} after {text}"
            child = Block(text, tuple(labels), block.path)
            block.blocks.append(child)
            i = _body(tokens, j + 1, child)
        else:
            raise AssertionError(f"{block.path}: unexpected {text!r} in {block.type} body")
    return i


def parse_hcl(path: Path) -> Block:
    """The blocks and attribute names of one ``.tf`` file."""
    root = Block("file", (), path)
    tokens = _tokens(path.read_text(encoding="utf-8"))
    end = _body(tokens, 0, root)
    assert end >= len(tokens), f"{path}: unbalanced braces"
    return root


def _resources() -> list[tuple[str, Block]]:
    out = []
    for path in sorted(TERRAFORM_ROOT.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        where = str(path.parent.relative_to(TERRAFORM_ROOT))
        out += [(where, b) for b in parse_hcl(path).blocks if b.type == "resource"]
    return out


RULE_TYPES = {
    "aws_security_group_rule",
    "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule",
}
GROUP_TYPES = {"aws_security_group", "aws_default_security_group"}

#: the only security groups and rule resources of the tree; the rules of each are pinned by
#: the terraform test of its module (modules/security-groups: every ingress and egress rule;
#: modules/network: the endpoint group's ingress, the default group empty)
PINNED = {
    ("modules/network", "aws_default_security_group", "this"),
    ("modules/network", "aws_security_group", "endpoints"),
    ("modules/network", "aws_vpc_security_group_ingress_rule", "endpoints"),
    ("modules/security-groups", "aws_security_group", "alb"),
    ("modules/security-groups", "aws_security_group", "cluster"),
    ("modules/security-groups", "aws_security_group", "node"),
    ("modules/security-groups", "aws_security_group", "database"),
    ("modules/security-groups", "aws_vpc_security_group_ingress_rule", "this"),
    ("modules/security-groups", "aws_vpc_security_group_egress_rule", "this"),
}


def test_the_hcl_parser_sees_blocks_labels_and_attributes(tmp_path: Path) -> None:
    tf = tmp_path / "main.tf"
    tf.write_text(
        '# resource "aws_security_group_rule" "commented" {}\n'
        'resource "aws_security_group" "x" {\n'
        '  name = "${var.name}-{x}" # }\n'
        '  tags = merge(var.tags, {\n    Name = "a"\n  })\n'
        "  description = <<-EOT\n    not { a block\n  EOT\n"
        "  /* egress { } */\n"
        '  egress {\n    cidr_blocks = ["0.0.0.0/0"]\n  }\n'
        '  dynamic "ingress" {\n    for_each = { a = "${lower("X")}" }\n'
        "    content {\n      from_port = 443\n    }\n  }\n"
        "}\n"
    )
    (block,) = parse_hcl(tf).blocks
    assert (block.type, block.labels) == ("resource", ("aws_security_group", "x"))
    assert block.attributes == {"name", "tags", "description"}
    assert [(b.type, b.labels) for b in block.blocks] == [("egress", ()), ("dynamic", ("ingress",))]
    assert block.blocks[1].attributes == {"for_each"}
    assert block.blocks[1].blocks[0].attributes == {"from_port"}


def test_security_groups_and_rules_exist_only_where_they_are_pinned() -> None:
    found = {
        (where, b.labels[0], b.labels[1])
        for where, b in _resources()
        if b.labels[0] in RULE_TYPES | GROUP_TYPES
    }
    assert found == PINNED, (
        f"not pinned: {sorted(found - PINNED)}; gone: {sorted(PINNED - found)}. Every "
        "security group and rule resource needs exact asserts in its module's terraform test."
    )


def test_security_groups_carry_no_inline_rules() -> None:
    groups = [(w, b) for w, b in _resources() if b.labels[0] in GROUP_TYPES]
    assert len(groups) == 6
    for where, group in groups:
        nested = {b.labels[0] if b.type == "dynamic" else b.type for b in group.blocks}
        inline = (group.attributes | nested) & {"ingress", "egress"}
        assert not inline, f"{where}: {'.'.join(group.labels)} has inline {sorted(inline)} rules"
