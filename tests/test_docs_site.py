"""The documentation site (mkdocs.yml) lists every page and documents every public name.

`make docs` builds the site itself (strict); these checks read mkdocs.yml and the pages only.
"""

import importlib.util
import re
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import yaml

import pdopt

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api"

NOT_IN_NAV: dict[str, str] = {
    # the build's hook (docs/hooks/formulations.py) puts it in the nav, before Architecture, when the page exists
    "report.md": "added to the nav at build time, only when present",
}
"""Pages under docs/ left out of mkdocs.yml's nav on purpose, and why."""

GENERATED = {"formulation-reference.md"}
"""Pages the build makes (docs/hooks/formulations.py): in the nav, not in docs/."""


class _Loader(yaml.SafeLoader):
    """mkdocs.yml may carry tags (!!python/name, !ENV) that a safe load refuses; none matters to the nav."""


_Loader.add_multi_constructor("", lambda loader, suffix, node: None)


def _config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)
    return config


def _nav_pages(item: Any) -> list[str]:
    if isinstance(item, str):
        return [item]
    if isinstance(item, list):
        return [page for sub in item for page in _nav_pages(sub)]
    if isinstance(item, dict):
        return [page for sub in item.values() for page in _nav_pages(sub)]
    return []


def test_site_config() -> None:
    config = _config()
    assert config["docs_dir"] == "docs"
    assert "docs/hooks/formulations.py" in config["hooks"]
    assert "hooks/" in config["exclude_docs"]


def test_every_page_is_in_the_nav() -> None:
    nav = _nav_pages(_config()["nav"])
    assert len(nav) == len(set(nav)), "a page listed twice"
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "hooks" not in p.parts}
    missing = pages - set(nav) - set(NOT_IN_NAV)
    assert not missing, f"pages not in mkdocs.yml's nav (add them, or to NOT_IN_NAV with why): {sorted(missing)}"
    unknown = set(nav) - pages - GENERATED
    assert not unknown, f"nav entries with no page: {sorted(unknown)}"


def test_every_public_name_is_in_the_api_reference() -> None:
    text = "\n".join(p.read_text() for p in sorted(API.glob("*.md")))
    documented = set(re.findall(r"^::: (\S+)", text, re.M))
    for name in pdopt.__all__:
        defined_in = pdopt._EXPORTS.get(name, "pdopt")
        assert {f"pdopt.{name}", f"{defined_in}.{name}"} & documented, f"pdopt.{name} has no ::: entry in docs/api/"
    nav = _nav_pages(_config()["nav"])
    assert {f"api/{p.name}" for p in API.glob("*.md")} <= set(nav)


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("formulations_hook", DOCS / "hooks" / "formulations.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_page_has_every_constraint_family() -> None:
    page = _hook().reference(ROOT)
    for path in sorted((ROOT / "formulations").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        for family, c in spec["constraints"].items():
            assert f"#### `{family}`" in page, f"{path.name}: {family}"
            assert " ".join(c["math"].split()) in page, f"{path.name}: the maths of {family}"
        for variable in spec["variables"]:
            assert f"#### `{variable}`" in page, f"{path.name}: {variable}"


def test_report_goes_into_the_nav_only_when_present(tmp_path: Path) -> None:
    hook = _hook()
    nav = [{"Home": "index.md"}, {"Architecture": "architecture.md"}]
    config = SimpleNamespace(docs_dir=str(tmp_path), nav=[*nav])
    assert hook.on_config(config).nav == nav
    (tmp_path / "report.md").write_text("# Report\n")
    assert hook.on_config(config).nav == [{"Home": "index.md"}, {"Report": "report.md"}, nav[1]]
    assert hook.on_config(config).nav == [{"Home": "index.md"}, {"Report": "report.md"}, nav[1]]  # once
