"""A local document collection searched with SQLite FTS5 (BM25): the offline stand-in for web search.

A corpus is built from a folder of text/markdown files, a JSONL of ``{id, title, text}``, or documents in
memory. The index is cached on disk under a fingerprint of the source and rebuilt when the source changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from .._files import loads, read_text
from ..errors import ConfigError
from .base import NotFound, Tool

__all__ = ["Corpus", "Document", "Hit"]

_INDEX_VERSION = "1"
_TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    title: str
    snippet: str
    score: float


def _cache_root() -> Path:
    from ..models.local_assets import cache_dir

    return cache_dir() / "corpora"


def _read_jsonl(path: Path) -> Iterator[Document]:
    seen: set[str] = set()
    count = 0
    for n, line in enumerate(read_text(path, "corpus file").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}:{n}: not valid JSON ({exc.msg}); each line must be an object with id, title, text"
            ) from None
        if not isinstance(row, dict):
            raise ConfigError(f"{path}:{n}: expected a JSON object with id, title, text")
        missing = [k for k in ("id", "title", "text") if k not in row]
        if missing:
            raise ConfigError(
                f"{path}:{n}: missing field(s) {', '.join(missing)}; each line needs id, title, text"
            )
        doc_id, title, text = str(row["id"]), row["title"], row["text"]
        if not isinstance(title, str) or not isinstance(text, str):
            raise ConfigError(f"{path}:{n}: title and text must be strings")
        if doc_id in seen:
            raise ConfigError(f"{path}:{n}: duplicate id {doc_id!r}; ids must be unique")
        seen.add(doc_id)
        count += 1
        yield Document(doc_id, title, text)
    if count == 0:
        raise ConfigError(
            f'{path}: the corpus is empty; add lines like {{"id": "1", "title": ..., "text": ...}}'
        )


def _split_markdown(rel: str, text: str) -> Iterator[Document]:
    """One document per level-1/2 section, titled "File title: Section" so search can point at a part."""
    lines = text.splitlines()
    doc_title = next((ln.lstrip("# ").strip() for ln in lines if ln.startswith("# ")), Path(rel).stem)
    section, index = doc_title, 0
    body: list[str] = []
    for line in lines + ["## "]:
        if line.startswith("## "):
            content = "\n".join(body).strip()
            if content:
                title = doc_title if section == doc_title else f"{doc_title}: {section}"
                yield Document(f"{rel}#{index}", title, content)
                index += 1
            section, body = line[3:].strip(), []
        elif not line.startswith("# "):
            body.append(line)


def folder_files(folder: Path, follow_links: bool = False) -> list[Path]:
    """The text files under ``folder``; a link that leads out of the folder is skipped unless ``follow_links``
    (a link to a system file must not become searchable)."""
    root = folder.resolve()
    out = []
    for p in folder.rglob("*"):
        if not (p.is_file() and p.suffix.lower() in _TEXT_SUFFIXES):
            continue
        if not follow_links and (p.is_symlink() or not p.resolve().is_relative_to(root)):
            continue
        out.append(p)
    return sorted(out)


def _read_folder(folder: Path, follow_links: bool = False) -> Iterator[Document]:
    files = folder_files(folder, follow_links)
    if not files:
        raise ConfigError(f"{folder}: no .txt, .md or .rst files to index")
    for path in files:
        rel = path.relative_to(folder).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(
                f"{path}: not UTF-8 text; convert it or remove it from the corpus folder"
            ) from None
        if path.suffix.lower() in (".md", ".markdown"):
            yield from _split_markdown(rel, text)
        else:
            yield Document(rel, path.stem.replace("_", " "), text)


def _fingerprint_files(paths: Iterable[Path], root: Path) -> str:
    digest = hashlib.sha256(_INDEX_VERSION.encode())
    for p in sorted(paths):
        st = p.stat()
        digest.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


class Corpus:
    """An opened FTS5 index. Build one with :meth:`from_folder`, :meth:`from_jsonl` or :meth:`from_documents`."""

    def __init__(self, db_path: str | Path, name: str = "corpus") -> None:
        self.path = Path(db_path)
        self.name = name
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._lock = threading.Lock()
        try:
            (self._size,) = self._db.execute("SELECT count(*) FROM docs").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"corpus index {self.path} is unreadable ({exc}); delete it to rebuild"
            ) from None

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def from_documents(
        cls, docs: Iterable[Document], *, name: str = "corpus", cache_dir: str | Path | None = None
    ) -> Corpus:
        items = list(docs)
        if not items:
            raise ConfigError("cannot build a corpus from no documents")
        digest = hashlib.sha256(_INDEX_VERSION.encode())
        for d in items:
            digest.update(f"{d.id}\0{d.title}\0{d.text}\1".encode())
        return cls._cached(items, name, digest.hexdigest()[:20], cache_dir)

    @classmethod
    def from_jsonl(cls, path: str | Path, *, cache_dir: str | Path | None = None) -> Corpus:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"corpus file {p} does not exist")
        fingerprint = _fingerprint_files([p], p.parent)
        return cls._cached(lambda: _read_jsonl(p), p.stem, fingerprint, cache_dir)

    @classmethod
    def from_folder(
        cls, folder: str | Path, *, cache_dir: str | Path | None = None, follow_links: bool = False
    ) -> Corpus:
        """One document per markdown section or text file; links out of the folder are not followed unless
        ``follow_links``."""
        root = Path(folder)
        if not root.is_dir():
            raise ConfigError(f"corpus folder {root} does not exist")
        files = folder_files(root, follow_links)
        fingerprint = _fingerprint_files(files, root) + ("-links" if follow_links else "")
        return cls._cached(
            lambda: _read_folder(root, follow_links), root.resolve().name, fingerprint, cache_dir
        )

    @classmethod
    def open_path(cls, path: str | Path) -> Corpus:
        """A folder or a ``.jsonl`` file, whichever ``path`` is (what the CLI's ``--corpus`` takes)."""
        p = Path(path)
        if p.is_dir():
            return cls.from_folder(p)
        if p.suffix.lower() in (".jsonl", ".json"):
            return cls.from_jsonl(p)
        raise ConfigError(f"--corpus {p}: give a folder of .md/.txt files or a .jsonl of {{id, title, text}}")

    @classmethod
    def _cached(
        cls,
        docs: Iterable[Document] | Callable[[], Iterable[Document]],
        name: str,
        fingerprint: str,
        cache_dir: str | Path | None,
    ) -> Corpus:
        root = Path(cache_dir) if cache_dir else _cache_root()
        root.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60]
        target = root / f"{safe}-{fingerprint}.sqlite"
        if target.exists():
            try:
                return cls(target, name)
            except ConfigError:
                target.unlink(missing_ok=True)  # a damaged cache is rebuilt
        source = docs() if callable(docs) else docs
        fd, tmp = tempfile.mkstemp(dir=root, suffix=".tmp")
        os.close(fd)
        try:
            _build(Path(tmp), source)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return cls(target, name)

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._size)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """BM25 ranking of documents matching any word of ``query``."""
        words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))[:32]
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
        sql = (
            "SELECT d.id, d.title, snippet(fts, 1, '', '', ' ... ', 28), bm25(fts, 3.0, 1.0) AS score "
            "FROM fts JOIN docs d ON d.rowid = fts.rowid WHERE fts MATCH ? ORDER BY score LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (match, int(k))).fetchall()
        return [Hit(r[0], r[1], " ".join(r[2].split()), -float(r[3])) for r in rows]

    def get(self, title: str) -> Document | None:
        """The document with this title (exact, then case-insensitive)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, title, text FROM docs WHERE title = ? LIMIT 1", (title,)
            ).fetchone()
            if row is None:
                row = self._db.execute(
                    "SELECT id, title, text FROM docs WHERE title = ? COLLATE NOCASE LIMIT 1",
                    (title.strip(),),
                ).fetchone()
        return Document(*row) if row else None

    def documents(self) -> Iterator[Document]:
        with self._lock:
            rows = self._db.execute("SELECT id, title, text FROM docs ORDER BY rowid").fetchall()
        return (Document(*r) for r in rows)

    # -- as agent tools ------------------------------------------------------------------------
    def tools(
        self,
        *,
        k: int = 5,
        search_price: Decimal | float | str = "0.001",
        open_price: Decimal | float | str = "0.001",
        max_chars: int = 4000,
        cache: bool = False,
    ) -> list[Tool]:
        """``search(queries)`` (one budget unit per query) and ``open(title)``; priced at BATS's $0.001.
        ``cache``: a repeated identical call is answered from the first, free (see :class:`Tool`)."""
        corpus = self

        async def search(queries: list[str]) -> str | NotFound:
            """Search the document collection. Send one or more short keyword queries; each query costs one
            search unit. Returns titles with snippets; open a title to read the document.

            Args:
                queries: one or more short keyword queries, each a few words
            """
            blocks, found = [], False
            for q in queries:
                hits = corpus.search(q, k)
                found = found or bool(hits)
                lines = [f"{i}. [{h.title}] {h.snippet}" for i, h in enumerate(hits, 1)] or ["(no results)"]
                blocks.append(f'Results for "{q}":\n' + "\n".join(lines))
            text = "\n\n".join(blocks)
            return text if found else NotFound(text)

        async def open(title: str) -> str | NotFound:  # noqa: A001 - the tool's public name
            """Open a document by its exact title (as shown in search results) and read its text.

            Args:
                title: a title exactly as it appears in the search results
            """
            doc = corpus.get(title)
            if doc is None:
                near = corpus.search(title, 3)
                hint = "; ".join(h.title for h in near) or "none"
                return NotFound(f"No document titled {title!r}. Closest titles: {hint}")
            return f"# {doc.title}\n\n{doc.text}"

        return [
            Tool(search, price=search_price, units="queries", max_result_chars=max_chars, cache=cache),
            Tool(open, price=open_price, max_result_chars=max_chars, cache=cache, reads=True),
        ]


def _build(path: Path, docs: Iterable[Document]) -> None:
    db = sqlite3.connect(str(path))
    try:
        db.executescript(
            "CREATE TABLE docs(rowid INTEGER PRIMARY KEY, id TEXT UNIQUE, title TEXT, text TEXT);"
            "CREATE INDEX docs_title ON docs(title);"
            "CREATE VIRTUAL TABLE fts USING fts5(title, text, content='docs', content_rowid='rowid',"
            " tokenize='porter unicode61');"
        )
        try:
            db.executemany(
                "INSERT INTO docs(id, title, text) VALUES (?, ?, ?)", ((d.id, d.title, d.text) for d in docs)
            )
        except sqlite3.IntegrityError as exc:
            raise ConfigError(f"corpus has duplicate document ids ({exc}); ids must be unique") from None
        db.execute("INSERT INTO fts(rowid, title, text) SELECT rowid, title, text FROM docs")
        db.commit()
    finally:
        db.close()
