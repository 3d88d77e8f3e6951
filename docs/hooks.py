"""MkDocs hooks of the cplugins site (``hooks:`` in ``mkdocs.yml``).

Three markers in a page's Markdown are replaced at build time, so the site never drifts from
the code and the repository:

- ``<!-- cplugins:cli-reference -->``: every ``cplugins`` subcommand, walked recursively from
  :func:`cplugins.cli.build_parser` (usage, arguments, defaults, help);
- ``<!-- cplugins:template-reference -->``: every installed training template and its
  hyperparameters (type, default, what is allowed, how ``cplugins tune`` searches it);
- ``<!-- cplugins:include PATH -->``: a Markdown file of the repository (``PATH`` relative to
  the repository root), e.g. a generated model-zoo README.

Relative links that leave ``docs/`` (in the pages and in included files) are rewritten: to the
page that includes the linked file, to the home page for the repository's ``README.md``, or to
a copy of the linked file published under ``repo/``. A link to nothing stays as written, so
``mkdocs build --strict`` reports it.
"""
from __future__ import annotations

import argparse
import functools
import html
import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

CLI_MARKER = "<!-- cplugins:cli-reference -->"
TEMPLATE_MARKER = "<!-- cplugins:template-reference -->"
INCLUDE = re.compile(r"<!-- cplugins:include (?P<path>\S+) -->")
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]\n]*)\]"
                  r"\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
#: where copies of linked repository files go in the site
REPO_COPIES = "repo"
#: the usage lines' width in the CLI reference (characters)
USAGE_WIDTH = 96

_expanded: dict[str, str] = {}  # page src_uri -> its final Markdown


def on_files(files: Files, config) -> Files:
    """Expand every page's markers and add the repository files its links need."""
    docs_dir = Path(config["docs_dir"]).resolve()
    repo_root = Path(config["config_file_path"]).resolve().parent
    pages = [f for f in files if f.is_documentation_page()]
    sources = {f.src_uri: Path(f.abs_src_path).read_text(encoding="utf-8") for f in pages}
    included_by = {}  # repository file -> the page that includes it
    for src_uri, text in sources.items():
        for match in INCLUDE.finditer(text):
            included_by[(repo_root / match["path"]).resolve()] = docs_dir / src_uri
    links = _LinkRewriter(docs_dir, repo_root, included_by)
    _expanded.clear()
    for src_uri, text in sources.items():
        page_dir = (docs_dir / src_uri).parent
        text = links.rewrite(text, page_dir, page_dir)
        text = INCLUDE.sub(functools.partial(_include, links, repo_root, page_dir), text)
        if CLI_MARKER in text:
            text = text.replace(CLI_MARKER, cli_reference())
        if TEMPLATE_MARKER in text:
            text = text.replace(TEMPLATE_MARKER, template_reference())
        _expanded[src_uri] = text
    for relative in sorted(links.copies):
        files.append(File.generated(config, f"{REPO_COPIES}/{relative}",
                                    abs_src_path=str(repo_root / relative)))
    return files


def _include(links: _LinkRewriter, repo_root: Path, page_dir: Path, match: re.Match) -> str:
    """The repository file an include marker names, its links rewritten for ``page_dir``."""
    path = (repo_root / match["path"]).resolve()
    return links.rewrite(path.read_text(encoding="utf-8"), path.parent, page_dir)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """The page's Markdown with its markers expanded and its links rewritten (``on_files``)."""
    return _expanded.get(page.file.src_uri, markdown)


class _LinkRewriter:
    """Points relative links that leave ``docs/`` at something the site has."""

    def __init__(self, docs_dir: Path, repo_root: Path, included_by: dict[Path, Path]):
        self.docs_dir, self.repo_root, self.included_by = docs_dir, repo_root, included_by
        self.copies: set[str] = set()  # repository-relative paths copied into the site

    def rewrite(self, text: str, source_dir: Path, page_dir: Path) -> str:
        """``text`` (written in ``source_dir``) with its links made relative to ``page_dir``;
        fenced code blocks are left as they are."""
        parts, last = [], 0
        for fence in FENCE.finditer(text):
            parts += [self._links(text[last:fence.start()], source_dir, page_dir), fence[0]]
            last = fence.end()
        return "".join(parts + [self._links(text[last:], source_dir, page_dir)])

    def _links(self, text: str, source_dir: Path, page_dir: Path) -> str:
        def replace(match: re.Match) -> str:
            target = match["target"]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
                return match[0]
            path, _, fragment = target.partition("#")
            resolved = (source_dir / path).resolve()
            new = self._target(resolved)
            if new is None:
                if resolved.is_dir() and source_dir != page_dir:
                    return match["text"]  # a folder of an included file: plain text
                return match[0]  # inside docs/ (or missing: the strict build says so)
            new = posixpath.relpath(new.as_posix(), page_dir.as_posix())
            return (f"{match['bang']}[{match['text']}]({new}{'#' if fragment else ''}"
                    f"{fragment}{match['title'] or ''})")

        return LINK.sub(replace, text)

    def _target(self, resolved: Path) -> Path | None:
        if resolved.is_relative_to(self.docs_dir) or not resolved.is_relative_to(self.repo_root):
            return None
        if resolved in self.included_by:
            return self.included_by[resolved]
        if resolved == self.repo_root / "README.md":
            return self.docs_dir / "index.md"
        if resolved.is_file() and resolved.suffix != ".md":
            relative = resolved.relative_to(self.repo_root).as_posix()
            self.copies.add(relative)
            return self.docs_dir / REPO_COPIES / relative
        return None


def _escape(text: str) -> str:
    """Help text as the content of one Markdown table cell: ``code`` kept, nothing else
    interpreted."""
    text = html.escape(" ".join(text.split()), quote=False)
    text = re.sub(r"([\\*_\[\]])", r"\\\1", text)
    text = re.sub(r"``?([^`]+)``?", r"<code>\1</code>", text)
    return text.replace("|", "&#124;")


def _code(text: str) -> str:
    """``text`` as inline code in a Markdown table cell, taken literally."""
    return f"<code>{_escape(text.replace('`', ''))}</code>"


def _subcommands(parser: argparse.ArgumentParser):
    """``(name, one-line help, parser)`` of each subcommand of ``parser`` (aliases once)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield name, helps.get(name), sub


def _command_markdown(path: list[str], help_line: str | None,
                      parser: argparse.ArgumentParser) -> list[str]:
    anchor = "-".join(path)
    level = "#" * min(len(path), 4)
    parser.formatter_class = functools.partial(parser.formatter_class, width=USAGE_WIDTH)
    formatter = parser._get_formatter()
    lines = [f"{level} `{' '.join(path)}` {{#{anchor}}}", ""]
    if help_line:
        lines += [_escape(help_line), ""]
    if parser.description:
        if "\n" in parser.description.strip():
            lines += ["```text", parser.description.strip("\n"), "```", ""]
        else:
            lines += [_escape(parser.description), ""]
    lines += ["```text", parser.format_usage().strip(), "```", ""]
    rows = []
    for action in parser._actions:
        if (action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction)
                or isinstance(action, argparse._SubParsersAction)):
            continue
        invocation = formatter._format_action_invocation(action)
        default = action.default
        shown = ("" if default in (None, False, [], argparse.SUPPRESS) or not action.option_strings
                 else _code(repr(default)))
        rows.append(f"| {_code(invocation)} | "
                    f"{_escape(formatter._expand_help(action)) if action.help else ''} | "
                    f"{shown} |")
    if rows:
        lines += ["| argument | meaning | default |", "| --- | --- | --- |", *rows, ""]
    if parser.epilog:
        lines += ["```text", parser.epilog.strip("\n"), "```", ""]
    for name, sub_help, sub in _subcommands(parser):
        lines += _command_markdown([*path, name], sub_help, sub)
    return lines


def cli_reference() -> str:
    """Markdown for every subcommand of :func:`cplugins.cli.build_parser`, depth first."""
    from cplugins.cli import build_parser

    parser = build_parser()
    lines = []
    commands = list(_subcommands(parser))
    lines += ["| command | what it does |", "| --- | --- |"]
    lines += [f"| [`cplugins {name}`](#cplugins-{name}) | {_escape(help_line or '')} |"
              for name, help_line, _ in commands]
    lines.append("")
    for name, help_line, sub in commands:
        lines += _command_markdown(["cplugins", name], help_line, sub)
    return "\n".join(lines)


def template_reference() -> str:
    """Markdown: each installed template with its hyperparameter table."""
    from cplugins.templates.catalog import load_catalog
    from cplugins.templates.cli import search_text
    from cplugins.templates.model import format_value

    lines = []
    for entry in load_catalog().entries:
        template = entry.template
        source = "built-in" if entry.builtin else f"{entry.plugin} ({entry.distribution})"
        anchor = template.qualified_name.replace("/", "-").lower()
        lines += [f"### `{template.qualified_name}` {{#{anchor}}}", "",
                  f"{_escape(template.description)}. Base: "
                  f"{_code(template.base or 'your config (--set config=FILE)')}; "
                  f"source: {_escape(source)}.", "",
                  "| hyperparameter | type | default | allowed | search | meaning |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for hp in template.hyperparameters:
            default = "(required)" if hp.required else format_value(hp.default)
            lines.append(f"| {_code(hp.name)} | {_escape(hp.type_label)} | "
                         f"{_code(default)} | {_escape(hp.allowed())} | "
                         f"{_escape(search_text(hp))} | {_escape(hp.description)} |")
        if template.notes:
            lines += ["", _escape(template.notes)]
        lines.append("")
    return "\n".join(lines)
