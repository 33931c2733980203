"""Quizzes from the user's own material: reading .txt/.md/.pdf uploads and pasted text (with a clear
message for every file that cannot be used), and quizzes that cover the whole document, quote it, and
reject questions whose quote the material does not contain."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quiz import QuizGenerationError, generate_quiz
from quiz._quotes import Material
from quiz._sections import SECTION_TOKENS, estimate_tokens, split_sections, spread
from quiz.material import (MAX_FILE_BYTES, MAX_MATERIAL_CHARS, MAX_PDF_PAGES, MaterialError, clean_material,
                           material_title, read_material)
from tests.scripted import ScriptedBackend

DATA = Path(__file__).resolve().parent / "data"


def make_pdf(pages: list[list[str]], *, images: int = 0) -> bytes:
    """A real PDF: one page per entry of ``pages`` (lines of text in Helvetica), then ``images`` pages that
    hold only a picture, the way a scanner writes them."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>", b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray /BitsPerComponent 8 "
        b"/Length 4 >>\nstream\n\x10\x80\xf0\x40\nendstream"]
    kids = []

    def add(obj: bytes) -> int:
        objects.append(obj)
        return len(objects)

    def page(stream: bytes, resources: bytes) -> int:
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        return add(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources " + resources
                   + b" /Contents %d 0 R >>" % content)

    for lines in pages:
        shown = [line.encode("cp1252").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
                 for line in lines]
        kids.append(page(b"BT /F1 11 Tf 14 TL 72 760 Td " + b" T* ".join(b"(" + s + b") Tj" for s in shown) + b" ET",
                         b"<< /Font << /F1 3 0 R >> >>"))
    for _ in range(images):
        kids.append(page(b"q 400 0 0 500 100 150 cm /Im1 Do Q", b"<< /XObject << /Im1 4 0 R >> >>"))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def encrypted(pdf: bytes, user_password: str) -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(pdf))
    writer.encrypt(user_password=user_password, owner_password="teacher", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


CELLS_PDF = make_pdf([["Cells (the basics)", "Every living thing is made of cells."],
                      ["Mitochondria release energy from food.", "Le café contient de la caféine."]])


# -- reading files -------------------------------------------------------------------------------------

TEXT = "Café au lait – “the” classic.\nLine two: 10 € or 5 £."


@pytest.mark.parametrize("data", [
    TEXT.encode("utf-8"), b"\xef\xbb\xbf" + TEXT.encode("utf-8"), TEXT.encode("utf-16"), TEXT.encode("utf-16-be"),
    b"\xfe\xff" + TEXT.encode("utf-16-be"), TEXT.encode("utf-16-le"), TEXT.encode("cp1252"),
], ids=["utf-8", "utf-8 BOM", "utf-16 BOM (native)", "utf-16-be without BOM", "utf-16-be BOM",
        "utf-16-le without BOM", "windows-1252"])
def test_text_files_in_any_common_encoding(data: bytes) -> None:
    assert read_material("notes.txt", data) == TEXT


def test_latin1_text_and_markdown() -> None:
    assert read_material("Notes.TXT", "Le café est très apprécié à Paris.".encode("latin-1")) == \
        "Le café est très apprécié à Paris."
    md = "# Photosynthesis\r\n\r\n\r\n\r\nPlants **make** sugar.  \r\n\x07Light is needed.\r\n"
    text = read_material("week 3/photo.md", md.encode())
    assert text == "# Photosynthesis\n\nPlants **make** sugar.\nLight is needed."
    assert material_title(text, "week 3/photo.md") == "Photosynthesis"


def test_a_pdf_gives_the_text_of_every_page_in_order() -> None:
    assert read_material("cells.pdf", CELLS_PDF) == (
        "Cells (the basics)\nEvery living thing is made of cells.\n\n"
        "Mitochondria release energy from food.\nLe café contient de la caféine.")


def test_a_pdf_protected_only_against_editing_is_read() -> None:
    assert read_material("cells.pdf", encrypted(CELLS_PDF, "")).startswith("Cells (the basics)\nEvery living")


def test_an_aes_pdf_is_read_or_named() -> None:
    """Made with pypdf + cryptography: AES-128, no user password. pypdf needs the cryptography package
    for AES; without it the user is told what to do instead of seeing a traceback."""
    data = (DATA / "aes_no_user_password.pdf").read_bytes()
    try:
        import cryptography  # noqa: F401
    except ImportError:
        with pytest.raises(MaterialError, match=r"^'aes.pdf' is encrypted with AES, and reading it needs the "
                                                r"cryptography package .*save a copy without protection"):
            read_material("aes.pdf", data)
    else:
        assert read_material("aes.pdf", data) == "Mitochondria release energy from food in every living cell."


@pytest.mark.parametrize("filename, data, message", [
    ("scan.pdf", make_pdf([], images=3),
     r"^'scan.pdf' has no text layer \(a scan\?\): export it with text \(or run OCR on it\), or paste the text$"),
    ("locked.pdf", encrypted(CELLS_PDF, "secret"),
     r"^'locked.pdf' is password-protected: save a copy without a password, or paste the text$"),
    ("cut.pdf", CELLS_PDF[:300], r"^'cut.pdf' could not be read as a PDF \(it is damaged or incomplete\)"),
    ("noise.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8, r"^'noise.pdf' could not be read as a PDF"),
    ("photo.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, r"^'photo.pdf' is not a PDF \(it does not start with %PDF\)"),
    ("empty.txt", b"", r"^'empty.txt' is empty: choose a file with text in it, or paste the text$"),
    ("blank.md", b" \n\r\n\t ", r"^'blank.md' is empty"),
    ("blank.pdf", b"", r"^'blank.pdf' is empty"),
    ("essay.docx", b"PK\x03\x04", r"^'essay.docx' is a .docx file, which cannot be read: upload a .txt, .md or .pdf "
                                   r"file, or paste the text$"),
    ("README", b"text", r"^'README' is a file without an extension, which cannot be read"),
    ("image.txt", bytes(range(256)) * 4, r"^'image.txt' is not a text file \(it holds binary data\): save it as "
                                         r"plain text \(.txt\) or paste the text$"),
    ("C:\\Users\\ana\\big.txt", b"a" * (MAX_FILE_BYTES + 1),
     r"^'big.txt' is 10.0 MB, over the 10 MB limit: upload only the chapters to be quizzed on, or paste the text$"),
    ("long.txt", b"word " * (MAX_MATERIAL_CHARS // 5 + 1),
     r"^'long.txt' has 200,004 characters of text, over the 200,000 limit: use only the chapters"),
], ids=["scan", "password", "truncated", "corrupt", "not a pdf", "empty", "blank", "empty pdf", "docx",
        "no extension", "binary", "too big", "too long"])
def test_files_that_cannot_be_used_get_one_clear_line(filename: str, data: bytes, message: str) -> None:
    with pytest.raises(MaterialError, match=message) as caught:
        read_material(filename, data)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_long_pdf_stops_at_the_limit_without_reading_every_page() -> None:
    page = ["Cells divide by mitosis and each daughter cell gets a copy of the genome. " * 6] * 40
    pdf = make_pdf([page] * 30)  # about 540,000 characters over 30 pages
    with pytest.raises(MaterialError, match=r"^'book.pdf' has more than 200,000 characters of text \(the limit\) "
                                            r"in its first (\d+) of 30 pages: upload only the chapters") as caught:
        read_material("book.pdf", pdf)
    assert int(re.search(r"first (\d+) of", str(caught.value)).group(1)) < 20


def test_the_limits_suit_a_cpu_space() -> None:
    assert (MAX_FILE_BYTES, MAX_MATERIAL_CHARS, MAX_PDF_PAGES) == (10 * 2**20, 200_000, 1000)
    assert read_material("max.txt", b"x" * MAX_MATERIAL_CHARS) == "x" * MAX_MATERIAL_CHARS


def test_pasted_text_is_cleaned_and_checked() -> None:
    assert clean_material("\ufeff  Line one\r\n\r\n\r\n\r\nLine\x00 two \n") == "Line one\n\nLine two"
    with pytest.raises(MaterialError, match=r"^the material is empty: give the notes or text the quiz should be about$"):
        clean_material(" \n\t")
    with pytest.raises(MaterialError, match=r"^the material has 200,001 characters of text, over the 200,000 limit"):
        clean_material("y" * 200_001)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.sampled_from(["a.txt", "a.md", "a.pdf"]), st.booleans())
def test_arbitrary_bytes_give_text_or_a_material_error(data: bytes, filename: str, pdf_header: bool) -> None:
    if pdf_header:
        data = b"%PDF-1.4\n" + data
    try:
        text = read_material(filename, data)
    except MaterialError as error:
        assert str(error).startswith("'a.") and "\n" not in str(error)
    else:
        assert text.strip() and len(text) <= MAX_MATERIAL_CHARS


def test_a_title_from_the_heading_the_file_name_or_the_first_line() -> None:
    assert material_title("intro\n## **Cell biology** ##\ntext") == "Cell biology"
    assert material_title("Plain notes about cells.\nMore.", "uploads/cell_biology-week-3.pdf") == "cell biology week 3"
    assert material_title("\n\n  The water cycle moves water around.\nMore.") == "The water cycle moves water around."
    assert material_title("word " * 40) == " ".join(["word"] * 16)


# -- sections and the spread of questions ----------------------------------------------------------------

def chapters(count: int = 24) -> str:
    """A long document: ``count`` chapters, each with its own facts (one sentence per fact)."""
    parts = []
    for c in range(1, count + 1):
        facts = " ".join(f"Fact {c}.{j}: the river Alpha{c}x{j} is {100 * c + j} km long." for j in range(1, 9))
        filler = " ".join(f"Chapter {c} has more to say about rivers and valleys, part {k}." for k in range(1, 25))
        parts.append(f"## Chapter {c}\n\n{facts}\n\n{filler}")
    return "# Rivers of Nowhere\n\n" + "\n\n".join(parts)


def test_long_material_is_cut_into_sections_that_fit_the_context() -> None:
    text = chapters()
    sections = split_sections(text)
    assert len(text) > 40_000 and len(sections) >= max(10, estimate_tokens(text) // SECTION_TOKENS)
    assert all(estimate_tokens(s) <= SECTION_TOKENS + 1 for s in sections)
    assert "".join(sections).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")
    assert all(s.rstrip().endswith(".") or s.rstrip()[-1].isdigit() for s in sections[:-1])  # cut at paragraph ends
    assert split_sections("Short notes.") == ["Short notes."]


@pytest.mark.parametrize("lengths, n", [([100] * 4, 10), ([1000, 100], 11), ([50] * 30, 10), ([7, 3000, 7], 3)])
def test_questions_are_spread_in_proportion_to_length(lengths: list[int], n: int) -> None:
    counts = spread(lengths, n)
    assert sum(counts) == n
    assert all(abs(count - n * length / sum(lengths)) < 1 for count, length in zip(counts, lengths))
    if n < len(lengths):
        chosen = [i for i, count in enumerate(counts) if count]
        assert chosen[0] <= 2 and chosen[-1] >= len(lengths) - 3  # from the start to the end


@pytest.mark.parametrize("quote, problem", [
    ("Fact 3.2: the river Alpha3x2 is 302 km long.", None),
    ("  “fact 3.2:   THE river alpha3x2 is 302 KM long”  ", None),
    ("the river Alpha3x2 ... 302 km long", None),
    ("Fact 3.2: the river Alpha3x2 is 999 km long.", "quote not in the material"),
    ("302 km long. Fact 3.2", "quote not in the material"),
    ("302 km", "quote too short"),
    ("", "no quote from the material"),
    (None, "no quote from the material"),
    ("…", "no quote from the material"),
])
def test_a_quote_must_be_a_passage_of_the_material(quote: str | None, problem: str | None) -> None:
    assert Material(chapters(4)).problem(quote) == problem


def test_a_quote_across_a_pdf_line_break_and_hyphenation_matches() -> None:
    material = Material("Plants take in carbon di-\noxide through their stomata, tiny pores in the leaves.")
    assert material.problem("carbon dioxide through their stomata") is None


# -- quizzes about the material ----------------------------------------------------------------------------

FACT = re.compile(r"Fact (\d+)\.(\d+): the river (Alpha\d+x\d+) is (\d+) km long\.")


def section_of(messages: list[dict]) -> str:
    return messages[-1]["content"].split('"""\n', 1)[1].rsplit('\n"""', 1)[0]


class Reader:
    """A scripted model that reads the material it is given and asks about its facts, quoting them."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.sections: list[str] = []

    def __call__(self, messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        count = int(re.search(r"(?:Write (\d+) multiple-choice|Number of questions: (\d+))", prompt).group(
            2 if self.json_mode else 1))
        section = section_of(messages)
        self.sections.append(section)
        asked = set(re.findall(r"^- How long is the river (Alpha\d+x\d+)\?$", prompt, re.MULTILINE))
        facts = [fact for fact in FACT.findall(section) if fact[2] not in asked][:count]
        questions = []
        for chapter, j, river, km in facts:
            km = int(km)
            questions.append({"question": f"How long is the river {river}?",
                              "options": [f"{km + 7} km", f"{km + 13} km", f"{km + 21} km", f"{km} km"],
                              "answer": "D", "quote": f"Fact {chapter}.{j}: the river {river} is {km} km long.",
                              "explanation": f"Chapter {chapter} gives its length."})
        if self.json_mode:
            return json.dumps({"questions": questions})
        return "\n\n".join(
            f"{i}. {q['question']}\n" + "\n".join(f"{'ABCD'[k]}) {o}" for k, o in enumerate(q["options"]))
            + f"\nAnswer: D\nQuote: \"{q['quote']}\"\nExplanation: {q['explanation']}"
            for i, q in enumerate(questions, 1))


def chapter_of(question) -> int:
    return int(re.search(r"Alpha(\d+)x", question.question).group(1))


@pytest.mark.parametrize("json_mode", [False, True], ids=["text replies", "JSON schema"])
def test_a_long_document_is_covered_from_start_to_end(json_mode: bool) -> None:
    text = chapters()
    reader = Reader(json_mode)
    backend = ScriptedBackend(default=reader, json_schema=json_mode)
    arrived = []
    quiz = generate_quiz(backend, "", n=10, seed=3, material=text, on_question=lambda i, q: arrived.append(i))
    assert quiz.topic == "Rivers of Nowhere" and len(quiz) == 10 and arrived == list(range(10))
    found = [chapter_of(q) for q in quiz.questions]
    assert found == sorted(found) and len(set(found)) == 10  # ten different places, in document order
    assert found[0] <= 3 and found[-1] >= 22  # not only the first pages
    assert len(reader.sections) == 10 and len(set(reader.sections)) == 10  # one section per request
    assert all(estimate_tokens(s) <= SECTION_TOKENS + 1 for s in reader.sections)
    for question in quiz.questions:
        km = int(re.search(r"is (\d+) km long", question.explanation).group(1))
        assert question.correct_option == f"{km} km"
        assert question.explanation.startswith(f"Chapter {chapter_of(question)} gives its length. \u2014 \"Fact ")
        assert question.explanation.split("\u2014 ")[1].strip('"') in text
    if json_mode:
        assert [kind for kind, *_ in backend.calls] == ["stream_chat"] * 10
        schema = backend.calls[0][2].json_schema["properties"]["questions"]["items"]
        assert schema["required"] == ["question", "options", "answer", "quote", "explanation"]
    else:
        (kind, conversations, _), = backend.calls
        assert kind == "chat_batch" and len(conversations) == 10


def test_the_prompt_asks_for_questions_about_the_material_only_with_a_quote() -> None:
    backend = ScriptedBackend(default=Reader())
    generate_quiz(backend, "rivers", n=2, seed=1, material=chapters(1))
    prompt = backend.calls[0][1][0][-1]["content"]
    assert prompt.startswith("Write 2 multiple-choice questions about the material below (rivers).\n"
                             "Use only what the material says")
    assert '"Quote:" with the sentence of the material that gives the answer, copied word for word' in prompt
    assert "The material:\n\"\"\"\n# Rivers of Nowhere\n\n## Chapter 1" in prompt
    assert prompt.endswith("Now write 2 questions about this material, each with Answer, Quote and Explanation lines.")


def reply(*blocks: tuple[str, str | None]) -> str:
    """A text reply: (river, quote line or None) per question."""
    out = []
    for i, (river, quote) in enumerate(blocks, 1):
        lines = [f"{i}. How long is the river {river}?", "A) 1 km", "B) 2 km", "C) 3 km", "D) 4 km", "Answer: B"]
        if quote is not None:
            lines.append(f"Quote: {quote}")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def test_questions_without_a_true_quote_are_rejected_and_counted() -> None:
    text = chapters(1)
    backend = ScriptedBackend([reply(("Alpha1x1", '"Fact 1.1: the river Alpha1x1 is 101 km long."'),
                                     ("Alpha1x2", '"The river Alpha1x2 is the longest in the world."'),
                                     ("Alpha1x3", None), ("Alpha1x4", '"101 km"'))])
    with pytest.raises(QuizGenerationError) as caught:
        generate_quiz(backend, "rivers", n=3, seed=1, material=text, max_extra_rounds=0)
    assert str(caught.value) == (
        "could not write 3 valid questions about 'rivers': got 1 after 1 round (rejected: 1 no quote from the "
        "material, 1 quote too short, 1 quote not in the material); try again, ask for fewer questions, give more "
        "material, or use a stronger or fine-tuned model")
    assert caught.value.rejections == {"no quote from the material": 1, "quote too short": 1,
                                       "quote not in the material": 1}


def test_a_rejected_question_is_asked_for_again_from_the_same_section() -> None:
    text = chapters(1)
    backend = ScriptedBackend([reply(("Alpha1x1", '"Fact 1.1: the river Alpha1x1 is 101 km long."'),
                                     ("Alpha1x2", '"Made up."')),
                               reply(("Alpha1x5", "Fact 1.5: the river Alpha1x5 is 105 km long."))])
    quiz = generate_quiz(backend, "rivers", n=2, seed=1, material=text)
    assert [q.question for q in quiz.questions] == ["How long is the river Alpha1x1?",
                                                    "How long is the river Alpha1x5?"]
    second = backend.calls[1][1][0][-1]["content"]
    assert second.startswith("Write 1 multiple-choice question about the material below")
    assert "- How long is the river Alpha1x1?" in second  # told what it already asked about this section


def test_a_section_without_questions_hands_them_to_its_neighbour() -> None:
    text = chapters(6)
    sections = split_sections(text)
    assert len(sections) >= 3
    reader = Reader()

    def model(messages: list[dict]) -> str:
        return "This part is only a list of references." if section_of(messages) == sections[0] else reader(messages)

    backend = ScriptedBackend(default=model)
    quotas = spread([len(s) for s in sections], len(sections))
    quiz = generate_quiz(backend, "rivers", n=len(sections), seed=2, material=text)
    assert len(quiz) == len(sections) and quotas[0] >= 1
    first, second = ([(section_of(c), int(re.search(r"Write (\d+)", c[-1]["content"]).group(1))) for c in conversations]
                     for _, conversations, _ in backend.calls)
    assert first[0] == (sections[0], quotas[0]) and len(first) == sum(1 for q in quotas if q)
    assert second == [(sections[1], quotas[0])]  # round 2: what the first section owed, from the second
    assert sorted(chapter_of(q) for q in quiz.questions)[0] > 1  # nothing claims to come from the first section


def test_material_in_french_is_quizzed_in_french() -> None:
    text = ("# La photosynthèse\n\nLa photosynthèse est le processus par lequel les plantes fabriquent leur "
            "nourriture. Les feuilles captent la lumière du soleil et le dioxyde de carbone de l'air.")
    french = ("1. Que captent les feuilles ?\nA) La lumière du soleil\nB) Le sel\nC) Le sable\nD) Le fer\n"
              "Réponse : A\nCitation : « Les feuilles captent la lumière du soleil »\n"
              "Explication : Le texte le dit.")
    backend = ScriptedBackend([french])
    quiz = generate_quiz(backend, "", n=1, seed=1, material=text)
    assert "Language: French (the language of the material). Write the questions, options and explanations in " \
           "French." in backend.calls[0][1][0][-1]["content"]
    (question,) = quiz.questions
    assert quiz.topic == "La photosynthèse"
    assert question.correct_option == "La lumière du soleil"
    assert question.explanation == 'Le texte le dit. \u2014 "Les feuilles captent la lumière du soleil"'


@pytest.mark.parametrize("material, error", [
    ("", r"^the material is empty"), ("z" * (MAX_MATERIAL_CHARS + 1), r"^the material has 200,001 characters"),
])
def test_unusable_material_is_a_clear_error_before_any_request(material: str, error: str) -> None:
    backend = ScriptedBackend()
    with pytest.raises(MaterialError, match=error):
        generate_quiz(backend, "rivers", material=material)
    assert backend.calls == []
