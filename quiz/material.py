"""The user's own material for a quiz: an uploaded .txt, .md or .pdf file, or pasted text.

    from quiz.material import read_material, material_title
    text = read_material("cells.pdf", data)          # str, or MaterialError with a one-line fix
    quiz = generate_quiz(backend, material_title(text, "cells.pdf"), material=text)

Standard library only at import; the PDF library (pypdf) is imported when a PDF is read. The limits
keep one upload within what a two-core CPU Space reads in seconds and writes a quiz about in minutes.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import re
import unicodedata

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 10 * 1024 * 1024  # 10 MB: a textbook chapter as PDF, with its figures
MAX_MATERIAL_CHARS = 200_000  # about 50,000 words or 50,000 tokens of text (a short book)
MAX_PDF_PAGES = 1000
TEXT_EXTENSIONS = (".txt", ".md", ".markdown")
EXTENSIONS = (*TEXT_EXTENSIONS, ".pdf")
_SUPPORTED = ".txt, .md or .pdf"
# More control characters than this share (outside tabs and line breaks), plus a couple of strays,
# means the bytes are no text.
_MAX_CONTROL_SHARE = 0.01
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t\u00a0]+\n")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


class MaterialError(ValueError):
    """Material that cannot be used for a quiz; the message names the problem and the fix on one line."""


def _display_name(filename: str) -> str:
    name = os.path.basename(str(filename).replace("\\", "/")) or "the file"
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    return name if len(name) <= 80 else name[:77] + "..."


def read_material(filename: str, data: bytes) -> str:
    """The text of an uploaded file: ``.txt``/``.md`` decoded (UTF-8 with or without BOM, UTF-16 with a
    BOM, else Windows-1252/Latin-1), ``.pdf`` through its text layer.

    Raises ``MaterialError`` for an unsupported extension, an empty file, a file over
    ``MAX_FILE_BYTES`` or text over ``MAX_MATERIAL_CHARS``, binary data in a text file, and a PDF that
    is scanned (no text layer), password-protected, damaged or over ``MAX_PDF_PAGES`` pages.
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"read_material needs the file's bytes, got {type(data).__name__}")
    name = _display_name(filename)
    extension = os.path.splitext(name)[1].lower()
    if extension not in EXTENSIONS:
        what = f"a {extension} file" if extension else "a file without an extension"
        raise MaterialError(f"'{name}' is {what}, which cannot be read: upload a {_SUPPORTED} file, or paste the text")
    if len(data) > MAX_FILE_BYTES:
        raise MaterialError(f"'{name}' is {len(data) / 2**20:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit: "
                            f"upload only the chapters to be quizzed on, or paste the text")
    if not data.strip():
        raise MaterialError(f"'{name}' is empty: choose a file with text in it, or paste the text")
    text = _pdf_text(name, data) if extension == ".pdf" else _decode(name, data)
    return clean_material(text, name)


def clean_material(text: str, name: str | None = None) -> str:
    """Pasted (or extracted) material made ready for a quiz: line ends unified, control characters
    removed, blank runs shortened. ``MaterialError`` when nothing is left or it is too long."""
    if not isinstance(text, str):
        raise TypeError(f"material must be a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text.replace("\ufeff", "").replace("\x0c", "\n\n"))
    text = _BLANK_LINES.sub("\n\n", _TRAILING_SPACE.sub("\n", text + "\n")).strip()
    subject = f"'{name}'" if name else "the material"
    if not text:
        raise MaterialError(f"{subject} is empty: give the notes or text the quiz should be about")
    if len(text) > MAX_MATERIAL_CHARS:
        raise MaterialError(f"{subject} has {len(text):,} characters of text, over the {MAX_MATERIAL_CHARS:,} limit: "
                            f"use only the chapters to be quizzed on, or split it into several quizzes")
    return text


def material_title(text: str, filename: str | None = None) -> str:
    """A title for a quiz about ``text``: its first Markdown heading, else the file's name ("cell_biology.pdf"
    -> "cell biology"), else its first line."""
    for line in text.split("\n")[:50]:
        heading = _HEADING.match(line)
        if heading and heading.group(1).strip("#*_ "):
            return " ".join(heading.group(1).strip("*_ ").split())
    if filename:
        stem = os.path.splitext(_display_name(filename))[0]
        stem = " ".join(re.sub(r"[_\-.]+", " ", stem).split())
        if stem and stem != "the file":
            return stem
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    first = " ".join(first.strip("#*_ ").split())
    return first if len(first) <= 80 else first[:80].rsplit(" ", 1)[0]


# -- text files --------------------------------------------------------------------------------------
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _decode(name: str, data: bytes) -> str:
    text = None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = data.decode(codec, errors="replace")
            break
    if text is None:
        text = _decode_without_bom(data)
    if len(_CONTROL.findall(text)) > _MAX_CONTROL_SHARE * len(text) + 2:
        raise MaterialError(f"'{name}' is not a text file (it holds binary data): save it as plain text (.txt) "
                            f"or paste the text")
    return text


def _decode_without_bom(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # UTF-16 without a BOM: every other byte of Latin text is zero.
    sample = data[:4096]
    if len(sample) >= 4:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if max(even, odd) > 0.3 * len(sample) / 2 and min(even, odd) < 0.05 * len(sample) / 2:
            return data.decode("utf-16-be" if even > odd else "utf-16-le", errors="replace")
    try:
        return data.decode("cp1252")  # Windows files: Latin-1 plus curly quotes and dashes
    except UnicodeDecodeError:
        return data.decode("latin-1")


# -- PDF files ---------------------------------------------------------------------------------------
def _pdf_text(name: str, data: bytes) -> str:
    try:
        import pypdf
        from pypdf.errors import DependencyError, FileNotDecryptedError
    except ImportError:
        raise MaterialError(f"reading '{name}' needs the pypdf package: pip install pypdf (or paste the text)"
                            ) from None
    if b"%PDF-" not in data[:1024]:
        raise MaterialError(f"'{name}' is not a PDF (it does not start with %PDF): export it again as PDF, "
                            f"or paste the text")
    damaged = (f"'{name}' could not be read as a PDF (it is damaged or incomplete): check that it opens in a "
               f"PDF viewer and export it again, or paste the text")
    locked = f"'{name}' is password-protected: save a copy without a password, or paste the text"
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise MaterialError(locked)
        pages = reader.pages
        count = len(pages)
    except MaterialError:
        raise
    except DependencyError:
        raise MaterialError(_aes(name)) from None
    except FileNotDecryptedError:
        raise MaterialError(locked) from None
    except Exception as error:  # noqa: BLE001 - a malformed file makes pypdf raise errors of many kinds
        log.info("PDF %r unreadable: %r", name, error)
        raise MaterialError(damaged) from None
    if count == 0:
        raise MaterialError(damaged)
    if count > MAX_PDF_PAGES:
        raise MaterialError(f"'{name}' has {count:,} pages, over the {MAX_PDF_PAGES:,}-page limit: upload only "
                            f"the chapters to be quizzed on, or paste the text")
    return _page_texts(name, pages, damaged)


def _aes(name: str) -> str:
    return (f"'{name}' is encrypted with AES, and reading it needs the cryptography package (pip install "
            f"cryptography): save a copy without protection, or paste the text")


def _page_texts(name: str, pages: list, damaged: str) -> str:
    from pypdf.errors import DependencyError

    texts, failed, total = [], 0, 0
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except DependencyError:
            raise MaterialError(_aes(name)) from None
        except Exception as error:  # noqa: BLE001 - as in _pdf_text: malformed pages raise errors of many kinds
            # One broken page should not cost the rest of the document; it is logged, not hidden.
            log.warning("PDF %r: page %d could not be read (%r); its text is left out", name, number, error)
            failed += 1
            continue
        texts.append(text.strip())
        total += len(text.strip())
        if total > MAX_MATERIAL_CHARS * 1.2 and number < len(pages):  # no need to read the rest
            raise MaterialError(f"'{name}' has more than {MAX_MATERIAL_CHARS:,} characters of text (the limit) in "
                                f"its first {number} of {len(pages)} pages: upload only the chapters to be quizzed "
                                f"on, or split it into several quizzes")
    if failed == len(pages):
        raise MaterialError(damaged)
    text = "\n\n".join(t for t in texts if t)
    if not any(c.isalpha() for c in text):
        raise MaterialError(f"'{name}' has no text layer (a scan?): export it with text (or run OCR on it), "
                            f"or paste the text")
    if failed:
        log.warning("PDF %r: %d of %d pages unreadable", name, failed, len(pages))
    return text
