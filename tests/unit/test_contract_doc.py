"""docs/contract.md is generated from the code and cannot drift from it."""

from __future__ import annotations

from services import contract_doc
from services.envhelp import variables
from shared.topics import PUBLIC


def test_the_contract_document_is_up_to_date_with_the_models_and_settings():
    current = contract_doc.DOC.read_text(encoding="utf-8") if contract_doc.DOC.exists() else ""
    assert current == contract_doc.render(), f"docs/contract.md is stale: run `{contract_doc.COMMAND}`"


def test_the_contract_names_every_public_event_every_topic_and_every_variable():
    text = contract_doc.render()
    for model in contract_doc.event_models():
        assert f"### `{model.model_fields['type'].default}`" in text
    assert all(f"`cyclecare.{topic}`" in text for topic in PUBLIC)
    assert all(f"| `{name}` |" in text for name in variables())
    assert "(not yet on a topic here)" not in text, "add the new event type to shared.topics.TOPIC_OF"


def test_a_field_with_limits_shows_them():
    text = contract_doc.render()
    assert "| `baseline_headache_days` | integer 0–31 | optional |" in text
    assert "| `administered_on` | date `YYYY-MM-DD` | **required** |" in text
