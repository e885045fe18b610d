"""The streamed output check on its own: hold-back, check cadence, halts.
A stand-in detector marks text containing "BAD" as unsafe so each test
knows exactly which token makes the stream unsafe."""

from __future__ import annotations

from tests.gateway.standins import marker_guard

from guardstack.gateway.judge import Judge
from guardstack.gateway.recorder import Exchange
from guardstack.gateway.streaming import StreamCheck


def chunk(text: str | None, finish: str | None = None) -> dict:
    delta = {"content": text} if text is not None else {"role": "assistant"}
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def texts(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


async def run(tokens: list[str], **kw) -> tuple[StreamCheck, list[list[dict]]]:
    ex = Exchange("chat.completions")
    check = StreamCheck(Judge(marker_guard("BAD")), (), ex, **kw)
    sent = [await check.feed(chunk(None))]
    for t in tokens:
        sent.append(await check.feed(chunk(t)))
        if check.halted:
            return check, sent
    sent.append(await check.feed(chunk(None, "stop")))
    sent.append(await check.finish())
    return check, sent


async def test_hold_back_keeps_unchecked_tokens_from_the_client():
    tokens = [f" w{i}" for i in range(10)]
    check, sent = await run(tokens, hold_back=4, check_every=4, window_tokens=64)
    # Nothing goes out until a check passes; then everything checked goes at once.
    out = [texts(s) for s in sent]
    assert out[1:4] == ["", "", ""]
    assert out[4] == "".join(tokens[:4])
    assert "".join(out) == "".join(tokens)
    assert not check.halted and len(check.judgements) == 3  # after 4, 8 and at the end


async def test_halt_drops_held_back_text():
    tokens = [" a", " b", " c", " BAD", " d"]
    check, sent = await run(tokens, hold_back=8, check_every=4)
    assert check.halted
    assert "BAD" not in "".join(texts(s) for s in sent)
    assert check.exchange.unsafe_tokens_released == 0
    halt = check.halt_chunk()
    assert halt["choices"][0]["finish_reason"] == "content_filter"
    assert halt["object"] == "chat.completion.chunk" and halt["id"] == "c"


async def test_hold_back_zero_releases_at_once_and_counts_the_leak():
    tokens = [" a", " b", " BAD", " c", " d", " e"]
    check, sent = await run(tokens, hold_back=0, check_every=4)
    assert check.halted
    shown = "".join(texts(s) for s in sent)
    # " a", " b", " BAD" went out unchecked before the check at token 4.
    assert shown == " a b BAD"
    assert check.exchange.unsafe_tokens_released == 3


async def test_sentence_end_triggers_a_check():
    tokens = [" one", " two", " three", " four."]
    check, _ = await run(tokens, hold_back=64, check_every=64)
    assert len(check.judgements) == 1  # at the full stop, not at the end
    assert check.judgements[0].verdict.role == "response"


async def test_window_limits_what_each_check_sees():
    ex = Exchange("chat.completions")
    guard = marker_guard("BAD")
    check = StreamCheck(Judge(guard), (), ex, hold_back=0, check_every=2, window_tokens=3)
    for t in [" a", " b", " c", " d"]:
        await check.feed(chunk(t))
    # Checks at tokens 2 and 4, each over the latest 3 tokens.
    assert [c.text for c in guard.detector.calls] == [" a b", " b c d"]


async def test_window_never_narrower_than_the_check_interval():
    # Otherwise tokens between checks would never be judged at all.
    ex = Exchange("chat.completions")
    check = StreamCheck(Judge(marker_guard("BAD")), (), ex, hold_back=0, check_every=4,
                        window_tokens=2)
    for t in [" BAD", " a", " b", " c"]:
        await check.feed(chunk(t))
    assert check.halted


async def test_finish_chunk_is_held_until_the_last_words_are_checked():
    ex = Exchange("chat.completions")
    check = StreamCheck(Judge(marker_guard("BAD")), (), ex, hold_back=8, check_every=8)
    assert await check.feed(chunk(" fine")) == []
    out = await check.feed(chunk(" BAD", "stop"))
    assert out == [] and check.halted


async def test_concurrent_checks_share_classifier_calls():
    import asyncio

    from guardstack.classifiers.base import Subject

    guard = marker_guard("BAD")
    calls: list[int] = []
    detect = guard.detector.detect

    async def counting(subjects):
        calls.append(len(subjects))
        await asyncio.sleep(0.01)
        return await detect(subjects)

    guard.detector.detect = counting
    judge = Judge(guard, max_calls=1)

    def one(i: int):
        return judge.judge([Subject(f"text {i}" + (" BAD" if i == 3 else ""), "response")])

    first = asyncio.ensure_future(one(0))
    await asyncio.sleep(0.002)  # the first call is now running in the detector
    results = [await first, *await asyncio.gather(*(one(i) for i in range(1, 10)))]
    # The first call runs alone; the other nine queue behind it and go together.
    assert calls == [1, 9]
    assert [r[0].verdict.decision.value for r in results] == \
        ["block" if i == 3 else "allow" for i in range(10)]


async def test_up_to_max_calls_run_side_by_side():
    import asyncio

    from guardstack.classifiers.base import Subject

    guard = marker_guard("BAD")
    running, peak = 0, 0
    detect = guard.detector.detect

    async def slow(subjects):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return await detect(subjects)

    guard.detector.detect = slow
    judge = Judge(guard, max_calls=2)
    tasks = []
    for i in range(6):
        tasks.append(asyncio.ensure_future(judge.judge([Subject(f"t{i}", "response")])))
        await asyncio.sleep(0.001)
    await asyncio.gather(*tasks)
    assert peak == 2



def keys_check() -> StreamCheck:
    """A stream check whose policy blocks answers with a credential in them
    (the stand-in detector finds nothing)."""
    from tests.gateway.standins import MarkerDetector

    from guardstack.guard import Guard
    from guardstack.policy import Policy

    policy = Policy.from_yaml("version: 1\nblocklists:\n  keys: {builtin: [credentials]}\n")
    return StreamCheck(Judge(Guard(policy, detector=MarkerDetector("NEVER"))), (),
                       Exchange("chat.completions"), hold_back=4, check_every=4,
                       window_tokens=64)


async def test_a_credential_being_written_is_held_until_it_completes_and_halts():
    """The key's prefix and first characters pass each check on their own
    (no whole key yet), but are held, so the halt on the whole key shows
    none of it."""
    key = ["gh", "p_", "A1b2C3", "d4E5f6", "G7h8J9", "k0A1b2", "C3d4E5", "f6G7h8", "J9k0"]
    tokens = [" Your", " token", " is", " ", *key, " ok"]
    check = keys_check()
    sent = [await check.feed(chunk(None))]
    for t in tokens:
        sent.append(await check.feed(chunk(t)))
        if check.halted:
            break
    shown = "".join(texts(s) for s in sent)
    assert check.halted and any(j.verdict.blocklists == ("keys",) for j in check.judgements)
    assert shown.startswith(" Your token is") and "p_" not in shown


async def test_text_that_only_looks_like_a_key_start_is_released_at_the_next_check():
    tokens = [" Use", " the", " sk-", "learn", " library", " for", " it", " now", ".", " Then"]
    check = keys_check()
    sent = [await check.feed(chunk(None))]
    for t in tokens:
        sent.append(await check.feed(chunk(t)))
    sent.append(await check.feed(chunk(None, "stop")))
    sent.append(await check.finish())
    assert not check.halted
    assert "".join(texts(s) for s in sent) == "".join(tokens)


def masking_check(**kw) -> StreamCheck:
    """A stream check whose policy masks personal data and keys in answers
    (the stand-in detector finds nothing)."""
    from tests.gateway.standins import MarkerDetector

    from guardstack.guard import Guard
    from guardstack.policy import Policy

    policy = Policy.from_yaml("version: 1\nblocklists:\n  contact:\n"
                              "    builtin: [pii, credentials]\n    action: mask\n")
    return StreamCheck(Judge(Guard(policy, detector=MarkerDetector("NEVER"))), (),
                       Exchange("chat.completions"), **{"hold_back": 4, "check_every": 4,
                                                        "window_tokens": 64, **kw})


async def feed_all(check: StreamCheck, tokens: list[str]) -> list[list[dict]]:
    sent = [await check.feed(chunk(None))]
    for t in tokens:
        sent.append(await check.feed(chunk(t)))
    sent.append(await check.feed(chunk(None, "stop")))
    sent.append(await check.finish())
    return sent


async def test_an_email_streamed_over_many_chunks_reaches_the_client_masked_whole():
    """Checks fall inside the address (at "jane." and at "example."), yet no
    part of it is released before the rest: the last word is kept back."""
    tokens = [" You", " can", " write", " to", " me", " at", " jane", ".", "doe", "@", "example",
              ".", "org", " or", " call", " +", "44", " 20", " 79", "46", " 09", "58", " today",
              "."]
    check = masking_check()
    sent = await feed_all(check, tokens)
    shown = "".join(texts(s) for s in sent)
    assert shown == " You can write to me at [EMAIL] or call [PHONE] today."
    assert check.exchange.masked == {"response": {"contact": 2}}
    # Released as the checks pass, not all at the end.
    assert sum(1 for s in sent[:-2] if texts(s)) >= 2
    assert check.response_text() == "".join(tokens)  # what was judged: the model's text


async def test_masking_keeps_text_without_finds_as_it_was_and_releases_it_at_checks():
    tokens = [" The", " cell", "'s", " power", "house", " is", " the", " mitochondrion", ".",
              " It", " makes", " ATP", " for", " 2", " reasons", "."]
    check = masking_check()
    sent = await feed_all(check, tokens)
    assert "".join(texts(s) for s in sent) == "".join(tokens)
    assert check.exchange.masked == {}
    assert sum(1 for s in sent[:-2] if texts(s)) >= 2


async def test_a_key_in_a_stream_is_masked_and_the_text_around_it_kept():
    key = ["gh", "p_", "A1b2C3", "d4E5f6", "G7h8J9", "k0A1b2", "C3d4E5", "f6G7h8", "J9k0"]
    tokens = [" Your", " token", " is", " ", *key, " so", " keep", " it", " safe", "."]
    check = masking_check()
    sent = await feed_all(check, tokens)
    assert "".join(texts(s) for s in sent) == " Your token is [CREDENTIAL] so keep it safe."


async def test_a_numbered_placeholder_split_over_chunks_is_given_its_value_back():
    """restore: the request's masked values come back where the answer
    repeats their placeholders, even one written over five chunks."""
    check = masking_check()
    check.exchange.numbered("[EMAIL]", "jane.doe@example.org")
    check.exchange.numbered("[EMAIL]", "sam@example.net")
    tokens = [" Dear", " colleague", ",", " write", " to", " [", "EMAIL", "_", "2", "]",
              " and", " copy", " [", "EMAIL", "_", "1", "].", " Or", " [", "EMAIL", "_", "9",
              "]", "."]
    sent = await feed_all(check, tokens)
    assert "".join(texts(s) for s in sent) == (
        " Dear colleague, write to sam@example.net and copy jane.doe@example.org. Or "
        "[EMAIL_9].")
    assert check.response_text() == "".join(tokens)  # the record keeps the placeholders


async def test_a_placeholder_copied_with_a_space_is_given_back_across_chunks():
    """"[Email 1]" has a space in it: the word before the space must not go
    out alone while the bracket is open, or its number comes too late."""
    check = masking_check()
    check.exchange.numbered("[EMAIL]", "jane.doe@example.org")
    tokens = [" Dear", " [", "Email", " ", "1", "],", " lunch", " on", " Friday", "?", " Reply",
              " to", " (", "email", " 1", ")", " by", " noon", "."]
    sent = await feed_all(check, tokens)
    assert "".join(texts(s) for s in sent) == (
        " Dear jane.doe@example.org, lunch on Friday? Reply to jane.doe@example.org by noon.")
