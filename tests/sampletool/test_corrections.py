"""Improving a model with its user's corrections: the dataset the corrections make."""

from __future__ import annotations

from pathlib import Path

from sampletool.data.dataset import load_dataset, make_dataset
from sampletool.training import corrections as corr
from tests.helpers import tone, write

NAMES = ["kick", "snare", "tonal", "fx"]


def _files(root, n):
    return [str(write(root / f"s{i:03d}.wav", tone(100 + 10 * i, 0.2))) for i in range(n)]


def test_corrected_files_train_and_the_models_sure_readings_keep_what_it_knows(tmp_path):
    files = _files(tmp_path / "lib", 40)
    fixed = {files[0]: "tonal", files[1]: "tonal", files[2]: "fx", files[3]: "didgeridoo"}
    readings = [(f, "kick" if i % 2 else "snare", 0.95 if i % 3 else 0.6)
                for i, f in enumerate(files)]  # fmt: skip
    found = corr.corrections_survey(fixed, readings, NAMES, tmp_path / "lib")
    survey = found.survey
    assert survey.ok and found.corrected == sorted(files[:3])  # a class it lacks is left out
    assert survey.class_names == NAMES  # every class of the model, in its order
    paths = dict(survey.items)
    assert all(paths[p] == fixed[p] and survey.splits[p] == "train" for p in found.corrected)
    sure = [f for i, f in enumerate(files[4:], 4) if i % 3]
    assert set(paths) == set(found.corrected) | set(sure)  # unsure readings are left out
    assert {survey.splits[p] for p in sure} == {"train", "val"}
    ds = load_dataset(make_dataset([tmp_path / "lib"], "c", out=tmp_path / "ds", survey=survey))
    assert ds.class_names == NAMES  # classes without files (here "fx" has one) stay
    cfg = corr.improve_config({"kind": "vae"}, {"sample_rate": 16000}, "/models/x", found)
    assert cfg["init_from"] == "/models/x" and set(cfg["source_weights"]) == set(found.corrected)
    n_other = sum(s == "train" for s in survey.splits.values()) - 3
    weight = cfg["source_weights"][files[0]]
    assert weight * 3 / (weight * 3 + n_other) > 0.3  # a third of the draws are corrections
    # tonal and fx have their corrections, kick and snare sure readings: no class unseen
    assert not any("no sample here" in w for w in survey.warnings)
    lean = corr.corrections_survey({files[0]: "tonal"}, readings, NAMES, tmp_path / "lib").survey
    said = ("no sample here is fx (none corrected to it, none the model is sure of): the "
            "improved model keeps the class but may hear it less often")  # fmt: skip
    assert said in lean.warnings


def test_no_corrections_or_nothing_sure_is_a_problem_said_plainly(tmp_path):
    files = _files(tmp_path / "lib", 6)
    none = corr.corrections_survey({}, [(f, "kick", 0.99) for f in files], NAMES, tmp_path)
    assert not none.survey.ok and "right-click" in none.survey.problem
    unsure = corr.corrections_survey({files[0]: "fx"}, [(f, "kick", 0.3) for f in files],
                                     NAMES, tmp_path)  # fmt: skip
    assert not unsure.survey.ok and "too few" in unsure.survey.problem


def test_paths_through_a_symlinked_library_are_resolved(tmp_path):
    files = _files(tmp_path / "real", 12)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    linked = [str(tmp_path / "link" / Path(f).name) for f in files]
    readings = [(f, "kick", 0.99) for f in linked]
    found = corr.corrections_survey({linked[0]: "fx"}, readings, NAMES, tmp_path / "link")
    assert found.corrected == [files[0]]  # the real path, as the trainer matches it
    assert files[0] not in [p for p, c in found.survey.items if c == "kick"]
