#!/usr/bin/env python3
"""No module imports another that imports it back: checks every crate under shared/ and functions/.

A module is a source file (`lib.rs`, `main.rs` and `mod.rs` are their folder's module). A module
imports another when it names it, or an item in it, by a path (`crate::a::b`, `super::c`,
`self::d`, or a child's name). A module that only declares its children and re-exports their
items (`pub use child::Item`) is a facade: naming a re-exported item counts as naming the module
that defines it. Prints each cycle and exits 1 when there is one.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE = re.compile(r"\buse\s+([^;]+);", re.S)
PUB_USE = re.compile(r"\bpub(?:\([a-z]+\))?\s+use\s+([^;]+);", re.S)


def strip(source):
    """Source without comments, string literals (paths in them are not imports) and the inline
    test module at the end (its `super` is the file's own module)."""
    source = re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", source)[0]
    source = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
    source = re.sub(r"//[^\n]*", " ", source)
    source = re.sub(r'r#*"(?:.|\n)*?"#*', '""', source)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', source)


def expand(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (aliases dropped)."""
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1 : i], tree[i + 1 :]
                parts, level, begin = [], 0, 0
                for j, c in enumerate(inner):
                    level += c == "{"
                    level -= c == "}"
                    if c == "," and level == 0:
                        parts.append(inner[begin:j])
                        begin = j + 1
                parts.append(inner[begin:])
                return [p for part in parts if part for p in expand(prefix + part + rest)]
    return [re.sub(r"as[A-Za-z_0-9]+$", "", tree.split(" as ")[0])]


def crate_modules(src):
    modules = {}
    for file in src.rglob("*.rs"):
        parts = list(file.relative_to(src).with_suffix("").parts)
        if parts[-1] in ("lib", "main", "mod"):
            parts = parts[:-1]
        modules[tuple(parts)] = strip(file.read_text())
    return modules


def resolve(modules, here, path, facades):
    """The module a path names (its longest known prefix), following facades' re-exports."""
    segments = path.split("::")
    head, rest = segments[0], segments[1:]
    if head == "crate":
        base = ()
    elif head == "super":
        base = here[:-1]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif head == "self":
        base = here
    else:
        base, rest = here, segments  # a child's name
        if (here + (head,)) not in modules:
            return None
    target = base
    if rest and rest[0] in facades.get(base, {}).get("<external>", set()):
        return None  # an alias of another crate's module (`use storybook_core::domain;`)
    for i, segment in enumerate(rest):
        if target + (segment,) in modules:
            target = target + (segment,)
        else:
            exported = facades.get(target, {}).get(segment)
            return exported if exported is not None else target
    return target


def check_crate(src):
    modules = crate_modules(src)
    # Re-exports of each module: item name -> defining module.
    facades = {}
    for module, source in modules.items():
        for tree in PUB_USE.findall(source):
            for path in expand(tree):
                segments = path.split("::")
                first = segments[0]
                if first in ("crate", "super", "self") or (module + (first,)) in modules:
                    target = resolve(modules, module, "::".join(segments[:-1]), {})
                    if target is not None:
                        facades.setdefault(module, {})[segments[-1]] = target
    # Private aliases of other crates' items (`use storybook_core::{domain, ports};`).
    for module, source in modules.items():
        for tree in USE.findall(source):
            for path in expand(tree):
                first = path.split("::")[0]
                if first not in ("crate", "super", "self") and (module + (first,)) not in modules:
                    facades.setdefault(module, {}).setdefault("<external>", set()).add(
                        path.split("::")[-1]
                    )
    edges = {module: set() for module in modules}
    for module, source in modules.items():
        reexports = set()
        for tree in PUB_USE.findall(source):
            reexports.update(expand(tree))
        # A re-export is the facade's, not an import (naming its item counts for its module).
        source = PUB_USE.sub(" ", source)
        paths = [m.group(1) + m.group(2) for m in PATH.finditer(source)]
        # Children named by a relative path (`limits::LocalLimiter`).
        for child in (m[-1] for m in modules if len(m) == len(module) + 1 and m[:-1] == module):
            for m in re.finditer(r"(?<![:\w])" + child + r"((?:::[A-Za-z_][A-Za-z0-9_]*)+)", source):
                paths.append(child + m.group(1))
        for tree in USE.findall(source):
            paths.extend(p for p in expand(tree) if p not in reexports)
        for path in paths:
            target = resolve(modules, module, path, facades)
            if target is not None and target != module and not module[: len(target)] == target:
                edges[module].add(target)
            elif target is not None and target != module and target == module[: len(target)]:
                # Naming an ancestor's own item (not a re-export) imports the ancestor.
                edges[module].add(target)
    return modules, edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return found


def main():
    failed = False
    crates = sorted(p.parent for p in ROOT.glob("shared/*/src")) + sorted(
        p.parent for p in ROOT.glob("functions/*/src")
    )
    for crate in crates:
        _, edges = check_crate(crate / "src")
        for component in cycles(edges):
            failed = True
            names = ["::".join(m) or "(root)" for m in sorted(component)]
            print(f"{crate.relative_to(ROOT)}: modules import each other: {', '.join(names)}")
            for module in sorted(component):
                inside = sorted("::".join(t) or "(root)" for t in edges[module] if t in component)
                print(f"  {'::'.join(module) or '(root)'} -> {', '.join(inside)}")
    if failed:
        sys.exit(1)
    print(f"no module cycles in {len(crates)} crates")


if __name__ == "__main__":
    main()
