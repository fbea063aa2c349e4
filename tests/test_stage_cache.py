"""The stage cache (analysis/stage_cache.py): a stage is skipped only while what it read and wrote is
unchanged."""

from pathlib import Path

from analysis import pipeline, stage_cache


def _setup(tmp_path: Path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "export.csv").write_text("uuid\n1\n", encoding="utf-8")
    (raw / "roster.csv").write_text("uuid,person\n1,1\n", encoding="utf-8")
    form = tmp_path / "form.xlsx"
    form.write_bytes(b"form")
    decisions = tmp_path / "decisions.csv"
    decisions.write_text("uuid,new_value\n", encoding="utf-8")
    inputs = pipeline.Inputs(data=raw / "export.csv", form=form, decisions=decisions, frame=tmp_path)
    out = tmp_path / "out"
    (out / "clean").mkdir(parents=True)
    (out / "weights").mkdir()
    for name in stage_cache.CLEAN_READ + ["weights/households.parquet"]:
        (out / name).write_text(name, encoding="utf-8")
    return inputs, out


def _record(stage, out, inputs, code="code-1"):
    wanted = stage_cache.stage_inputs(stage, out, inputs, {"lang": "zh"}, code)
    stage_cache.write_record(out, stage, wanted, stage_cache.stage_outputs(out, stage), 1.5, 10)
    return wanted


def test_unchanged_inputs_and_outputs_are_current(tmp_path):
    inputs, out = _setup(tmp_path)
    wanted = _record("clean", out, inputs)
    assert stage_cache.is_current(out, "clean", wanted)
    _, outputs, seconds, rows = stage_cache.read_record(out, "clean")
    assert len(outputs) == len(stage_cache.CLEAN_READ) and seconds == 1.5 and rows == 10


def test_an_edited_decisions_file_reruns_clean_but_not_weights(tmp_path):
    inputs, out = _setup(tmp_path)
    _record("clean", out, inputs)
    _record("weights", out, inputs)
    inputs.decisions.write_text("uuid,new_value\n1,2\n", encoding="utf-8")
    assert not stage_cache.is_current(
        out, "clean", stage_cache.stage_inputs("clean", out, inputs, {"lang": "zh"}, "code-1")
    )
    # the clean tables weights reads are unchanged, so weights stays current
    assert stage_cache.is_current(
        out, "weights", stage_cache.stage_inputs("weights", out, inputs, {"lang": "zh"}, "code-1")
    )


def test_a_changed_sibling_file_setting_or_code_is_not_current(tmp_path):
    inputs, out = _setup(tmp_path)
    wanted = _record("clean", out, inputs)
    (tmp_path / "raw" / "roster.csv").write_text("uuid,person\n1,2\n", encoding="utf-8")
    assert not stage_cache.is_current(
        out, "clean", stage_cache.stage_inputs("clean", out, inputs, {"lang": "zh"}, "code-1")
    )
    (tmp_path / "raw" / "roster.csv").write_text("uuid,person\n1,1\n", encoding="utf-8")
    assert stage_cache.is_current(out, "clean", wanted)
    for settings, code in (({"lang": "en"}, "code-1"), ({"lang": "zh"}, "code-2")):
        assert not stage_cache.is_current(
            out, "clean", stage_cache.stage_inputs("clean", out, inputs, settings, code)
        )


def test_an_edited_or_deleted_output_is_not_current(tmp_path):
    inputs, out = _setup(tmp_path)
    wanted = _record("clean", out, inputs)
    (out / "clean" / "households.parquet").write_text("edited", encoding="utf-8")
    assert not stage_cache.is_current(out, "clean", wanted)
    wanted = _record("clean", out, inputs)
    (out / "clean" / "persons.parquet").unlink()
    assert not stage_cache.is_current(out, "clean", wanted)


def test_no_record_after_forget(tmp_path):
    inputs, out = _setup(tmp_path)
    wanted = _record("clean", out, inputs)
    stage_cache.forget(out, "clean")
    assert not stage_cache.is_current(out, "clean", wanted)


def test_progress_line_shows_time_left_and_rate():
    import io
    import time

    from analysis.progress import StageProgress

    stream = io.StringIO()
    shown = StageProgress("[2/5] weights", rows=1000, expected=10.0, every=0.01, stream=stream)
    shown.live = True  # as in a terminal
    with shown:
        time.sleep(0.05)
    assert "about" in stream.getvalue() and "s left" in stream.getvalue()
    assert shown.line(4.0) == "[2/5] weights   4.0 s, about 6 s left"
    assert shown.done_text().startswith("[2/5] weights done in ") and "households/s" in shown.done_text()
