"""The quiz parser on every layout models write, on real model outputs, and on arbitrary strings."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quiz import Question, parse_quiz
from quiz._json import repair
from quiz.parse import extract_choice

REPO = Path(__file__).resolve().parents[1]
RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "mcq_raw_outputs"
needs_raw = pytest.mark.skipif(
    not RAW.is_dir(), reason=f"real model outputs not found at {RAW} (the shared data folder is absent)")

CAPITALS = ["Berlin", "Paris", "Rome", "Madrid"]
PLANETS = ["Venus", "Mars", "Jupiter", "Mercury"]


def shape(questions: list[Question]) -> list[tuple]:
    return [(q.question, q.options, q.answer) for q in questions]


TWO = [("What is the capital of France?", CAPITALS, 1), ("Which planet is called the Red Planet?", PLANETS, 1)]

LAYOUTS = {
    "numbered, A) options, Answer/Explanation (the generation prompt's layout)": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\nAnswer: B\n"
        "Explanation: Paris has been the capital for centuries.\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\nAnswer: B\n"
        "Explanation: Iron oxide makes its surface red.\n", TWO),
    "Q1: and A. options": (
        "Q1: What is the capital of France?\nA. Berlin\nB. Paris\nC. Rome\nD. Madrid\nAnswer: B\n\n"
        "Q2: Which planet is called the Red Planet?\nA. Venus\nB. Mars\nC. Jupiter\nD. Mercury\nAnswer: B", TWO),
    "Question N on its own line, (A) options, Correct answer: (b)": (
        "Question 1\nWhat is the capital of France?\n(A) Berlin\n(B) Paris\n(C) Rome\n(D) Madrid\n"
        "Correct answer: (b)\n\nQuestion 2\nWhich planet is called the Red Planet?\n(A) Venus\n(B) Mars\n"
        "(C) Jupiter\n(D) Mercury\nCorrect answer: (B)", TWO),
    "**Question 1** bold headers, a) options, **Answer:** B) text": (
        "**Question 1**\nWhat is the capital of France?\na) Berlin\nb) Paris\nc) Rome\nd) Madrid\n"
        "**Answer:** b) Paris\n\n**Question 2**\nWhich planet is called the Red Planet?\na) Venus\nb) Mars\n"
        "c) Jupiter\nd) Mercury\n**Answer:** b) Mars", TWO),
    "### Question headings": (
        "### Question 1\nWhat is the capital of France?\n\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n\n"
        "**Correct answer:** B\n\n### Question 2\nWhich planet is called the Red Planet?\n\nA) Venus\nB) Mars\n"
        "C) Jupiter\nD) Mercury\n\n**Correct answer:** B\n", TWO),
    "QUESTION n ... END blocks": (
        "QUESTION 1\nWhat is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\nANSWER: B\nEND\n"
        "QUESTION 2\nWhich planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n"
        "ANSWER: B\nEND", TWO),
    "Question: label, unnumbered": (
        "Question: What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\nAnswer: B\n"
        "Question: Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n"
        "Answer: B", TWO),
    "no header at all": (
        "What is the capital of France?\n\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\nAnswer: B\n\n"
        "Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\nAnswer: B", TWO),
    "- A. bulleted options, Correct option:": (
        "1. What is the capital of France?\n- A. Berlin\n- B. Paris\n- C. Rome\n- D. Madrid\n"
        "Correct option: B\n2. Which planet is called the Red Planet?\n- A. Venus\n- B. Mars\n- C. Jupiter\n"
        "- D. Mercury\nCorrect option: B", TWO),
    "Option A: labels": (
        "1. What is the capital of France?\nOption A: Berlin\nOption B: Paris\nOption C: Rome\n"
        "Option D: Madrid\nAnswer: Option B\n\n2. Which planet is called the Red Planet?\nOption A: Venus\n"
        "Option B: Mars\nOption C: Jupiter\nOption D: Mercury\nAnswer: Option B", TWO),
    "1)-4) numbered options": (
        "Q1. What is the capital of France?\n1) Berlin\n2) Paris\n3) Rome\n4) Madrid\nAnswer: 2\n\n"
        "Q2. Which planet is called the Red Planet?\n1) Venus\n2) Mars\n3) Jupiter\n4) Mercury\nAnswer: 2", TWO),
    "options inline after the stem": (
        "1. What is the capital of France? A) Berlin B) Paris C) Rome D) Madrid\nAnswer: B\n"
        "2. Which planet is called the Red Planet? A) Venus B) Mars C) Jupiter D) Mercury\nAnswer: B", TWO),
    "options inline on their own line": (
        "1. What is the capital of France?\nA) Berlin  B) Paris  C) Rome  D) Madrid\nAnswer: B\n\n"
        "2. Which planet is called the Red Planet?\n(a) Venus (b) Mars (c) Jupiter (d) Mercury\nAnswer: b", TWO),
    "answer on the next line": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\nAnswer:\nB\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n"
        "Correct Answer:\n\nB) Mars", TWO),
    "answers in parentheses, Correct: and Solution: labels, tagged headers": (
        "Question 1 (Easy): What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n"
        "(Answer: B)\n\nQuestion 2 (Hard): Which planet is called the Red Planet?\nA) Venus\nB) Mars\n"
        "C) Jupiter\nD) Mercury\nSolution: B", TWO),
    "answer given as the option's text": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\nAnswer: Paris\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n"
        "The correct answer is Mars.", TWO),
    "answer key at the end, inline": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n\n"
        "Answer Key: 1. B 2. B", TWO),
    "answer key at the end, one per line": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n\n"
        "**Answers:**\n1. B) Paris\n2. Mars\n\nGood luck!", TWO),
    "check mark and (Correct) on the right option": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris \u2705\nC) Rome\nD) Madrid\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars (Correct)\nC) Jupiter\nD) Mercury", TWO),
    "markdown emphasis everywhere": (
        "**1. What is the capital of *France*?**\n**A)** Berlin\n**B)** Paris\n**C)** Rome\n**D)** Madrid\n"
        "**Answer: B**\n\n**2. Which planet is called the Red Planet?**\n- **A.** Venus\n- **B.** Mars\n"
        "- **C.** Jupiter\n- **D.** Mercury\n*Answer:* **B**", TWO),
    "CRLF, non-breaking spaces, curly quotes": (
        "1.\u00a0What is the capital of \u201cFrance\u201d?\r\nA)\u00a0Berlin\r\nB) Paris\r\nC) Rome\r\n"
        "D) Madrid\r\nAnswer:\u00a0B\r\n\r\n2. Which planet is called the \u2018Red Planet\u2019?\r\nA) Venus\r\n"
        "B) Mars\r\nC) Jupiter\r\nD) Mercury\r\nAnswer: B\r\n",
        [('What is the capital of "France"?', CAPITALS, 1),
         ("Which planet is called the 'Red Planet'?", PLANETS, 1)]),
    "chatter before and after": (
        "Sure! Here are 2 questions about geography and space:\n\n"
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\nAnswer: B\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\nAnswer: B\n\n"
        "I hope these help you study! Let me know if you want more.", TWO),
    "a truncated last question is dropped": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\nAnswer: B\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\nAnswer: B\n\n"
        "3. Which gas do plants absorb?\nA) Oxygen\nB) Carbon", TWO),
    "a last question cut before its key is dropped": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\nAnswer: B\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\nAnswer: B\n\n"
        "3. Which gas do plants absorb?\nA) Oxygen\nB) Carbon dioxide\nC) Helium\nD) Neon\nAnsw", TWO),
}


@pytest.mark.parametrize("text, expected", LAYOUTS.values(), ids=list(LAYOUTS))
def test_layouts(text: str, expected: list[tuple]) -> None:
    assert shape(parse_quiz(text)) == expected


# -- other languages, tables, keys on option lines, solutions sections ---------------------------------
# Each case: the text and the exact questions (stem, options, key, explanation) a reader would see.
CAPITALES = ["Berlin", "Paris", "Rome", "Madrid"]
PLANETES = ["Vénus", "Mars", "Jupiter", "Mercure"]
PLANETAS = ["Venus", "Marte", "Júpiter", "Mercurio"]
PLANETEN = ["Venus", "Mars", "Jupiter", "Merkur"]
PARIS_WHY = "Paris has been the capital for centuries."
MARS_WHY = "Iron oxide makes its surface red."
TWO_EXPLAINED = [Question("What is the capital of France?", CAPITALS, 1, PARIS_WHY),
                 Question("Which planet is called the Red Planet?", PLANETS, 1, MARS_WHY)]
TWO_UNEXPLAINED = [Question(q, o, a) for q, o, a in TWO]

MORE_LAYOUTS = {
    "French labels: Question 1 :, Réponse :, Bonne réponse :, Explication :": (
        "Question 1 : Quelle est la capitale de la France ?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n"
        "Réponse : B\nExplication : Paris est la capitale depuis des siècles.\n\n"
        "Question 2 : Quelle planète appelle-t-on la planète rouge ?\nA) Vénus\nB) Mars\nC) Jupiter\nD) Mercure\n"
        "Bonne réponse : B) Mars\nExplication : L'oxyde de fer rend sa surface rouge.",
        [Question("Quelle est la capitale de la France ?", CAPITALES, 1, "Paris est la capitale depuis des siècles."),
         Question("Quelle planète appelle-t-on la planète rouge ?", PLANETES, 1,
                  "L'oxyde de fer rend sa surface rouge.")]),
    "French sentence answers: La bonne réponse est ...": (
        "1. Quelle est la capitale de la France ?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n"
        "La bonne réponse est B.\n\n2. Quelle planète appelle-t-on la planète rouge ?\nA) Vénus\nB) Mars\n"
        "C) Jupiter\nD) Mercure\nRéponse correcte : Mars",
        [Question("Quelle est la capitale de la France ?", CAPITALES, 1),
         Question("Quelle planète appelle-t-on la planète rouge ?", PLANETES, 1)]),
    "Spanish labels: Pregunta 1., Respuesta correcta:, Respuesta:, Explicación:": (
        "Pregunta 1. ¿Cuál es la capital de Francia?\na) Berlin\nb) Paris\nc) Rome\nd) Madrid\n"
        "Respuesta correcta: b\nExplicación: París es la capital desde hace siglos.\n\n"
        "Pregunta 2. ¿Qué planeta se llama el planeta rojo?\na) Venus\nb) Marte\nc) Júpiter\nd) Mercurio\n"
        "Respuesta: Marte\nExplicación: El óxido de hierro hace roja su superficie.",
        [Question("¿Cuál es la capital de Francia?", CAPITALS, 1, "París es la capital desde hace siglos."),
         Question("¿Qué planeta se llama el planeta rojo?", PLANETAS, 1,
                  "El óxido de hierro hace roja su superficie.")]),
    "German labels: Frage 1:, Richtige Antwort:, Lösung:, Erklärung:": (
        "Frage 1: Was ist die Hauptstadt von Frankreich?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n"
        "Richtige Antwort: B\nErklärung: Paris ist seit Jahrhunderten die Hauptstadt.\n\n"
        "Frage 2: Welcher Planet heißt der Rote Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Merkur\n"
        "Lösung: B\nErklärung: Eisenoxid färbt seine Oberfläche rot.",
        [Question("Was ist die Hauptstadt von Frankreich?", CAPITALS, 1, "Paris ist seit Jahrhunderten die Hauptstadt."),
         Question("Welcher Planet heißt der Rote Planet?", PLANETEN, 1, "Eisenoxid färbt seine Oberfläche rot.")]),
    "German sentence answer: Die richtige Antwort ist ... and Antwort:": (
        "1. Was ist die Hauptstadt von Frankreich?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n"
        "Die richtige Antwort ist B.\n\n2. Welcher Planet heißt der Rote Planet?\nA) Venus\nB) Mars\n"
        "C) Jupiter\nD) Merkur\nAntwort: B) Mars",
        [Question("Was ist die Hauptstadt von Frankreich?", CAPITALS, 1),
         Question("Welcher Planet heißt der Rote Planet?", PLANETEN, 1)]),
    "Italian labels: Domanda 1, Risposta corretta:, Spiegazione:": (
        "Domanda 1\nQual è la capitale della Francia?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n"
        "Risposta corretta: B\nSpiegazione: Parigi è la capitale da secoli.\n\n"
        "Domanda 2\nQuale pianeta è chiamato il pianeta rosso?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n"
        "Risposta: B\nSpiegazione: L'ossido di ferro rende rossa la sua superficie.",
        [Question("Qual è la capitale della Francia?", CAPITALS, 1, "Parigi è la capitale da secoli."),
         Question("Quale pianeta è chiamato il pianeta rosso?", PLANETS, 1,
                  "L'ossido di ferro rende rossa la sua superficie.")]),
    "Portuguese labels: Pergunta 1:, Resposta correta:, Explicação:": (
        "Pergunta 1: Qual é a capital da França?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n"
        "Resposta correta: B\nExplicação: Paris é a capital há séculos.\n\n"
        "Pergunta 2: Qual planeta é chamado de planeta vermelho?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n"
        "Resposta: B\nExplicação: O óxido de ferro deixa a superfície vermelha.",
        [Question("Qual é a capital da França?", CAPITALS, 1, "Paris é a capital há séculos."),
         Question("Qual planeta é chamado de planeta vermelho?", PLANETS, 1,
                  "O óxido de ferro deixa a superfície vermelha.")]),
    "Dutch labels: Vraag 1:, Antwoord:, Het juiste antwoord is, Uitleg:": (
        "Vraag 1: Wat is de hoofdstad van Frankrijk?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n"
        "Antwoord: B\nUitleg: Parijs is al eeuwen de hoofdstad.\n\n"
        "Vraag 2: Welke planeet heet de rode planeet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n"
        "Het juiste antwoord is B\nUitleg: IJzeroxide maakt het oppervlak rood.",
        [Question("Wat is de hoofdstad van Frankrijk?", CAPITALS, 1, "Parijs is al eeuwen de hoofdstad."),
         Question("Welke planeet heet de rode planeet?", PLANETS, 1, "IJzeroxide maakt het oppervlak rood.")]),
    "Markdown table, one column per option": (
        "Here is your quiz:\n\n| # | Question | A | B | C | D | Answer | Explanation |\n"
        "|---|----------|---|---|---|---|:------:|-------------|\n"
        f"| 1 | What is the capital of France? | Berlin | Paris | Rome | Madrid | B | {PARIS_WHY} |\n"
        f"| 2 | **Which planet is called the Red Planet?** | Venus | Mars | Jupiter | Mercury | B) Mars | {MARS_WHY} |\n"
        "\nGood luck!", TWO_EXPLAINED),
    "Markdown table in German without outer pipes, Option A headers, Lösung and Erklärung": (
        "Frage | Option A | Option B | Option C | Option D | Lösung | Erklärung\n--- | --- | --- | --- | --- | --- | ---\n"
        "Was ist die Hauptstadt von Frankreich? | Berlin | Paris | Rome | Madrid | B | Paris ist die Hauptstadt.\n"
        "Welcher Planet heißt der Rote Planet? | Venus | Mars | Jupiter | Merkur | Mars | Eisenoxid färbt ihn rot.",
        [Question("Was ist die Hauptstadt von Frankreich?", CAPITALS, 1, "Paris ist die Hauptstadt."),
         Question("Welcher Planet heißt der Rote Planet?", PLANETEN, 1, "Eisenoxid färbt ihn rot.")]),
    "Markdown table in Spanish with one Opciones column and <br> breaks": (
        "| Nº | Pregunta | Opciones | Respuesta correcta | Explicación |\n|----|----|----|----|----|\n"
        "| 1 | ¿Cuál es la capital de Francia? | A) Berlin<br>B) Paris<br>C) Rome<br>D) Madrid | B | París es la capital. |\n"
        "| 2 | ¿Qué planeta se llama el planeta rojo? | A) Venus B) Marte C) Júpiter D) Mercurio | B | Por el óxido de hierro. |",
        [Question("¿Cuál es la capital de Francia?", CAPITALS, 1, "París es la capital."),
         Question("¿Qué planeta se llama el planeta rojo?", PLANETAS, 1, "Por el óxido de hierro.")]),
    "Markdown table without an answer column, keys in an answer key below": (
        "| Question | A | B | C | D |\n|---|---|---|---|---|\n"
        "| What is the capital of France? | Berlin | Paris | Rome | Madrid |\n"
        "| Which planet is called the Red Planet? | Venus | Mars | Jupiter | Mercury |\n\nAnswers: 1-B, 2-B",
        TWO_UNEXPLAINED),
    "key written on an option's line: D) Madrid (Answer: B)": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid (Answer: B)\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury [Réponse : B]",
        TWO_UNEXPLAINED),
    "marks on the right option in other languages: (richtig), (correcta)": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris (richtig)\nC) Rome\nD) Madrid\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars (correcta)\nC) Jupiter\nD) Mercury",
        TWO_UNEXPLAINED),
    "an answers line after all questions: Answers: 1-B, 2-B": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n\n"
        "Answers: 1-B, 2-B", TWO_UNEXPLAINED),
    "a solutions section with an explanation on each entry": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n\n"
        f"Solutions\n1. B \u2013 {PARIS_WHY}\n2. B) Mars. {MARS_WHY}\n", TWO_EXPLAINED),
    "a solutions section with the explanation under each entry, and chatter after it": (
        "**Question 1**\nWhat is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n\n"
        "**Question 2**\nWhich planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\n\n"
        f"## Answers and explanations\n\n**1. B) Paris**\n{PARIS_WHY}\n\n**2. Mars**\nExplanation: {MARS_WHY}\n\n"
        "Good luck with your studies!", TWO_EXPLAINED),
    "a French solutions section: Corrigé, 1. B — ...": (
        "1. Quelle est la capitale de la France ?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n\n"
        "2. Quelle planète appelle-t-on la planète rouge ?\nA) Vénus\nB) Mars\nC) Jupiter\nD) Mercure\n\n"
        "Corrigé :\n1. B \u2014 Paris est la capitale.\n2. B (Mars) : l'oxyde de fer la rend rouge.",
        [Question("Quelle est la capitale de la France ?", CAPITALES, 1, "Paris est la capitale."),
         Question("Quelle planète appelle-t-on la planète rouge ?", PLANETES, 1, "l'oxyde de fer la rend rouge.")]),
    "a quote of the source after the answer goes into the explanation": (
        "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\nAnswer: B\n"
        "Quote: \"Paris is the capital of France.\"\nExplanation: The text says so.\n\n"
        "2. Which planet is called the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\nAnswer: B\n"
        "Citation : « Mars is red because of iron oxide. »",
        [Question("What is the capital of France?", CAPITALS, 1,
                  'The text says so. \u2014 "Paris is the capital of France."'),
         Question("Which planet is called the Red Planet?", PLANETS, 1, '"Mars is red because of iron oxide."')]),
}


@pytest.mark.parametrize("text, expected", MORE_LAYOUTS.values(), ids=list(MORE_LAYOUTS))
def test_more_layouts(text: str, expected: list[Question]) -> None:
    assert parse_quiz(text) == expected


def test_a_table_that_is_not_a_quiz_is_left_alone() -> None:
    text = ("| Planet | Moons |\n|---|---|\n| Mars | 2 |\n| Jupiter | 95 |\n\n"
            "1. Which planet has two moons?\nA) Venus\nB) Mars\nC) Jupiter\nD) Mercury\nAnswer: B")
    assert shape(parse_quiz(text)) == [("Which planet has two moons?", PLANETS, 1)]


def test_a_question_that_starts_with_quote_keeps_it_in_the_stem() -> None:
    text = "1. Quote: 'To be or not to be.' Who wrote it?\nA) Shakespeare\nB) Dickens\nC) Austen\nD) Keats\nAnswer: A"
    assert shape(parse_quiz(text)) == [("Quote: 'To be or not to be.' Who wrote it?",
                                        ["Shakespeare", "Dickens", "Austen", "Keats"], 0)]


def test_an_own_explanation_wins_over_the_solutions_section() -> None:
    text = ("1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\nAnswer: B\n"
            "Explanation: Its own.\n\nSolutions\n1. C \u2013 the key disagrees.")
    assert parse_quiz(text) == [Question("What is the capital of France?", CAPITALS, 1, "Its own.")]


def test_json_quote_goes_into_the_explanation() -> None:
    text = ('{"questions": [{"question": "What is the capital of France?", "options": ["Berlin", "Paris", "Rome", '
            '"Madrid"], "answer": "B", "quote": "Paris is the capital of France.", "explanation": "As the text says."}]}')
    assert parse_quiz(text) == [Question("What is the capital of France?", CAPITALS, 1,
                                         'As the text says. \u2014 "Paris is the capital of France."')]




def test_explanations_are_kept() -> None:
    text, _ = LAYOUTS["numbered, A) options, Answer/Explanation (the generation prompt's layout)"]
    assert [q.explanation for q in parse_quiz(text)] == [
        "Paris has been the capital for centuries.", "Iron oxide makes its surface red."]


def test_explanation_on_the_answer_line_and_over_two_lines() -> None:
    text = ("1. What is 2 + 2?\nA) 3\nB) 4\nC) 5\nD) 6\nAnswer: B. Explanation: two and two make four.\n\n"
            "2. What is 3 * 3?\nA) 6\nB) 8\nC) 9\nD) 12\nAnswer: C\nExplanation: three threes\nmake nine.\n")
    questions = parse_quiz(text)
    assert shape(questions) == [("What is 2 + 2?", ["3", "4", "5", "6"], 1),
                                ("What is 3 * 3?", ["6", "8", "9", "12"], 2)]
    assert [q.explanation for q in questions] == ["two and two make four.", "three threes make nine."]


def test_question_without_a_key_keeps_answer_none() -> None:
    text = "1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n"
    assert shape(parse_quiz(text)) == [("What is the capital of France?", CAPITALS, None)]


def test_options_that_mention_letters_are_not_split() -> None:
    text = ("1. Which are primary colours of light?\nA) Red\nB) Green\nC) Yellow\nD) Both A and B\n"
            "Answer: D) Both A and B\n")
    assert shape(parse_quiz(text)) == [
        ("Which are primary colours of light?", ["Red", "Green", "Yellow", "Both A and B"], 3)]


def test_multi_line_stem_with_a_code_line() -> None:
    text = ("1. What does this print?\nprint(2 ** 3)\nA) 6\nB) 8\nC) 9\nD) 23\nAnswer: B\n\n"
            "2. What does this print?\n```python\nx = [1, 2]\n    # indented comment\nprint(len(x))\n```\n"
            "A) 1\nB) 2\nC) 3\nD) An error\nAnswer: B\n")
    assert shape(parse_quiz(text)) == [
        ("What does this print?\nprint(2 ** 3)", ["6", "8", "9", "23"], 1),
        ("What does this print?\nx = [1, 2]\n    # indented comment\nprint(len(x))", ["1", "2", "3", "An error"], 1)]


def test_numbered_questions_with_numbered_options_in_another_style() -> None:
    text = ("1. Pick the even number.\n1) 3\n2) 5\n3) 8\n4) 9\nAnswer: 3\n"
            "2. Pick the prime.\n1) 4\n2) 6\n3) 7\n4) 9\nAnswer: 3\n")
    assert shape(parse_quiz(text)) == [("Pick the even number.", ["3", "5", "8", "9"], 2),
                                       ("Pick the prime.", ["4", "6", "7", "9"], 2)]


def test_reasoning_steps_between_the_options_and_the_answer() -> None:
    text = ("1. What is the capital of France?\nA) Berlin\nB) Paris\nC) Rome\nD) Madrid\n"
            "Let's think step by step.\n1. Berlin is in Germany.\n2. Paris is the seat of the French government.\n"
            "Answer: B\n")
    assert shape(parse_quiz(text)) == [("What is the capital of France?", CAPITALS, 1)]


def test_question_label_after_a_number_only_header() -> None:
    text = "QUESTION 1\nQuestion: What is 2 + 2?\nA) 3\nB) 4\nAnswer: B\nEND"
    assert shape(parse_quiz(text)) == [("What is 2 + 2?", ["3", "4"], 1)]


@pytest.mark.parametrize("text", [
    "", "   \n\n", "Hello! How can I help you today?",
    "Photosynthesis turns light into chemical energy.\n1. Light is absorbed.\n2. Water is split.\n",
    "Q1. What is quantum computing?\nAnswer: Computing with qubits.",
    "A) alone", "{\"not\": \"a quiz\"}", "[1, 2, 3]",
], ids=["empty", "blank", "greeting", "numbered prose", "short answer", "lone option", "json object", "json list"])
def test_text_that_is_not_a_quiz(text: str) -> None:
    assert parse_quiz(text) == []


def test_non_string_input_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="needs the model's reply as a str, got NoneType"):
        parse_quiz(None)  # type: ignore[arg-type]


# -- JSON ---------------------------------------------------------------------------------------

JSON_CASES = {
    "list in a code fence with chatter and trailing commas": (
        'Here is your quiz:\n```json\n[\n  {"question": "What is the capital of France?",\n'
        '   "options": ["Berlin", "Paris", "Rome", "Madrid",],\n   "answer": "B",},\n'
        '  {"question": "Which planet is called the Red Planet?",\n'
        '   "options": ["Venus", "Mars", "Jupiter", "Mercury"], "answer": "Mars"},\n]\n```\nEnjoy!', TWO),
    "{\"questions\": [...]}, options as a dict, index answers": (
        '{"questions": [{"question": "What is the capital of France?", "options": {"A": "Berlin", "B": "Paris",'
        ' "C": "Rome", "D": "Madrid"}, "correct_answer": "B"}, {"question": "Which planet is called the Red '
        'Planet?", "choices": ["Venus", "Mars", "Jupiter", "Mercury"], "answer_index": 1}]}', TWO),
    "{\"quiz\": [...]} with labelled options and letter-with-text answers": (
        '{"quiz": [{"Question": "What is the capital of France?", "Options": ["A) Berlin", "B) Paris", '
        '"C) Rome", "D) Madrid"], "Answer": "B) Paris"}, {"Question": "Which planet is called the Red Planet?",'
        ' "Options": ["A) Venus", "B) Mars", "C) Jupiter", "D) Mercury"], "Answer": 1}]}', TWO),
    "smart quotes as delimiters": (
        "[{\u201cquestion\u201d: \u201cWhat is the capital of France?\u201d, \u201coptions\u201d: "
        "[\u201cBerlin\u201d, \u201cParis\u201d, \u201cRome\u201d, \u201cMadrid\u201d], \u201canswer\u201d: 1},"
        " {\u201cquestion\u201d: \u201cWhich planet is called the Red Planet?\u201d, \u201coptions\u201d: "
        "[\u201cVenus\u201d, \u201cMars\u201d, \u201cJupiter\u201d, \u201cMercury\u201d], \u201canswer\u201d:"
        " \u201cb\u201d}]", TWO),
    "a reply cut off inside the third question": (
        '[{"question": "What is the capital of France?", "options": ["Berlin", "Paris", "Rome", "Madrid"], '
        '"answer": "B"}, {"question": "Which planet is called the Red Planet?", "options": ["Venus", "Mars", '
        '"Jupiter", "Mercury"], "answer": "B"}, {"question": "Which gas do pla', TWO),
    "Python-style single quotes": (
        "[{'question': 'What is the capital of France?', 'options': ['Berlin', 'Paris', 'Rome', 'Madrid'], "
        "'answer': 'B'}, {'question': 'Which planet is called the Red Planet?', 'options': ['Venus', 'Mars', "
        "'Jupiter', 'Mercury'], 'answer': 'B'}]", TWO),
}


@pytest.mark.parametrize("text, expected", JSON_CASES.values(), ids=list(JSON_CASES))
def test_json_layouts(text: str, expected: list[tuple]) -> None:
    assert shape(parse_quiz(text)) == expected


def test_json_explanation_and_option_objects() -> None:
    text = ('[{"q": "2 + 2 = ?", "answers": [{"text": "3"}, {"text": "4", "correct": true}], '
            '"explanation": "Basic sums."}]')
    assert parse_quiz(text) == [Question("2 + 2 = ?", ["3", "4"], 1, "Basic sums.")]


def test_json_string_with_a_plain_quote_inside_smart_quotes() -> None:
    text = '[{\u201cquestion\u201d: \u201cWho wrote "Hamlet"?\u201d, \u201coptions\u201d: [\u201cShakespeare\u201d, \u201cDickens\u201d], \u201canswer\u201d: 0}]'
    assert shape(parse_quiz(text)) == [('Who wrote "Hamlet"?', ["Shakespeare", "Dickens"], 0)]


@pytest.mark.parametrize("broken, fixed", [
    ('[1, 2, ]', '[1, 2 ]'),
    ('{"a": [1,\n ],\n}', '{"a": [1\n ]\n}'),
    ('{"a": "x, ]"}', '{"a": "x, ]"}'),
    ('["line\none"]', '["line\\none"]'),
    ('[{"a": 1}] trailing text', '[{"a": 1}]'),
])
def test_json_repair(broken: str, fixed: str) -> None:
    assert repair(broken)[0] == fixed


def test_json_repair_closes_a_cut_list_after_the_last_whole_object() -> None:
    assert repair('{"questions": [{"a": 1}, {"b": [2')[1] == '{"questions": [{"a": 1}]}'


# -- answer extraction for free-form replies -------------------------------------------------------

@pytest.mark.parametrize("reply, expected", [
    ("The answer is (B)", 1), ("B) Paris", 1), ("C", 2), ("**Final Answer:** 4", 3), ("(d)", 3),
    ("Let me think. A is wrong. The correct answer is C.", 2), ("Answer: b) Paris", 1),
    ("I would say option D because it is biggest.", None), ("The answer is E", None), ("", None),
    ("A good question! The answer is B.", 1), ("Final answer: 2\nWait, the final answer is 3", 2),
])
def test_extract_choice(reply: str, expected: int | None) -> None:
    assert extract_choice(reply, 4) == expected


def test_extract_choice_by_option_text_and_zero_based_numbers() -> None:
    assert extract_choice("I believe it is Paris.", 4, options=CAPITALS) == 1
    assert extract_choice("A chloroplast.", 4, options=["Nucleus", "Ribosome", "A chloroplast", "Wall"]) == 2
    assert extract_choice("A. Nucleus", 4, options=["Nucleus", "Ribosome", "A chloroplast", "Wall"]) == 0
    assert extract_choice("B Ribosome", 4, options=["Nucleus", "Ribosome", "A chloroplast", "Wall"]) == 1
    assert extract_choice("Final Answer: 0", 4, number_base=0) == 0
    assert extract_choice("Final Answer: 4", 4, number_base=0) is None


# -- real model outputs (../shared/data/mcq_raw_outputs) ---------------------------------------------

@needs_raw
def test_real_llama_70b_quiz_all_150_questions_with_their_keys() -> None:
    text = (RAW / "NLP_Project_llama-3.3-70b_generated_mcqs.txt").read_text(encoding="utf-8")
    questions = parse_quiz(text)
    assert len(questions) == 150
    assert all(len(q.options) == 4 for q in questions)
    # Counted by hand: the model's "D" bias is the reason generated quizzes shuffle their options.
    assert Counter("ABCD"[q.answer] for q in questions) == {"D": 122, "B": 17, "C": 10, "A": 1}
    assert shape(questions[:1]) == [("Who reached Newfoundland in present-day Canada around the year 1000?",
                                     ["Christopher Columbus", "Prince Henry the Navigator", "Vasco da Gama",
                                      "Leif Erikson"], 3)]
    expected = [line[len("Answer: "):] for line in text.splitlines() if line.startswith("Answer: ")]
    assert ["ABCD"[q.answer] for q in questions] == expected
    # The "Cluster 8" block opens with a preamble; it must not leak into the first stem.
    flattery = next(q for q in questions if q.question.startswith("What is the tone of the phrase"))
    assert flattery.options[flattery.answer] == "Flattery"


@needs_raw
def test_real_gemini_quiz_15_questions_without_keys() -> None:
    text = (RAW / "GenQuest_gemini-2.0-flash-thinking_generated_questions.txt").read_text(encoding="utf-8")
    questions = parse_quiz(text)
    assert len(questions) == 15
    assert all(q.answer is None and len(q.options) == 4 for q in questions)
    assert questions[5].question == "What did the author's father gift him along with money to invest?"
    assert questions[14].options == ["A complex mathematical formula", "The main reason for stock market crashes",
                                     "The force behind wealth creation in stocks", "A risky form of speculation"]


@needs_raw
def test_real_short_answer_questions_are_not_mcqs() -> None:
    text = (RAW / "SQA_LLM_llama-3.1-8b_short_answer_questions.txt").read_text(encoding="utf-8")
    assert parse_quiz(text) == []


@needs_raw
def test_real_chain_of_thought_logs() -> None:
    """Five prompt+response logs. The MCQs written in them are recovered: three few-shot examples per
    prompt with their "Correct Answer:" keys, and the question under test without a key (the
    model's "Final Answer" is an answer to it, not its key); two responses repeat the question.
    Chain-of-thought steps ("1. Analyze the question...") are not mistaken for options."""
    text = (RAW / "FOR_AI_llama3_cot_prompts_and_responses.txt").read_text(encoding="utf-8")
    examples = [(["3", "4", "5", "6"], 1), (["Berlin", "Madrid", "Paris", "Rome"], 2),
                (["The defendant", "The plaintiff", "The judge", "The jury"], 1)]
    moral = (["Wrong, Wrong", "Wrong, Not wrong", "Not wrong, Wrong", "Not wrong, Not wrong"], None)
    disclosure = ([
        "when one partner in a relationship self-discloses, the other is unlikely to do so",
        "self-disclosure on the part of one partner often leads to self-disclosure on the part of the other",
        "there is a negative correlation between amount of self-disclosure and relationship satisfaction",
        "there is no relationship between amount of self-disclosure and relationship satisfaction"], None)
    mudras = (["hand gestures", "saints", "religious clothing", "temples"], None)
    vitamins = (["Vitamin A", "Vitamin D", "Vitamin E", "Vitamin K"], None)
    expected = (examples + [moral] + examples + [disclosure] + examples + [mudras, mudras]
                + examples + [moral] + examples + [vitamins, vitamins])
    questions = parse_quiz(text)
    assert [(q.options, q.answer) for q in questions] == expected
    assert [q.question.split("?")[0] for q in questions[:3]] == [
        "What is 2 + 2", "What is the capital of France",
        "In a contract dispute, which party is typically responsible for proving breach of contract"]
    assert questions[11].question == ("The mudras, which are an important feature of Buddhist art, are also "
                                      "known as what?")
    assert questions[21].question == "Which vitamin is required for vision in dim light?"


@needs_raw
def test_real_chain_of_thought_final_answers() -> None:
    text = (RAW / "FOR_AI_llama3_cot_prompts_and_responses.txt").read_text(encoding="utf-8")
    replies = [block.split("Response:", 1)[1] for block in text.split("-" * 50) if "Response:" in block]
    assert [extract_choice(reply, 4, number_base=0) for reply in replies] == [1, 1, 0, 3, 0]


# -- robustness ------------------------------------------------------------------------------------

def check_questions(questions: list[Question]) -> None:
    for q in questions:
        assert isinstance(q.question, str) and q.question.strip()
        assert len(q.options) >= 2
        assert q.answer is None or 0 <= q.answer < len(q.options)


QUIZ_PIECES = st.sampled_from([
    "1. ", "Q1: ", "Question 2\n", "**Question 3**\n", "### Question 4\n", "QUESTION 5\n", "END\n",
    "Question: ", "What is it?\n", "A) ", "B. ", "(C) ", "d) ", "- A. ", "Option B: ", "1) ", "2) ",
    "Answer: ", "Answer:\n", "**Answer:** B) x\n", "Correct answer: (c)\n", "Answer Key: 1. A 2. B\n",
    "\u2705", "(Correct)", "Explanation: ", "```\n", "```json\n", "[", "]", "{", "}", '"question": ', ",",
    '"options": ["a", "b"', '"answer": 1', "\n", "\r\n", "\u00a0", "\u201c", "\u201d", "---\n", "Both A and B",
    "x", "Paris", " ", "**", "*", "0. ", "3. ", "Answers:\n", "1. B\n", "\t",
    "| Question | A | B | C | D | Answer |\n", "|---|---|\n", "| x | y | z |", "|", "Réponse : ", "Frage 2: ",
    "Solutions\n", "1. B \u2013 because x\n", "(Answer: B)", "Quote: ", "Erklärung: ", "Answers: 1-B, 2-C\n",
])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_strings_never_raise(text: str) -> None:
    check_questions(parse_quiz(text))
    assert extract_choice(text, 4) in (None, 0, 1, 2, 3)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(QUIZ_PIECES, max_size=60).map("".join))
def test_quiz_like_fragments_never_raise(text: str) -> None:
    check_questions(parse_quiz(text))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list(LAYOUTS.values()) + list(JSON_CASES.values()) + list(MORE_LAYOUTS.values())),
                min_size=1, max_size=3),
       st.data())
def test_cut_and_spliced_quizzes_never_raise(cases: list, data: st.DataObject) -> None:
    text = "\n".join(case[0] for case in cases)
    cut = data.draw(st.integers(0, len(text)))
    check_questions(parse_quiz(text[:cut]))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10) | st.floats(allow_nan=True) | st.text(max_size=12)
    | st.sampled_from(["A", "b", "B) x", "(c)", "Paris"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["question", "Question", "q", "options", "choices", "answers", "answer", "correct",
                         "answer_index", "explanation", "questions", "quiz", "text", "correct_answer", "A", "B"]),
        inner, max_size=6),
    max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES, st.sampled_from(["{}", "```json\n{}\n```", "Here: {} bye", "{}"]))
def test_arbitrary_json_never_raises(value: object, wrapper: str) -> None:
    check_questions(parse_quiz(wrapper.format(json.dumps(value))))


@pytest.mark.parametrize("text", [
    "Answer:" + " " * 50_000 + "?", "**a " * 20_000, "A) " * 20_000, "[{" * 20_000, "1. " * 20_000,
    "(A) x " * 10_000, "{\"question\": \"" + "x" * 100_000, "\n" * 100_000, "Answer Key: " + "1. A " * 10_000,
    "| " * 40_000, "| Question | A | B |\n" + "| x | y | z |\n" * 5_000, "Solutions\n" + "1. B \u2013 x y\n" * 5_000,
    "Réponse " * 20_000, "x (Answer: " * 10_000,
], ids=["spaces", "stars", "labels", "brackets", "numbers", "inline", "open string", "newlines", "key",
        "pipes", "table rows", "solutions", "answer words", "option keys"])
def test_adversarial_inputs_stay_fast(text: str) -> None:
    start = time.perf_counter()
    check_questions(parse_quiz(text))
    extract_choice(text, 4)
    assert time.perf_counter() - start < 2.0


def test_import_pulls_in_the_standard_library_only() -> None:
    code = ("import sys; before = set(sys.modules)\n"
            "import quiz, quiz.parse, quiz.generate, quiz.grade\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
            "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
            "print(sorted(new - set(sys.stdlib_module_names) - {'quiz'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_json_with_raw_control_characters_in_strings_parses():
    """Some servers' JSON grammars let a raw carriage return, tab or other control character into a string."""
    text = ('{"questions":[{"question":"Which\\tgas\\r\\ndo plants take in?","options":["Oxygen","Carbon\\x01 dioxide",'
            '"Helium","Neon"],"answer":"B","explanation":"Photosynthesis\\x07 uses it."}]}')
    (question,) = parse_quiz(text)
    assert question.question.split() == ["Which", "gas", "do", "plants", "take", "in?"]
    assert question.answer == 1 and question.options[0] == "Oxygen"
