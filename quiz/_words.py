"""The label words of quizzes written in English, French, Spanish, German, Italian, Portuguese and Dutch.

Each entry is a regular-expression fragment (matched case-insensitively, on one line whose spaces are
already squeezed to one). Kept apart from the patterns that use them, so a new language is a few words
here.
"""

from __future__ import annotations

# Question headers: "Question 3", "Frage 3:", "Pregunta: ...".
QUESTION = ("question", "q", "pregunta", "frage", "domanda", "pergunta", "vraag", "quest[aã]o")
# "No. 3", "n° 3", "Nr. 3", "nº 3" between a question word and its number.
NUMBER_SIGN = r"(?:no|nr|n°|nº|n\.º|núm|num)\.?"

# An answer label, with the adjectives languages put before or after "answer".
ANSWER = (
    r"(?:correct|right)\s(?:answer|ans|option|choice|letter)", r"answer", r"ans",
    r"(?:bonne|vraie)\sréponse", r"réponse(?:\s(?:correcte|juste|exacte))?",
    r"respuesta(?:\s(?:correcta|acertada))?", r"opci[oó]n\scorrecta",
    r"(?:richtige|korrekte)\santwort", r"antwort", r"l(?:ö|oe)sung",
    r"risposta(?:\s(?:corretta|giusta|esatta))?",
    r"resposta(?:\s(?:correta|correcta|certa))?", r"gabarito",
    r"(?:juiste|goede|correcte)\santwoord", r"antwoord",
)
# Words that count as an answer label only with a colon after them ("Solution: B"): alone they are prose.
ANSWER_WITH_COLON = (r"correct", r"solution", r"soluci[oó]n", r"soluzione", r"solu[cç][aã]o", r"oplossing",
                     r"corrig[eé]")
# "The answer is", "La réponse est", "Die Antwort ist", "La risposta è", "A resposta é", "Het antwoord is".
ARTICLE = r"(?:the|la|le|el|die|il|a|o|het|de)"
COPULA = ("is", "est", "es", "ist", "è", "é", "e", "sería", "serait", "wäre")

# An answer written inside another line: "D) Lille (Answer: B)", "Paris Réponse : B".
ANSWER_INSIDE = (r"(?:correct|right)\sanswer", r"answer", r"(?:bonne\s)?réponse", r"respuesta(?:\scorrecta)?",
                 r"(?:richtige\s)?antwort", r"l(?:ö|oe)sung", r"risposta(?:\scorretta)?",
                 r"resposta(?:\scorreta)?", r"(?:juiste\s)?antwoord")

EXPLANATION = (
    r"explanation", r"rationale", r"reasoning", r"reason", r"justification", r"why",
    r"explication", r"explicaci[oó]n", r"justificaci[oó]n", r"erkl(?:ä|ae)rung", r"begr(?:ü|ue)ndung",
    r"spiegazione", r"motivazione", r"explica[cç][aã]o", r"justificativa", r"uitleg", r"toelichting",
)
# Words that start an explanation inside an answer line: "B because ...", "B porque ...".
BECAUSE = (r"because", r"parce\squ[e']", r"porque", r"weil", r"perch[eé]", r"omdat")

# The passage of the source material a question comes from.
QUOTE = (r"quote", r"quotation", r"source\spassage", r"passage", r"evidence", r"citation", r"zitat",
         r"textstelle", r"cita", r"citazione", r"cita[cç][aã]o", r"citaat", r"source", r"fuente", r"quelle",
         r"fonte", r"bron")

# Headings of a separate answer-key or solutions section after all questions.
ANSWER_KEY = (
    r"answer\s?key", r"answers", r"correct\s?answers", r"answer\s?sheet", r"solutions", r"key",
    r"réponses", r"corrigé", r"corrig[eé]s", r"solutions?\sdu\squiz",
    r"respuestas", r"soluciones", r"clave\sde\srespuestas",
    r"antworten", r"l(?:ö|oe)sungen", r"l(?:ö|oe)sungsschl(?:ü|ue)ssel",
    r"risposte", r"soluzioni", r"respostas", r"solu[cç](?:õ|o)es", r"gabarito",
    r"antwoorden", r"oplossingen", r"antwoordsleutel",
)

# A mark on the right option: "Paris (Correct)", "Paris (richtig)", "Paris [correcte]".
CORRECT_MARK = (r"correct", r"correct answer", r"answer", r"correcte", r"bonne réponse", r"correcta", r"correcto",
                r"richtig", r"korrekt", r"corretta", r"giusta", r"correta", r"certa", r"juist", r"goed")

# Lines that only introduce the options.
OPTIONS_LINE = (r"options", r"choices", r"answer choices", r"select one", r"pick one", r"choix",
                r"propositions", r"opciones", r"optionen", r"antwortm(?:ö|oe)glichkeiten", r"opzioni",
                r"op[cç](?:õ|o)es", r"alternativas", r"opties", r"antwoordopties", r"keuzes")

# Markdown table headers: which column holds what.
TABLE_STEM = (r"question", r"questions", r"question text", r"pregunta", r"frage", r"fragestellung", r"domanda",
              r"pergunta", r"quest[aã]o", r"enunciado", r"vraag", r"stem", r"prompt")
TABLE_OPTIONS = (r"options", r"choices", r"answer options", r"answer choices", r"opciones", r"optionen", r"opzioni",
                 r"op[cç](?:õ|o)es", r"opties", r"choix", r"propositions", r"alternativas",
                 r"antwortm(?:ö|oe)glichkeiten")
TABLE_OPTION = (r"option", r"choice", r"opci[oó]n", r"opzione", r"op[cç][aã]o", r"optie", r"choix",
                r"antwort", r"answer", r"réponse", r"respuesta", r"risposta", r"resposta", r"antwoord")
TABLE_NUMBER = (r"#", r"no\.?", r"nr\.?", r"n°", r"nº", r"num(?:ber)?", r"núm(?:ero)?", r"numéro", r"nummer",
                r"numero", r"q", r"q#", r"id")


def alternatives(words: tuple[str, ...]) -> str:
    """A non-capturing group that matches any of ``words``, longest first (so "answers" beats "answer")."""
    return "(?:" + "|".join(sorted(words, key=len, reverse=True)) + ")"
