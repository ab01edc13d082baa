"""Build dist/kazoo-tail.pyz: one file that runs with ``python3 kazoo-tail.pyz ...`` on CPython
3.9 to 3.13 with nothing installed.

    python3 tools/build_pyz.py [--output PATH]

It asks the package index (pip's usual one) for pure-Python wheels of the releases pinned
below, as for Python 3.9, the oldest one the file supports; newer Pythons run them too. orjson
is left out: it is compiled, and a zip archive cannot load an extension module, so the file
parses JSON with the json module, as strict as orjson (kazoo_tail/kazoo/fast_json.py). The
dependencies' licence files go into the archive under ``licenses/``. The archive is the same
bytes for the same inputs: names sorted, every timestamp the zip format's earliest.
"""

from __future__ import annotations

import argparse
import email.parser
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "dist" / "kazoo-tail.pyz"
OLDEST_PYTHON = (3, 9)

# Exact releases, each checked to declare Requires-Python that 3.9 meets (the build verifies
# it) and to import on 3.9: the newest of click, requests, urllib3, websocket-client and
# markdown-it-py need 3.10, and pip resolving "for 3.9" from a newer Python picked them anyway.
PINS = (
    "click==8.1.8",
    "requests==2.32.5",
    "urllib3==2.5.0",
    "idna==3.10",
    "charset-normalizer==3.4.2",
    "certifi==2025.8.3",
    "websocket-client==1.8.0",
    "websockets==15.0.1",
    "rich==14.1.0",
    "markdown-it-py==3.0.0",
    "mdurl==0.1.2",
    "pygments==2.19.2",
    # rich needs it before 3.11.
    "typing-extensions==4.14.1",
)

MAIN = '''"""Run kazoo-tail from this archive.

zipimport reads no __pycache__, so each start would compile every module it imports from
source: over twice the installed tool's start-up. The build stores bytecode for each Python it
could compile for under __pyc__/<cache tag>/, and this finder loads it. A module without any,
or a Python the build did not compile for, is imported from source as usual. Nothing is written.
"""

import marshal
import os
import sys
import zipimport
from importlib.machinery import ModuleSpec, PathFinder
from importlib.util import MAGIC_NUMBER


class _Precompiled:
    def __init__(self, archive):
        self.archive = archive
        self.reader = zipimport.zipimporter(archive)
        self.prefix = "__pyc__/%s/" % sys.implementation.cache_tag

    def find_spec(self, name, path=None, target=None):
        stem = name.replace(".", "/")
        for relative, package in ((stem + "/__init__", True), (stem, False)):
            try:
                data = self.reader.get_data(self.prefix + relative + ".pyc")
            except OSError:
                continue
            if data[:4] != MAGIC_NUMBER:  # a pre-release sharing the tag: use the source
                return None
            origin = "%s/%s.py" % (self.archive, relative)
            spec = ModuleSpec(name, _Loader(self.reader, data), origin=origin, is_package=package)
            if package:
                spec.submodule_search_locations = ["%s/%s" % (self.archive, stem)]
            spec.has_location = True
            return spec
        return None


class _Loader:
    def __init__(self, reader, data):
        self.reader = reader
        self.data = data

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(marshal.loads(memoryview(self.data)[16:]), module.__dict__)

    def get_source(self, name):  # for tracebacks
        return self.reader.get_source(name)


if sys.implementation.cache_tag:
    sys.meta_path.insert(sys.meta_path.index(PathFinder), _Precompiled(os.path.dirname(__file__)))

from kazoo_tail.cli import main  # noqa: E402

main()
'''
# Not precompiled: certifi reads its CA bundle as a package resource, which only zipimport's own
# loader serves; pygments and markdown-it (rich's syntax highlighting and Markdown, which
# kazoo-tail does not use) are most of the bytecode's size and none of its start-up.
FROM_SOURCE = ("certifi", "pygments", "markdown_it", "mdurl")
# Run by each target Python: its bytecode for the listed sources, under __pyc__/<its tag>/.
COMPILE = """
import py_compile, sys
tree, names = sys.argv[1], sys.stdin.read().split()
tag = sys.implementation.cache_tag
for name in names:
    py_compile.compile(
        tree + "/" + name,
        cfile=tree + "/__pyc__/" + tag + "/" + name + "c",
        dfile="kazoo-tail.pyz/" + name,
        doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
print(tag)
"""
# The Pythons the file supports; those found on PATH get bytecode by default.
SUPPORTED = ("3.9", "3.10", "3.11", "3.12", "3.13")
# The zip format's earliest date: the archive does not change with the files' mtimes.
EPOCH = (1980, 1, 1, 0, 0, 0)
LICENSE_NAME = re.compile(r"(LICEN[CS]E|COPYING|NOTICE|AUTHORS)", re.IGNORECASE)


def install_dependencies(site: Path) -> None:
    """The pinned wheels, unpacked into ``site``; only pure-Python ones, for 3.9."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-deps",  # the pins are the whole set: nothing else is chosen behind our back
        "--target",
        str(site),
        "--only-binary=:all:",
        "--implementation",
        "py",
        "--abi",
        "none",
        "--platform",
        "any",
        "--python-version",
        ".".join(map(str, OLDEST_PYTHON)),
        *PINS,
    ]
    # The target directory is a scratch one, so pip's warning about running as root is noise.
    subprocess.run(command, check=True, env={**os.environ, "PIP_ROOT_USER_ACTION": "ignore"})


def check_requires_python(site: Path) -> None:
    """Refuse a release that says it needs a newer Python than the oldest one supported."""
    for metadata in sorted(site.glob("*.dist-info/METADATA")):
        message = email.parser.Parser().parsestr(metadata.read_text(encoding="utf-8"))
        for clause in (message.get("Requires-Python") or "").split(","):
            found = re.fullmatch(r"\s*>=?\s*(\d+)\.(\d+)(?:\.\d+)*\s*", clause)
            if clause.strip() and found is None:
                continue  # "!=3.0.*" and such exclude only Pythons far older than 3.9
            if found and (int(found[1]), int(found[2])) > OLDEST_PYTHON:
                raise SystemExit(f"{metadata.parent.name} needs Python {clause.strip()}")


def collect_licenses(site: Path, tree: Path) -> None:
    """Each dependency's licence and notice files, under licenses/<distribution>/."""
    for info in sorted(site.glob("*.dist-info")):
        name = info.name.removesuffix(".dist-info")
        for path in sorted(info.rglob("*")):
            if path.is_file() and LICENSE_NAME.search(path.name):
                target = tree / "licenses" / name / path.relative_to(info)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)


def assemble(site: Path, tree: Path) -> None:
    for path in sorted(site.iterdir()):
        # Of the metadata only METADATA is kept: --version reads the libraries' versions from
        # it (importlib.metadata finds it in the archive). Console scripts are not needed to
        # import; licences were kept apart.
        if path.name.endswith(".dist-info"):
            (tree / path.name).mkdir()
            shutil.copyfile(path / "METADATA", tree / path.name / "METADATA")
            continue
        if path.name == "bin":
            continue
        if path.is_dir():
            shutil.copytree(path, tree / path.name)
        else:
            shutil.copyfile(path, tree / path.name)
    shutil.copytree(
        ROOT / "kazoo_tail",
        tree / "kazoo_tail",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    shutil.copyfile(ROOT / "LICENSE", tree / "licenses" / "kazoo-tail" / "LICENSE")
    (tree / "__main__.py").write_text(MAIN, encoding="utf-8")


# The environment without what would change how a target Python runs.
CLEAN_ENV = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}


def default_pythons() -> list[str]:
    found = [shutil.which(f"python{version}") for version in SUPPORTED]
    return [sys.executable, *(path for path in found if path)]


def precompile(tree: Path, pythons: list[str]) -> list[str]:
    """Bytecode from each of ``pythons`` (one per cache tag); returns the tags."""
    sources = sorted(
        path.relative_to(tree).as_posix()
        for path in tree.rglob("*.py")
        if path.parent != tree and path.relative_to(tree).parts[0] not in FROM_SOURCE
    )
    tags: list[str] = []
    for python in pythons:
        probe = [python, "-I", "-c", "import sys; print(sys.implementation.cache_tag)"]
        found = subprocess.run(probe, capture_output=True, text=True)
        tag = found.stdout.strip()
        if found.returncode != 0 or not tag or tag in tags:
            continue  # not a working Python (a pyenv shim for a version not selected), or a twin
        # A fixed hash seed: sets are written in hash order, so a random one (and -I, which
        # ignores PYTHONHASHSEED) would make each build's bytecode differ.
        compiled = subprocess.run(
            [python, "-s", "-c", COMPILE, str(tree)],
            input="\n".join(sources),
            capture_output=True,
            text=True,
            env={**CLEAN_ENV, "PYTHONHASHSEED": "0"},
        )
        if compiled.returncode != 0:
            raise SystemExit(f"{python} could not compile the sources:\n{compiled.stderr}")
        tags.append(tag)
    return tags


def write_archive(tree: Path, output: Path) -> None:
    """A zip with a shebang line: sorted names and fixed timestamps, so builds compare equal."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with partial.open("wb") as handle:
        handle.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(tree.rglob("*")):
                if not path.is_file() or "__pycache__" in path.parts:
                    continue
                info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                archive.writestr(info, path.read_bytes())
    partial.chmod(0o755)
    partial.replace(output)


def build(output: Path, pythons: list[str]) -> tuple[Path, list[str]]:
    with tempfile.TemporaryDirectory(prefix="kazoo-tail-pyz-") as scratch:
        site, tree = Path(scratch) / "site", Path(scratch) / "tree"
        install_dependencies(site)
        check_requires_python(site)
        tree.mkdir()
        collect_licenses(site, tree)
        (tree / "licenses" / "kazoo-tail").mkdir(parents=True)
        assemble(site, tree)
        tags = precompile(tree, pythons)
        write_archive(tree, output)
    return output, tags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default: %(default)s")
    parser.add_argument(
        "--precompile",
        metavar="PYTHON",
        action="append",
        help="a Python to store bytecode for, so that it starts faster (repeatable) "
        f"[default: this one and any python{SUPPORTED[0]} ... python{SUPPORTED[-1]} on PATH]",
    )
    args = parser.parse_args()
    output, tags = build(args.output, args.precompile or default_pythons())
    size = output.stat().st_size / 1e6
    print(f"{output}: {size:.1f} MB, bytecode for {', '.join(tags) or 'no Python'}")


if __name__ == "__main__":
    main()
