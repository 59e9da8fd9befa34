#!/usr/bin/env python3
"""Import circles between the modules of each crate (`crates/*/src`).

A module is one file. Module A depends on module B when A's non-test code names `crate::b::...`
or `super::...` resolving to B. A circle is a cycle of such dependencies among modules none of
which contains another (a parent using its child and the child using its parent's types is
one concept spread over files, not a circle). Exits 1 and prints each circle found.

Usage: tests/tools/import_cycles.py [REPO_ROOT]
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
PATH = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::[a-z_][a-z0-9_]*)*)::\{([^;]*)\};", re.S)


def module_of(src: pathlib.Path, file: pathlib.Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts.pop()
    return tuple(parts)


def strip_tests(text: str) -> str:
    """The file without `#[cfg(test)]` items (a test module may use anything)."""
    out, i = [], 0
    while True:
        j = text.find("#[cfg(test)]", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        brace, semi = text.find("{", j), text.find(";", j)
        if semi >= 0 and (brace < 0 or semi < brace):
            i = semi + 1
            continue
        depth, k = 0, brace
        while k < len(text):
            depth += {"{": 1, "}": -1}.get(text[k], 0)
            k += 1
            if depth == 0:
                break
        i = k


def resolve(module: tuple, base: str, tail: list, modules: set) -> tuple:
    start = () if base == "crate" else module[:-1]
    path = list(start)
    for seg in tail:
        if seg == "super":
            path = path[:-1]
            continue
        if tuple(path + [seg]) in modules:
            path.append(seg)
        else:
            break
    return tuple(path)


def crate_circles(src: pathlib.Path) -> list:
    files = [f for f in src.rglob("*.rs") if f.name != "tests.rs" and "bin" not in f.parts]
    modules = {module_of(src, f): f for f in files}
    edges = {m: set() for m in modules}
    for module, file in modules.items():
        text = strip_tests(file.read_text())
        refs = [(b, t) for b, t in PATH.findall(text)]
        for base, prefix, group in USE_GROUP.findall(text):
            for item in re.split(r",", group):
                name = item.strip().split("::")
                if name and re.fullmatch(r"[a-z_][a-z0-9_]*", name[0]):
                    refs.append((base, prefix + "::" + "::".join(name)))
        for base, tail in refs:
            target = resolve(module, base, [s for s in tail.split("::") if s], set(modules))
            if target != module and target in modules:
                edges[module].add(target)

    def related(a, b):
        return a[: len(b)] == b or b[: len(a)] == a

    circles, seen = [], set()
    for start in modules:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in edges[node]:
                if any(related(nxt, p) for p in path if p != start) or related(nxt, node):
                    continue
                if nxt == start:
                    continue
                if start in edges[nxt] and not related(start, nxt):
                    key = frozenset(path + [nxt])
                    if key not in seen:
                        seen.add(key)
                        circles.append(path + [nxt, start])
                elif len(path) < 6 and nxt not in path:
                    stack.append((nxt, path + [nxt]))
    return circles


def main() -> int:
    found = 0
    for src in sorted(ROOT.glob("crates/*/src")) + [ROOT / "tests/e2e/src", ROOT / "tests/node/src"]:
        if not src.is_dir():
            continue
        for circle in crate_circles(src):
            found += 1
            names = " -> ".join("::".join(m) or "crate" for m in circle)
            print(f"{src.parent.name}: import circle {names}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
