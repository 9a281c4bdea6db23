"""Tables in, tables out, in a real Chromium on the bundled model: upload a CSV → template → answer fields →
pilot → the rest → the joined table → an Excel download → a second prompt → Compare.

The bundled model answers in the fields: the engine constrains its decoding to the schema
(``response_format`` json_schema), so the page refuses nothing, every answer fits, the joined table has a
typed ``sentiment`` column whose values are the enum's, its filter picks rows, and Compare shows agreement.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook
from support.chromium import CHROMIUM, CHROMIUM_ARGS, SETTLED

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "tests" / "artifacts" / "screenshots"
REVIEWS = [
    ("K1", "The kettle boils fast and looks great."),
    ("K2", "Broke after a week. Very disappointed."),
    ("K3", "Does the job, nothing special."),
    ("K4", "Lovely colour, quiet, would buy again."),
    ("K5", "Leaks from the lid every time."),
    ("K6", "Arrived late but works fine."),
]
pytestmark = [pytest.mark.browser, pytest.mark.model]


@pytest.fixture
def reviews_csv(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    lines = ["sku,review"] + [f'{sku},"{text}"' for sku, text in REVIEWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def dashboard(make_engine, isolated_data_dir: Path, tmp_path: Path):
    from test_browser_dashboard import running_dashboard

    engine = make_engine(backend="model", request_timeout=120.0)
    env = {"LANGBATCH_DATA_DIR": str(isolated_data_dir), "LANGBATCH_ENGINE_URL": engine.base_url}
    with running_dashboard(env, tmp_path / "streamlit.log") as url:
        yield url


def settle(page) -> None:
    page.wait_for_timeout(400)
    page.wait_for_function(SETTLED, timeout=60_000)
    page.wait_for_timeout(400)


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    settle(page)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def type_into(page, label: str, text: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Tab")  # Streamlit takes a text area's value when it loses focus
    settle(page)


def new_table_batch(page, url: str, csv: Path, template: str, pilot: int | None, name: str = "") -> None:
    """Fills the From a table page with the starter fields (a sentiment enum) and starts the batch."""
    page.goto(f"{url}/table")
    page.locator("input[type=file]").set_input_files(str(csv))
    page.get_by_text("Column types").wait_for()
    type_into(page, "Prompt template", template)
    type_into(page, "Max tokens", "24")  # room for the whole JSON object
    page.get_by_text("Fields", exact=True).click()
    page.get_by_text("One column per field in the results").wait_for()
    page.get_by_text('"response_format"').first.wait_for()
    settle(page)  # "Run it" of the free-text page may still show: wait for this run to end
    page.get_by_role("heading", name="Run it").wait_for()
    assert page.get_by_text("cannot do what these requests ask").count() == 0
    if name:
        type_into(page, "Name", name)
    if pilot:
        type_into(page, "Pilot rows", str(pilot))
        page.get_by_role("button", name=f"Start a pilot of {pilot} rows").click()
        page.get_by_text(f"Pilot of {pilot} rows started").wait_for()
    else:
        page.get_by_role("button", name=f"Start all {len(REVIEWS)} rows").click()
        page.get_by_text(f"Batch of {len(REVIEWS)} rows started").wait_for()


def pick_in_filter(page, label: str, value: str) -> None:
    """Chooses ``value`` in the multiselect filter labelled ``label``."""
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text=label)
    box.locator("input").click()
    page.get_by_role("option", name=value, exact=True).click()
    page.keyboard.press("Escape")
    settle(page)


def wait_finished(page, url: str, count: int) -> None:
    page.goto(f"{url}/batches")
    page.get_by_text(f"{count} of {count} requests finished").wait_for(timeout=240_000)
    page.get_by_text("Refreshing every").wait_for(state="detached", timeout=60_000)


def test_table_in_fields_pilot_rest_excel_and_compare(dashboard, reviews_csv, tmp_path):
    from playwright.sync_api import sync_playwright

    url = dashboard
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1500}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(60_000)

        template = "Is this review positive or negative? {{ review }}"
        new_table_batch(page, url, reviews_csv, template, pilot=2, name="reviews v1")
        shoot(page, "table-new.png")
        wait_finished(page, url, 2)

        page.goto(f"{url}/results")
        page.get_by_text("A pilot of 2 of 6 rows").wait_for()
        page.get_by_role("button", name="Run the other 4 rows").click()
        page.get_by_text("The rest started").wait_for()
        wait_finished(page, url, 4)

        page.goto(f"{url}/results")
        page.get_by_text("6 of 6 rows, in your table's order").wait_for()
        page.locator('[data-testid="stDataFrame"] canvas').first.wait_for()
        shoot(page, "table-results.png")
        with page.expect_download() as download:
            page.get_by_role("button", name="Excel", exact=True).click()
        saved = tmp_path / "answers.xlsx"
        download.value.save_as(saved)
        rows = CalamineWorkbook.from_path(str(saved)).get_sheet_by_index(0).to_python()
        header = rows[0]
        assert header[:3] == ["sku", "review", "answer"]
        assert "status" in header and "cost_usd" in header
        assert [row[0] for row in rows[1:]] == [sku for sku, _ in REVIEWS]
        records = [dict(zip(header, row, strict=True)) for row in rows[1:]]
        assert all(r["status"] == "succeeded" for r in records)
        # every answer fits the schema: a typed field column holding the enum's values, no schema_error
        assert {r["sentiment"] for r in records} <= {"positive", "negative", "neutral"}
        assert not any(r.get("schema_error") for r in records)
        first = records[0]["sentiment"]
        matching = sum(r["sentiment"] == first for r in records)

        pick_in_filter(page, "sentiment", first)
        page.get_by_text(f"{matching} of 6 rows, in your table's order").wait_for()

        second = "One word, positive or negative: {{ review }}"
        new_table_batch(page, url, reviews_csv, second, None)
        wait_finished(page, url, 6)
        page.goto(f"{url}/compare")
        page.get_by_text("Row by row").wait_for()
        agreement = page.locator('[data-testid="stMetric"]').filter(has_text="sentiment")
        assert re.fullmatch(r"\d+%", agreement.locator('[data-testid="stMetricValue"]').inner_text().strip())
        page.get_by_text("where they disagree").click()
        settle(page)
        shoot(page, "table-compare.png")
        assert page.get_by_text("Cost and tokens").count() == 1
        context.close()
        browser.close()
