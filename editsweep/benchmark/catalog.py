"""The API catalog: every API the benchmark may deprecate, its replacement and its rewrite rule.

`catalog.yaml` is the data; this module loads and checks it (the adapter source defines the
new name with exactly the new signature; the rule's parameters line up) and turns entries into
the `catalog.json` records of docs/architecture.md.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from editsweep.apis import parse_api
from editsweep.benchmark.rules import RewriteRule, Signature

CATALOG_FILE = Path(__file__).with_name("catalog.yaml")


@dataclass(frozen=True)
class CatalogEntry:
    api: str
    kind: str  # module | builtin | method
    new_api: str
    rule: RewriteRule
    doc: str
    example: str  # an old-style call
    source: str  # python source defining new_api

    @property
    def signature(self) -> str:
        return f"{self.new_api}{self.rule.new.text}"

    @property
    def usage(self) -> str:
        """The example call in its new form (what a user of the new API writes)."""
        from editsweep.benchmark.rewriter import rewrite_source

        return rewrite_source(self.example, self).strip()

    def adapter(self):
        """The replacement function, defined in a fresh namespace (as the sandbox installs it)."""
        namespace: dict = {}
        exec(compile(self.source, f"<adapter {self.new_api}>", "exec"), namespace)
        return namespace[self.new_api]

    def to_json(self) -> dict:
        return {
            "api": self.api,
            "kind": self.kind,
            "new_api": self.new_api,
            "usage": self.usage,
            "old_usage": self.example,
            "signature": self.signature,
            "doc": self.doc,
            "source": self.source,
            "rewrite": self.rule.to_data(),
        }


def _signature_matches(function, expected: Signature) -> bool:
    kinds = {
        inspect.Parameter.POSITIONAL_ONLY: "positional_only",
        inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional_or_keyword",
        inspect.Parameter.VAR_POSITIONAL: "var_positional",
        inspect.Parameter.KEYWORD_ONLY: "keyword_only",
    }
    actual = [
        (p.name, kinds.get(p.kind, "other"), p.default is not inspect.Parameter.empty or p.kind == p.VAR_POSITIONAL)
        for p in inspect.signature(function).parameters.values()
    ]
    return actual == [(p.name, p.kind, p.has_default) for p in expected.params]


def _entry(data: dict, where: str) -> CatalogEntry:
    for key in ("api", "old", "new", "doc", "example", "source"):
        if key not in data:
            raise ValueError(f"{where}: missing key {key!r}")
    ref = parse_api(data["api"])
    if ref.qualname != data["api"]:
        raise ValueError(f"{where}: {data['api']!r} is not canonical (use {ref.qualname!r})")
    where = f"{where} ({ref.qualname})"
    rule = RewriteRule.from_data(data, where)
    if ref.kind == "method" and rule.old.params[:1] and rule.old.params[0].name != "self":
        raise ValueError(f"{where}: a method's old signature must start with self")
    entry = CatalogEntry(
        api=ref.qualname,
        kind=ref.kind,
        new_api=ref.new_name,
        rule=rule,
        doc=" ".join(str(data["doc"]).split()),
        example=str(data["example"]),
        source=str(data["source"]),
    )
    try:
        function = entry.adapter()
    except Exception as exc:  # any failure of the adapter source is a catalog error
        raise ValueError(f"{where}: the source does not define {entry.new_api}: {exc!r}") from exc
    if not _signature_matches(function, rule.new):
        raise ValueError(
            f"{where}: {entry.new_api}{inspect.signature(function)} does not match the new signature {rule.new.text}"
        )
    return entry


@lru_cache(maxsize=4)
def _load(path: str, digest: str) -> dict[str, CatalogEntry]:
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of API entries")
    entries: dict[str, CatalogEntry] = {}
    for index, item in enumerate(data):
        entry = _entry(item, f"{path} entry {index}")
        if entry.api in entries:
            raise ValueError(f"{path}: {entry.api} is listed twice")
        entries[entry.api] = entry
    return entries


def load_api_catalog(path: Path | str = CATALOG_FILE) -> dict[str, CatalogEntry]:
    """All catalog entries by canonical API name, checked."""
    path = Path(path)
    return _load(str(path), hashlib.sha256(path.read_bytes()).hexdigest())


def catalog_digest(path: Path | str = CATALOG_FILE) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
