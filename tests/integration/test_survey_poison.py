"""The survey's inbound topic under oversized MessageSids: dead-lettered, and the survey
keeps going (they once made a 1.2 MB changelog record that crashed it)."""

from __future__ import annotations

import json

from shared.survey_events import InboundSms
from tests.support.kafka import eventually

PHONE = "+19165550123"


async def test_oversized_message_sids_from_one_number_are_dead_lettered_and_the_survey_carries_on(
    start_worker, topics, watch, publisher
):
    """Four 200,000-character MessageSids from one number once made a 1.2 MB changelog
    record and crashed the survey."""
    survey = await start_worker("survey")
    watcher = await watch(topics.dlq, topics.outbound)
    for n in range(4):
        huge = {"type": "sms.received", "message_sid": f"S{n}" + "9" * 200_000, "from_phone": PHONE,
                "to_phone": "+19165550100", "body": "hi", "received_at": "2026-03-02T10:00:00+00:00"}
        await publisher.send(topics.inbound, PHONE, json.dumps(huge).encode())
    await publisher.send(topics.inbound, PHONE, InboundSms(
        message_sid="SM" + "1" * 32, from_phone=PHONE, to_phone="+19165550100", body="hi",
        received_at="2026-03-02T10:00:00+00:00"))

    letters = await eventually(lambda: len(watcher.raw(topics.dlq)) >= 4 and watcher.raw(topics.dlq),
                               what="four dead letters")
    assert all("message_sid" in letter["error"] for letter in letters)
    [reply] = await eventually(lambda: watcher.events(topics.outbound), what="the neutral reply to the valid SMS")
    assert reply.kind == "unknown_sender"
    assert survey._process.poll() is None  # noqa: SLF001
