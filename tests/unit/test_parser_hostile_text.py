"""The reply parser on any Unicode text, for every question: it never raises (a raise
dead-letters the reply: no re-prompt, no alert). "❾" raised ValueError before the reader
was rewritten.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.survey.parsing import detect_red_flags, parse_reply

QUESTIONS = [None, "q1_red_flags", "q2_common_effects", "q3a_headache_days", "q3b_medication_days"]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=200), question=st.sampled_from(QUESTIONS))
@example(text="❾", question="q2_common_effects")
@example(text="❾", question="q3a_headache_days")
def test_the_parser_never_raises_on_any_text_for_any_question(text, question):
    parse_reply(text, question)
    detect_red_flags(text)
