"""Imports go down the layers, never up (docs/architecture.md): a test, so the map stays true."""
import ast
from pathlib import Path

import facerecon

PACKAGE = Path(facerecon.__file__).parent
# lower number = lower layer; a module may import its own layer and those below it
LAYERS = {
    "errors": 0, "native_logs": 0, "geometry": 1, "models": 2, "render": 3, "landmarks": 4, "fitting": 5,
    "evaluation": 6, "io": 7,
    "reconstruction": 8, "texturing": 8, "detail_outputs": 8, "pipeline": 9, "tracking": 9, "person": 9,
    "harness": 10, "commands": 11, "cli": 12, "server": 12,
}


def _layer_of(module: str) -> int | None:
    head = module.split(".")[0]
    return LAYERS.get(head)


def _imports(path: Path, own: str) -> list[str]:
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
                if not node.module:  # from . import x
                    out += [f"{target}.{a.name}".strip(".") for a in node.names]
                    continue
            elif node.module and node.module.startswith("facerecon."):
                target = node.module[len("facerecon."):]
            else:
                continue
            out.append(target)
        elif isinstance(node, ast.Import):
            out += [a.name[len("facerecon."):] for a in node.names if a.name.startswith("facerecon.")]
    return out


def test_no_module_imports_a_higher_layer():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if own == "__init__" or _layer_of(own) is None:
            continue
        for target in _imports(path, own):
            layer = _layer_of(target)
            if layer is not None and layer > LAYERS[own]:
                bad.append(f"{rel} imports {target}")
    assert not bad, "imports that go up a layer:\n" + "\n".join(bad)


def test_every_package_has_a_layer():
    missing = [p.name for p in PACKAGE.iterdir()
               if (p.is_dir() and (p / "__init__.py").exists() or p.suffix == ".py") and p.stem != "__init__"
               and p.stem not in LAYERS and p.name != "data"]
    assert not missing, f"add these to LAYERS and docs/architecture.md: {missing}"
