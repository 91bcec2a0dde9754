#!/usr/bin/env python3
"""References to docs/PROTOCOL.md: check them (CI) or turn them into anchors.

Every heading and every interpretation note of docs/PROTOCOL.md has an
explicit anchor, a line `<a id="NAME"></a>` directly above it. Section
numbers change when the document is reorganised; the anchors do not. So:

- Code (.rs, .py, .sh and shell scripts) cites the spec as
  `PROTOCOL.md#NAME`, never as `§6.7.4`. String literals in Python that are
  not docstrings are data (vector fields, verbatim quotes of the spec) and
  are not checked.
- Markdown may show a section number, but only as the text of a link to the
  anchor that has that number today, `[§6.7.4](PROTOCOL.md#sub-id-json-string)`
  (`[§6.7.4](#sub-id-json-string)` inside PROTOCOL.md); a note is cited as
  `[N-24](PROTOCOL.md#n-24)`. Fenced code blocks and inline code are not
  checked.

Usage:
  spec_refs.py --check   report every problem as file:line: reason; exit 1 if any
  spec_refs.py --fix     rewrite plain §X.Y / N-k references that can be mapped
                         with today's numbering; print the ones it cannot map
  spec_refs.py --list    print the anchors with their current section numbers

--fix also gives a link [§X.Y](…#NAME) whose anchor has been renumbered the
anchor's current number. Beyond that it only knows today's numbering of
PROTOCOL.md. It leaves alone references
introduced by "protocol v1" or "design" (the design note, numbered
differently) and ranges such as `§2–§3`; it prints them, and every reference
it rewrote in code, for a human to read in context. It is idempotent.
"""

import argparse
import ast
import io
import os
import re
import subprocess
import sys
import tokenize

SPEC = "docs/PROTOCOL.md"
SOURCE_EXT = (".rs", ".py", ".sh")
TEXT_EXT = SOURCE_EXT + (".md", ".toml")
EXCLUDED_DIRS = ("target/", "fuzz/corpus/", "fuzz/artifacts/")
SELF = "docs/tools/spec_refs.py"  # its examples are not references

ANCHOR_LINE = re.compile(r'^<a id="([^"]*)"></a>\s*$')
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?\s")
NOTE_DEF = re.compile(r"^\*\*N-(\d+)\.\s")
ANCHOR_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
SPEC_LINK = re.compile(r"PROTOCOL\.md#([A-Za-z0-9_-]+)")
LOCAL_LINK = re.compile(r"\]\(#([^)\s]*)\)")
SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)")
NOTE = re.compile(r"\bN-(\d+)\b")
MD_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]*)\)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
FENCE = re.compile(r"^\s*(```|~~~)")
# Words before a § that mark the design note's numbering, not PROTOCOL.md's:
# "protocol v1 §2 and §3", "design §4" (lower case; "PROTOCOL §4" is today's).
OLD_NUMBERING = re.compile(
    r"(?:protocol(?: v1)?|design(?: note)?)(?:[\s,]+(?:§\s?\d+(?:\.\d+)*|and|to|or|–|-))*[\s,]*$")


def repo_root():
    here = os.path.dirname(os.path.abspath(__file__))
    return subprocess.check_output(["git", "rev-parse", "--show-toplevel"], cwd=here, text=True).strip()


class Spec:
    """The anchors of PROTOCOL.md and what they are attached to."""

    def __init__(self, root):
        self.path = SPEC
        self.lines = open(os.path.join(root, SPEC), encoding="utf-8").read().split("\n")
        self.anchors = {}  # id -> number ("6.7.4", "N-24") or None
        self.by_number = {}  # number -> id
        self.problems = []  # (line, reason)
        pending = None
        fenced = False
        for i, line in enumerate(self.lines, 1):
            if FENCE.match(line):
                fenced = not fenced
                pending = None
                continue
            if fenced:
                continue
            m = ANCHOR_LINE.match(line)
            if m:
                name = m.group(1)
                if not ANCHOR_NAME.match(name):
                    self.problems.append((i, f"anchor {name!r} is not short kebab-case"))
                elif re.search(r"(^|-)\d+-\d+(-|$)", name) or name[0].isdigit():
                    self.problems.append((i, f"anchor {name!r} looks like a section number: name the topic"))
                if name in self.anchors:
                    self.problems.append((i, f"anchor {name!r} is defined twice"))
                pending = (name, i)
                self.anchors.setdefault(name, None)
                continue
            if not line.strip():
                continue
            number = None
            h = HEADING.match(line)
            n = NOTE_DEF.match(line)
            if h:
                m = NUMBERED.match(h.group(2))
                number = m.group(1) if m else None
            elif n:
                number = "N-" + n.group(1)
            if (h or n) and pending is None:
                what = "heading" if h else "note N-" + n.group(1)
                self.problems.append((i, f"{what} has no anchor: add <a id=\"NAME\"></a> on the line above"))
            if pending is not None:
                name, at = pending
                if not (h or n):
                    self.problems.append((at, f"anchor {name!r} is not directly above a heading or note"))
                elif number is not None:
                    self.anchors[name] = number
                    if number in self.by_number:
                        self.problems.append((i, f"section {number} has two anchors"))
                    self.by_number[number] = name
                pending = None

    def number_of(self, name):
        return self.anchors.get(name)


def tracked_files(root):
    out = subprocess.check_output(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root)
    files = []
    for f in sorted(set(out.decode().split("\0"))):
        if not f or f == SELF or f.startswith(EXCLUDED_DIRS) or f.endswith(".json"):
            continue
        path = os.path.join(root, f)
        if not os.path.isfile(path):
            continue
        if f.endswith(TEXT_EXT):
            files.append(f)
        elif "." not in os.path.basename(f):
            try:
                first = open(path, "rb").readline()
            except OSError:
                continue
            if first.startswith(b"#!") and (b"sh" in first):
                files.append(f)
    return files


def kind(f):
    if f.endswith(".md"):
        return "md"
    if f.endswith(".toml"):
        return "toml"
    return "source"


# ---- which parts of a file are prose --------------------------------------

def python_data_spans(text):
    """(start, end) offsets of Python string literals that are not
    docstrings: data, not citations."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    doc_lines = set()
    for node in [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]:
        body = getattr(node, "body", [])
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            doc_lines.add(body[0].value.lineno)
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(pos):
        return starts[pos[0] - 1] + pos[1]

    spans = []
    fstring = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        name = tokenize.tok_name[tok.type]
        if name == "FSTRING_START":
            fstring.append(tok.start)
        elif name == "FSTRING_END" and fstring:
            start = fstring.pop()
            if not fstring:
                spans.append((offset(start), offset(tok.end)))
        elif tok.type == tokenize.STRING and not fstring and tok.start[0] not in doc_lines:
            spans.append((offset(tok.start), offset(tok.end)))
    return spans


def markdown_code_spans(text):
    """(start, end) offsets of fenced code blocks and inline code."""
    spans = []
    pos = 0
    fence_start = None
    for line in text.splitlines(keepends=True):
        if FENCE.match(line):
            if fence_start is None:
                fence_start = pos
            else:
                spans.append((fence_start, pos + len(line)))
                fence_start = None
        elif fence_start is None:
            for m in INLINE_CODE.finditer(line):
                spans.append((pos + m.start(), pos + m.end()))
        pos += len(line)
    if fence_start is not None:
        spans.append((fence_start, pos))
    return spans


def inside(spans, at):
    return any(a <= at < b for a, b in spans)


def line_of(text, at):
    return text.count("\n", 0, at) + 1


def link_target(f, target):
    """The anchor a Markdown link target names in PROTOCOL.md, or None."""
    if target.startswith("#"):
        return target[1:] if f == SPEC else None
    if "#" in target:
        path, name = target.split("#", 1)
        if path.endswith("PROTOCOL.md"):
            return name
    return None


def spec_href(f, name):
    if f == SPEC:
        return "#" + name
    rel = os.path.relpath(SPEC, os.path.dirname(f) or ".")
    return f"{rel}#{name}"


# ---- check -----------------------------------------------------------------

def check(root, spec, files):
    problems = [(SPEC, line, reason) for line, reason in spec.problems]
    for f in files:
        text = open(os.path.join(root, f), encoding="utf-8", errors="replace").read()
        k = kind(f)
        for m in SPEC_LINK.finditer(text):
            if m.group(1) not in spec.anchors:
                problems.append((f, line_of(text, m.start()), f"PROTOCOL.md#{m.group(1)}: no such anchor in {SPEC}"))
        if f == SPEC:
            for m in LOCAL_LINK.finditer(text):
                if m.group(1) not in spec.anchors:
                    problems.append((f, line_of(text, m.start()), f"(#{m.group(1)}): no such anchor"))
        if k == "source":
            data = python_data_spans(text) if f.endswith(".py") else []
            for m in SECTION.finditer(text):
                if not inside(data, m.start()):
                    where = spec.by_number.get(m.group(1))
                    hint = f" (today PROTOCOL.md#{where}, if that is what it means)" if where else ""
                    problems.append((f, line_of(text, m.start()),
                                     f"{m.group(0)}: code cites the spec as PROTOCOL.md#<anchor>, not by section number{hint}"))
        elif k == "md":
            problems += check_markdown(f, text, spec)
    return problems


def check_markdown(f, text, spec):
    problems = []
    code = markdown_code_spans(text)
    links = [m for m in MD_LINK.finditer(text) if not inside(code, m.start())]

    def link_at(at):
        for m in links:
            if m.start(1) <= at < m.end(1):
                return m
        return None

    refs = [(m, m.group(1)) for m in SECTION.finditer(text)]
    refs += [(m, "N-" + m.group(1)) for m in NOTE.finditer(text)]
    for m, number in refs:
        at = m.start()
        if inside(code, at):
            continue
        line = line_of(text, at)
        if f == SPEC and number.startswith("N-"):
            start = text.rfind("\n", 0, at) + 1
            if NOTE_DEF.match(text[start:]) and start + 2 == at:
                continue  # the note's own definition
        shown = m.group(0)
        link = link_at(at)
        if link is None:
            where = spec.by_number.get(number)
            hint = f": write [{shown}]({spec_href(f, where)})" if where else f" ({SPEC} has no {number} today)"
            problems.append((f, line, f"{shown} is not a link to its anchor{hint}"))
            continue
        name = link_target(f, link.group(2))
        if name is None:
            problems.append((f, line, f"{shown} links to {link.group(2)!r}, not to an anchor of {SPEC}"))
        elif name in spec.anchors and spec.number_of(name) != number:
            now = spec.number_of(name)
            problems.append((f, line, f"{shown} links to #{name}, which is {('§' + now) if now and not now.startswith('N-') else now} today"))
    return problems


# ---- fix -------------------------------------------------------------------

SOURCE_REF = re.compile(r"(?:(?:docs/)?PROTOCOL(?:\.md)?,?\s)?§\s?(\d+(?:\.\d+)*)")
RANGE_AFTER = re.compile(r"^\s*(?:–|-|to)\s*§")


def fix(root, spec, files):
    changed = {"source": 0, "md": 0}
    report = []
    for f in files:
        k = kind(f)
        if k == "toml":
            continue
        path = os.path.join(root, f)
        text = open(path, encoding="utf-8").read()
        if k == "source":
            new, n = fix_source(f, text, spec, report)
        else:
            new, n = fix_markdown(f, text, spec, report)
        if new != text:
            open(path, "w", encoding="utf-8").write(new)
        changed[k] += n
    for f, line, what, reason in report:
        print(f"{f}:{line}: {what}: {reason}")
    print(f"rewrote {changed['source']} reference(s) in code, {changed['md']} in Markdown", file=sys.stderr)


def unmappable(text, m, number, spec):
    before = text[max(0, text.rfind("\n", 0, m.start()) + 1):m.start()]
    if OLD_NUMBERING.search(before):
        return "introduced by 'protocol (v1)'/'design': the design note's numbering? map by hand"
    after = text[m.end():m.end() + 6]
    if RANGE_AFTER.match(after) or re.search(r"§\s?\d+(?:\.\d+)*\s*(?:–|-|to)\s*$", before):
        return "part of a range: cite the anchors by hand"
    if number not in spec.by_number:
        return f"{SPEC} has no section {number} today"
    return None


def fix_source(f, text, spec, report):
    data = python_data_spans(text) if f.endswith(".py") else []
    out, last, n = [], 0, 0
    for m in SOURCE_REF.finditer(text):
        sec = m.start() + m.group(0).index("§")
        if inside(data, sec):
            continue
        number = m.group(1)
        why = unmappable(text, m, number, spec)
        line = line_of(text, m.start())
        if why:
            report.append((f, line, m.group(0), why))
            continue
        name = spec.by_number[number]
        out.append(text[last:m.start()])
        out.append(f"PROTOCOL.md#{name}")
        last = m.end()
        n += 1
        report.append((f, line, m.group(0), f"now PROTOCOL.md#{name}: read it in context"))
    out.append(text[last:])
    return "".join(out), n


def renumber_links(f, text, spec, report):
    """A link [§X.Y](…#NAME) whose anchor has another number today gets the
    current number as its text: the anchor is what the author chose."""
    code = markdown_code_spans(text)
    out, last, n = [], 0, 0
    for m in MD_LINK.finditer(text):
        if inside(code, m.start()):
            continue
        number = re.fullmatch(r"§\s?(\d+(?:\.\d+)*)", m.group(1))
        name = link_target(f, m.group(2))
        now = spec.number_of(name) if name else None
        if not number or now is None or now.startswith("N-") or now == number.group(1):
            continue
        out.append(text[last:m.start(1)])
        out.append("§" + now)
        last = m.end(1)
        n += 1
        report.append((f, line_of(text, m.start()), m.group(0), f"#{name} is §{now} today: link text renumbered"))
    out.append(text[last:])
    return "".join(out), n


def fix_markdown(f, text, spec, report):
    text, renumbered = renumber_links(f, text, spec, report)
    code = markdown_code_spans(text)
    links = [(m.start(), m.end()) for m in MD_LINK.finditer(text)]
    refs = [(m, m.group(1)) for m in SECTION.finditer(text)]
    refs += [(m, "N-" + m.group(1)) for m in NOTE.finditer(text)]
    refs.sort(key=lambda r: r[0].start())
    out, last, n = [], 0, 0
    for m, number in refs:
        at = m.start()
        if inside(code, at) or inside(links, at):
            continue
        if f == SPEC and number.startswith("N-"):
            start = text.rfind("\n", 0, at) + 1
            if NOTE_DEF.match(text[start:]) and start + 2 == at:
                continue
        why = unmappable(text, m, number, spec) if not number.startswith("N-") else (
            None if number in spec.by_number else f"{SPEC} has no note {number}")
        if why:
            report.append((f, line_of(text, at), m.group(0), why))
            continue
        out.append(text[last:at])
        out.append(f"[{m.group(0)}]({spec_href(f, spec.by_number[number])})")
        last = m.end()
        n += 1
    out.append(text[last:])
    return "".join(out), n + renumbered


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--fix", action="store_true")
    mode.add_argument("--list", action="store_true")
    args = ap.parse_args()
    root = repo_root()
    spec = Spec(root)
    if args.list:
        for name, number in spec.anchors.items():
            print(f"{name}\t{('§' + number) if number and not number.startswith('N-') else (number or '-')}")
        return 0
    files = tracked_files(root)
    if args.fix:
        fix(root, spec, files)
        return 0
    problems = sorted(set(check(root, spec, files)))
    for f, line, reason in problems:
        print(f"{f}:{line}: {reason}")
    if problems:
        print(f"{len(problems)} problem(s) with references to {SPEC}; see docs/tools/spec_refs.py --help", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
