"""The language a quiz is written in: one the user chose ("French", "de", "pt-BR"), or the one its topic
or material is written in, recognised by its script or its most common words."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

MAX_LANGUAGE_CHARS = 40

CODES = {
    "en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "pl": "Polish", "sv": "Swedish", "da": "Danish", "no": "Norwegian", "nb": "Norwegian",
    "fi": "Finnish", "cs": "Czech", "sk": "Slovak", "ro": "Romanian", "hu": "Hungarian", "tr": "Turkish",
    "el": "Greek", "ru": "Russian", "uk": "Ukrainian", "bg": "Bulgarian", "sr": "Serbian", "hr": "Croatian",
    "ar": "Arabic", "he": "Hebrew", "fa": "Persian", "hi": "Hindi", "bn": "Bengali", "ur": "Urdu",
    "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "vi": "Vietnamese", "th": "Thai", "id": "Indonesian",
    "ms": "Malay", "sw": "Swahili", "ca": "Catalan", "eu": "Basque", "gl": "Galician", "la": "Latin",
}
# Names people type in their own language.
NATIVE = {
    "english": "English", "français": "French", "francais": "French", "deutsch": "German", "español": "Spanish",
    "espanol": "Spanish", "castellano": "Spanish", "italiano": "Italian", "português": "Portuguese",
    "portugues": "Portuguese", "nederlands": "Dutch", "polski": "Polish", "svenska": "Swedish", "dansk": "Danish",
    "norsk": "Norwegian", "suomi": "Finnish", "čeština": "Czech", "română": "Romanian", "magyar": "Hungarian",
    "türkçe": "Turkish", "ελληνικά": "Greek", "русский": "Russian", "українська": "Ukrainian",
    "العربية": "Arabic", "עברית": "Hebrew", "हिन्दी": "Hindi", "中文": "Chinese", "日本語": "Japanese",
    "한국어": "Korean", "tiếng việt": "Vietnamese", "català": "Catalan",
}
_CODE = re.compile(r"^([a-zA-Z]{2})(?:[-_]([a-zA-Z]{2}|\d{3}))?$")
_NAME = re.compile(r"^[^\W\d_][^\W\d_ ()'\-]*(?:[ '\-][^\W\d_]+)*(?: \([^\W\d_ ]+(?: [^\W\d_]+)*\))?$")

# Common short words: a text is in the language whose words it uses clearly most.
_COMMON = {
    "English": "the and of to is in that it for are was with as on be this by which from have not",
    "French": "le les des est et une du qui dans pour pas sur au sont avec ce elle il aux ont nous vous leur",
    "German": "der die das und ist nicht ein eine den dem zu mit sich auf für im von wird sind auch es",
    "Spanish": "el los las y es por con para del se una al lo como más su fue son pero está muy",
    "Italian": "il di che è per non della sono gli nel una con si alla anche più delle questo ha",
    "Portuguese": "o os é do da em para com não no na dos das um uma ao se são mais também",
    "Dutch": "het een en van is dat op te niet zijn met voor die er ook wordt naar bij heeft",
}
_COMMON_SETS = {language: set(words.split()) for language, words in _COMMON.items()}
_WORD = re.compile(r"[^\W\d_]+")
# Scripts that belong to one language (or one is by far the most likely).
_SCRIPTS = {"HANGUL": "Korean", "HIRAGANA": "Japanese", "KATAKANA": "Japanese", "CJK": "Chinese",
            "GREEK": "Greek", "HEBREW": "Hebrew", "ARABIC": "Arabic", "DEVANAGARI": "Hindi", "THAI": "Thai",
            "BENGALI": "Bengali", "CYRILLIC": "Russian", "GEORGIAN": "Georgian", "ARMENIAN": "Armenian",
            "TAMIL": "Tamil", "TELUGU": "Telugu", "GUJARATI": "Gujarati", "KANNADA": "Kannada",
            "MALAYALAM": "Malayalam", "GURMUKHI": "Punjabi", "ETHIOPIC": "Amharic", "KHMER": "Khmer", "LAO": "Lao",
            "MYANMAR": "Burmese", "SINHALA": "Sinhala"}
_SAMPLE_CHARS = 20_000


def check_language(language: str | None) -> str | None:
    """The language name to put in the prompt ("fr" -> "French", "pt-BR" -> "Portuguese (BR)"), or None
    to follow the topic or material ("", "auto"). A clear ValueError for anything that is no language."""
    if language is None:
        return None
    if not isinstance(language, str):
        raise ValueError(f"language must be a language name or code such as 'French' or 'de', got {language!r}")
    text = " ".join(language.split())
    if text.lower() in ("", "auto", "automatic", "same", "same as the material", "same as the topic"):
        return None
    code = _CODE.match(text)
    if code and code.group(1).lower() in CODES:
        name = CODES[code.group(1).lower()]
        return f"{name} ({code.group(2).upper()})" if code.group(2) else name
    if text.lower() in NATIVE:
        return NATIVE[text.lower()]
    if len(text) > MAX_LANGUAGE_CHARS or not _NAME.match(text) or (code and len(text) == 2):
        raise ValueError(f"language must be a language name or code such as 'French' or 'de', got {language!r}")
    known = {name.lower(): name for name in CODES.values()}
    return known.get(text.lower(), " ".join(word[:1].upper() + word[1:] for word in text.split(" ")))


def detect_language(text: str) -> str | None:
    """The language ``text`` is written in, or None when it is too short or unclear to tell."""
    sample = text[:_SAMPLE_CHARS]
    scripts: Counter = Counter()
    letters = 0
    for char in sample:
        if char.isalpha():
            letters += 1
            if char > "\u024f":  # beyond Latin: the script names the language
                scripts[unicodedata.name(char, "").split(" ")[0]] += 1
    if not letters:
        return None
    if "HIRAGANA" in scripts or "KATAKANA" in scripts:
        scripts["HIRAGANA"] += scripts.pop("CJK", 0)  # Japanese writes kanji among its kana
    script, count = scripts.most_common(1)[0] if scripts else ("", 0)
    if count > 0.5 * letters and script in _SCRIPTS:
        if script == "CYRILLIC" and any(c in sample for c in "іїєґІЇЄҐ"):
            return "Ukrainian"
        if script == "ARABIC" and any(c in sample for c in "پچژگ"):
            return "Persian"
        return _SCRIPTS[script]
    words = [w.casefold() for w in _WORD.findall(sample)]
    hits = Counter({language: sum(w in common for w in words) for language, common in _COMMON_SETS.items()})
    (best, top), (_, second) = hits.most_common(2)
    if len(words) >= 6 and top >= 3 and top >= 1.5 * second:
        return best
    return None
