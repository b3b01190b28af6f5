"""The reply parser on any Unicode text, for every question: it never raises (a raise
dead-letters the reply: no re-prompt, no alert). The parser is being rewritten to never
raise (another issue); until that lands this test is expected to fail on "❾" and the like.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.survey.parsing import detect_red_flags, parse_reply

QUESTIONS = [None, "q1_red_flags", "q2_common_effects", "q3a_headache_days", "q3b_medication_days"]


@pytest.mark.xfail(reason="the parser rewrite (another issue) makes it never raise; '❾' raises today", strict=False)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=200), question=st.sampled_from(QUESTIONS))
@example(text="❾", question="q2_common_effects")
@example(text="❾", question="q3a_headache_days")
def test_the_parser_never_raises_on_any_text_for_any_question(text, question):
    parse_reply(text, question)
    detect_red_flags(text)
