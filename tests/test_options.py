"""Typed options: a mode is parsed once, a run's options merge over the spec's `check:` section."""

import pytest

import gradcheck
from conftest import ICA
from gradcheck import network
from gradcheck.options import BATCH_MEMORY, FULL, MODE_HELP, Mode, RunOptions



@pytest.mark.parametrize("text, mode", [("full", FULL), (" fast ", Mode("fast")), ("sample:5", Mode("sample", 5)),
                                        ("sample: 007", Mode("sample", 7))])
def test_modes_parse_into_kind_and_k(text, mode):
    assert Mode.parse(text) == mode


@pytest.mark.parametrize("text", ["quick", "sample", "Sample:3"])
def test_a_bad_mode_names_the_valid_ones(text):
    with pytest.raises(ValueError) as caught:
        Mode.parse(text)
    message = str(caught.value)
    assert message.startswith(f'no such mode: "{text}"; ') and message.endswith(MODE_HELP)


@pytest.mark.parametrize("text", ["sample:0", "sample:-1", "sample:", "sample:x", "sample:²"])
def test_a_bad_sample_size_is_not_called_an_unknown_mode(text):
    with pytest.raises(ValueError) as caught:
        Mode.parse(text)
    message = str(caught.value)
    assert message.startswith(f'mode "{text}": K of sample:K must be ') and message.endswith(MODE_HELP)
    assert "no such mode" not in message


def test_a_mode_prints_as_it_is_written_and_counts_its_entries():
    assert [str(Mode.parse(t)) for t in ("full", "fast", "sample:3")] == ["full", "fast", "sample:3"]
    assert Mode("sample", 3).entries(10) == 3 and Mode("sample", 30).entries(10) == 10 and FULL.entries(10) == 10


def test_keyword_options_parse_a_text_mode_and_default_the_batch_memory():
    options = RunOptions.of(mode="sample:4", rtol=1e-5)
    assert options.mode == Mode("sample", 4) and options.rtol == 1e-5
    assert options.batch_memory == BATCH_MEMORY and RunOptions(memory=10).batch_memory == 10


def test_options_beat_the_spec_which_beats_the_defaults(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(ICA.read_text(encoding="utf-8") + "check: {rtol: 1.0e-5, mode: 'sample:3'}\n", encoding="utf-8")
    from_spec = gradcheck.check(gradcheck.load(spec)).settings
    assert from_spec.rtol == 1e-5 and from_spec.mode == Mode("sample", 3) and from_spec.method == "central"
    overridden = gradcheck.check(gradcheck.load(spec), RunOptions(rtol=1e-4, mode=FULL)).settings
    assert overridden.rtol == 1e-4 and overridden.mode == FULL


def test_run_options_are_part_of_the_api():
    assert gradcheck.RunOptions is RunOptions
    result = gradcheck.check(gradcheck.load(ICA), gradcheck.RunOptions(mode=Mode.parse("fast")))
    assert result.status == "pass" and str(result.settings.mode) == "fast"


def test_options_and_keywords_together_are_refused():
    with pytest.raises(TypeError):
        gradcheck.check(gradcheck.load(ICA), RunOptions(), rtol=1e-5)


def test_one_forward_pass_at_the_base_point_serves_j_backprop_and_every_perturber(monkeypatch):
    calls = []
    real = network.forward
    monkeypatch.setattr(network, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = gradcheck.check(gradcheck.load(ICA))
    assert result.status == "pass" and len(result.params) > 0
    assert len(calls) == 1


@pytest.mark.parametrize("text", ["sample:١٢", "sample:" + "9" * 5000, "sample:99999999999999999999"])
def test_a_sample_count_is_ascii_and_bounded(text):
    with pytest.raises(ValueError) as caught:
        Mode.parse(text)
    assert len(str(caught.value)) < 250
