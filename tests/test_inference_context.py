"""Context-window fitting and message normalisation (pure functions, fake token counts)."""

from __future__ import annotations

from inference.context import TRUNCATION_MARK, content_text, fit_messages, normalize_messages
from inference.prompts import SYSTEM_PROMPT, with_system_prompt


def count_words(messages: list[dict]) -> int:
    # 2 "tokens" of template per message plus one per word: enough structure to test the policy.
    return sum(2 + len(m["content"].split()) for m in messages)


def truncate_words(text: str, n: int, keep_end: bool) -> str:
    words = text.split()
    return " ".join(words[-n:] if keep_end else words[:n])


def conversation(turns: int) -> list[dict]:
    msgs = [{"role": "system", "content": "be kind"}]
    for i in range(turns):
        msgs += [{"role": "user", "content": f"question {i} " + "w " * 8},
                 {"role": "assistant", "content": f"answer {i} " + "w " * 8}]
    return msgs + [{"role": "user", "content": "last question"}]


def test_short_conversation_is_untouched():
    msgs = conversation(1)
    assert fit_messages(msgs, 1000, count_words, truncate_words) is msgs


def test_oldest_turns_are_dropped_and_system_and_newest_kept():
    msgs = conversation(10)  # 4 + 20 * 12 + 4 = 248 words+overhead
    fitted = fit_messages(msgs, 60, count_words, truncate_words)
    assert fitted[0] == {"role": "system", "content": "be kind"}
    assert fitted[-1] == {"role": "user", "content": "last question"}
    assert fitted[1]["role"] == "user"  # roles still alternate after the system prompt
    assert count_words(fitted) <= 60
    kept = [m["content"].split()[1] for m in fitted[1:-1]]
    assert kept == sorted(kept, key=int) and kept[-1] == "9"  # the newest turns, in order
    # It kept as many turns as fit: one more user/assistant pair would overflow.
    assert count_words(fitted) + 24 > 60


def test_a_single_huge_message_keeps_its_end():
    msgs = [{"role": "system", "content": "be kind"},
            {"role": "user", "content": " ".join(f"w{i}" for i in range(500)) + " so what is X?"}]
    fitted = fit_messages(msgs, 50, count_words, truncate_words)
    assert count_words(fitted) <= 50
    assert fitted[0]["content"] == "be kind"
    assert fitted[1]["content"].startswith(TRUNCATION_MARK)
    assert fitted[1]["content"].endswith("so what is X?")


def test_an_oversized_system_prompt_keeps_its_beginning():
    msgs = [{"role": "system", "content": "rule1 " + "x " * 300},
            {"role": "user", "content": "hi"}]
    fitted = fit_messages(msgs, 40, count_words, truncate_words)
    assert count_words(fitted) <= 40
    assert fitted[0]["content"].startswith("rule1")
    assert fitted[-1]["content"] == "hi"


def test_normalize_messages_joins_gradio_blocks():
    msgs = [{"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}],
             "metadata": {"title": None}},
            {"role": "assistant", "content": "Hi!", "options": []}]
    assert normalize_messages(msgs) == [{"role": "user", "content": "Hello\nthere"},
                                        {"role": "assistant", "content": "Hi!"}]
    assert content_text(None) == ""
    assert content_text({"text": "x"}) == "x"


def test_with_system_prompt_replaces_an_existing_one():
    msgs = [{"role": "system", "content": "old"}, {"role": "user", "content": "q"}]
    assert with_system_prompt(msgs, "new") == [{"role": "system", "content": "new"},
                                               {"role": "user", "content": "q"}]
    assert with_system_prompt(msgs, "") == [{"role": "user", "content": "q"}]
    assert with_system_prompt([{"role": "user", "content": "q"}])[0]["content"] == SYSTEM_PROMPT
