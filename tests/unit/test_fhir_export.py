"""`cyclecare export fhir`: one NDJSON file per resource type (FHIR Bulk Data layout) from
the portal's read model (a real SQLite database), each line a valid R4B resource."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner
from fhir.resources.R4B import get_fhir_model_class

from services.cli import main
from services.portal.store import Projection
from tests.support.fhir_story import full_cycle
from tests.support.portal_db import migrated_sqlite


def read_model(data_dir: Path) -> None:
    async def build() -> None:
        (data_dir / "portal").mkdir(parents=True)
        engine = await migrated_sqlite(data_dir / "portal" / "portal.db")
        await Projection(engine).apply(full_cycle("p1") + full_cycle("p2"))
        await engine.dispose()

    asyncio.run(build())


def export(tmp_path: Path, *args: str) -> tuple[int, str, Path]:
    out = tmp_path / "export"
    result = CliRunner().invoke(main, ["export", "fhir", "--out", str(out), *args],
                                env={"CYCLECARE_DATA_DIR": str(tmp_path / "data")})
    return result.exit_code, result.output, out


def test_the_export_writes_one_valid_ndjson_file_per_resource_type(tmp_path: Path) -> None:
    read_model(tmp_path / "data")
    code, output, out = export(tmp_path)
    assert code == 0, output
    files = sorted(p.name for p in out.iterdir())
    assert files == ["AdverseEvent.ndjson", "Communication.ndjson", "DetectedIssue.ndjson", "Flag.ndjson",
                     "Observation.ndjson", "Questionnaire.ndjson", "QuestionnaireResponse.ndjson"]
    counts = {}
    for path in out.iterdir():
        lines = path.read_text(encoding="utf-8").splitlines()
        for line in lines:
            resource = get_fhir_model_class(path.stem).model_validate_json(line)
            assert json.loads(line)["resourceType"] == path.stem == resource.get_resource_type()
        counts[path.stem] = len(lines)
    assert counts == {"QuestionnaireResponse": 8, "Observation": 6, "AdverseEvent": 6, "Flag": 4, "DetectedIssue": 2,
                      "Communication": 20, "Questionnaire": 2}
    assert f"{out / 'Flag.ndjson'}: 4" in output


def test_since_keeps_only_what_changed_from_then_on(tmp_path: Path) -> None:
    read_model(tmp_path / "data")
    code, output, out = export(tmp_path, "--since", "2026-08-01")  # only the non-response reviews are that late
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["DetectedIssue.ndjson", "Flag.ndjson", "Questionnaire.ndjson"]
    assert [json.loads(line)["id"] for line in (out / "Flag.ndjson").read_text().splitlines()] == ["p1-nr", "p2-nr"]


def test_a_since_that_is_not_a_date_is_refused_with_the_reason(tmp_path: Path) -> None:
    code, output, _ = export(tmp_path, "--since", "yesterday")
    assert code == 2 and "'yesterday' is not a FHIR date" in output
