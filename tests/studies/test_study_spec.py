"""Study YAML: defaults, validation with one-line errors, job graph and seeds."""

from __future__ import annotations

import pytest
import yaml

from ptychopinn.cli import main
from ptychopinn.errors import PtychoInputError
from ptychopinn.studies.jobs import build_jobs
from ptychopinn.studies.spec import (
    DEFAULT_DOSES,
    dose_label,
    load_study,
    seed_from_string,
    study_from_dict,
)

from .conftest import TINY, write_study


def test_defaults_follow_the_spec():
    spec = study_from_dict({})
    assert spec.doses == (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9) == DEFAULT_DOSES
    assert [v.name for v in spec.views] == ["dense", "sparse"]
    assert [(m.name, m.kind, m.gridsize) for m in spec.models] == [
        ("PtychoPINN", "pinn", 2), ("Baseline", "baseline", 1), ("PtyChi-LSQML", "iterative", 1)]
    assert spec.reference_model.name == "PtychoPINN"


def test_load_tiny_and_round_trip(tmp_path):
    spec = load_study(write_study(tmp_path))
    assert spec.doses == (1e4, 1e6)  # "1e4" (a YAML string) is read as a number
    assert spec.scene.patch_size == 32
    assert spec.compute.processes is False
    again = study_from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict())))
    assert again.to_dict() == spec.to_dict()


def test_views_and_models_long_form():
    spec = study_from_dict({
        "views": {"dense": None, "sparse": {"min_spacing": 6}, "half": {"target_overlap": 0.5}},
        "models": [{"name": "PINN1", "kind": "pinn", "gridsize": 1},
                   {"name": "PtyChi-ePIE"}, "Baseline"]})
    assert [(v.name, v.min_spacing, v.target_overlap) for v in spec.views] == [
        ("dense", None, None), ("sparse", 6.0, None), ("half", None, 0.5)]
    assert [(m.kind, m.gridsize, m.algorithm) for m in spec.models] == [
        ("pinn", 1, None), ("iterative", 1, "epie"), ("baseline", 1, None)]


@pytest.mark.parametrize(("doc", "key", "words"), [
    ({"epochs": 3}, "epochs", "unknown key"),
    ({"training": {"epocs": 3}}, "training.epocs", "unknown key"),
    ({"scene": {"n_positions": "many"}}, "scene.n_positions", "integer"),
    ({"views": {"sparse": {"spacing": 3}}}, "views.sparse.spacing", "unknown key"),
    ({"views": {"sparse": {"min_spacing": 3, "target_overlap": 0.5}}}, "views.sparse", "not both"),
    ({"models": ["PtychoPINN", {"name": "Baseline", "gridsize": 2}]}, "models[1].gridsize",
     "gridsize 1"),
    ({"models": ["Mystery"]}, "models[0].kind", "needs kind"),
    ({"models": [{"name": "PtyChi-X", "algorithm": "sgd"}]}, "models[0].algorithm", "lsqml"),
    ({"doses": [1e3, -5]}, "doses[1]", "> 0"),
    ({"doses": [1e3, "lots"]}, "doses[1]", "number"),
    ({"doses": [1e3, 1000]}, "doses[1]", "duplicate"),
    ({"doses": []}, "doses", "non-empty"),
    ({"scene": {"probe": "no_such_probe.npz"}}, "scene.probe", "existing file"),
    ({"scene": {"patch_size": 48}}, "scene.patch_size", "power of two"),
    ({"compute": {"processes": "yes"}}, "compute.processes", "true/false"),
    ({"evaluate": ["validation"]}, "evaluate", "train/test"),
])
def test_bad_values_name_the_file_and_key(tmp_path, doc, key, words):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(PtychoInputError) as e:
        load_study(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: key '{key}': ")
    assert words in msg


@pytest.mark.parametrize(("doc", "key"), [
    ({**TINY, "colour": "blue"}, "colour"),
    ({**TINY, "doses": [1e3, 0]}, "doses[1]"),
])
def test_cli_bad_yaml_is_one_line_exit_2(tmp_path, capsys, doc, key):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    assert main(["study", "run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("ptychopinn study: error: ")
    assert str(path) in err and f"key '{key}'" in err
    assert not out.exists()  # nothing was written


def test_cli_invalid_yaml_syntax(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("doses: [1e3,\nviews: {")
    assert main(["study", "run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "invalid YAML" in err and str(path) in err


def test_seeds_come_from_job_ids():
    assert seed_from_string("a") == seed_from_string("a") == 3398926610  # stable across runs
    assert seed_from_string("a") != seed_from_string("b")
    spec = study_from_dict({"doses": [1e3, 1e5], "seed": 7})
    jobs = {j.id: j for j in build_jobs(spec)}
    t1 = jobs["train-d1e3-dense-PtychoPINN"].params["train"]["seed"]
    assert t1 == seed_from_string("7/train-d1e3-dense-PtychoPINN")
    assert t1 != jobs["train-d1e5-dense-PtychoPINN"].params["train"]["seed"]
    # one scene (object, probe, scan) for every dose; independent photon noise per dose
    s1, s2 = jobs["simulate-d1e3"].params, jobs["simulate-d1e5"].params
    assert s1["seed"] == s2["seed"] and s1["noise_seed"] != s2["noise_seed"]
    # the same thinning at every dose
    assert jobs["view-d1e3-sparse"].params == jobs["view-d1e5-sparse"].params


def test_job_graph_shape():
    spec = study_from_dict({"doses": [1e3, 1e6, 1e9], "evaluate": ["train", "test"]})
    jobs = build_jobs(spec)
    ids = [j.id for j in jobs]
    assert len(ids) == len(set(ids))
    seen: set[str] = set()
    for j in jobs:  # topological order
        assert set(j.deps) <= seen, j.id
        seen.add(j.id)
    kinds = [j.kind for j in jobs]
    # per dose: simulate, split; per view: view, 2 trainings, 3 reconstructions per split,
    # one comparison per split
    assert kinds.count("simulate") == kinds.count("split") == 3
    assert kinds.count("view") == 6 and kinds.count("train") == 12
    assert kinds.count("infer") == 24 and kinds.count("iterative") == 12
    assert kinds.count("compare") == 12
    cmp = next(j for j in jobs if j.id == "compare-d1e6-sparse-test")
    assert cmp.params["recons"] == {
        "PtychoPINN": "infer-d1e6-sparse-PtychoPINN-test",
        "Baseline": "infer-d1e6-sparse-Baseline-test",
        "PtyChi-LSQML": "iterative-d1e6-sparse-PtyChi-LSQML-test"}
    assert set(cmp.deps) == {"view-d1e6-sparse", *cmp.params["recons"].values()}


def test_dose_labels():
    assert [dose_label(d) for d in (1e3, 2.5e4, 1e9, 123.0)] == ["1e3", "2.5e4", "1e9", "1.23e2"]


def test_shared_settings_have_one_default():
    """The study's training and scene defaults are TrainConfig's and SimulationConfig's."""
    from dataclasses import fields

    from ptychopinn.config import TrainConfig
    from ptychopinn.data.simulate import SimulationConfig

    spec = study_from_dict({})
    for f in fields(spec.training):
        assert getattr(spec.training, f.name) == getattr(TrainConfig(), f.name), f.name
    for f in fields(spec.scene):
        assert getattr(spec.scene, f.name) == getattr(SimulationConfig(), f.name), f.name
    assert spec.training.batch_size == TrainConfig().batch_size == 8  # was 16 in the study


def test_yaml_number_strings_are_typed_like_the_run_config(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("training: {learning_rate: 1e-3, max_minutes: 1e0}\nscene: {step: 4e0}\n")
    spec = load_study(path)
    assert type(spec.training.learning_rate) is float and spec.training.learning_rate == 0.001
    assert spec.training.max_minutes == 1.0 and spec.scene.step == 4.0
    path.write_text("training: {learning_rate: quick}\n")
    with pytest.raises(PtychoInputError) as e:
        load_study(path)
    assert str(e.value) == (f"{path}: key 'training.learning_rate': expected a finite number, "
                            "got 'quick'")


def test_network_kinds_of_the_registry_with_config_overrides():
    spec = study_from_dict({"models": [
        "PtychoPINN",
        {"name": "Unrolled", "kind": "unrolled", "gridsize": 2,
         "model": {"refiner_width": 8}, "grouping": {"neighbor_count": 24,
                                                     "inference_members": "pool"}}]})
    m = spec.models[1]
    assert m.kind == "unrolled" and m.is_network and m.gridsize == 2
    train = [j for j in build_jobs(spec) if j.kind == "train" and "Unrolled" in j.id]
    assert train, [j.id for j in build_jobs(spec)]
    p = train[0].params
    assert p["model"]["kind"] == "unrolled" and p["model"]["refiner_width"] == 8
    assert p["grouping"] == {"neighbor_count": 24, "inference_members": "pool", "gridsize": 2}
    # round trip through YAML keeps the overrides
    again = study_from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict())))
    assert again.models == spec.models


def test_unknown_network_kind_and_bad_override_are_one_line():
    import re

    from ptychopinn.models.registry import KINDS

    kinds = " | ".join([*sorted(KINDS), "iterative"])  # every registry kind, then iterative
    with pytest.raises(PtychoInputError, match=re.escape(f"expected {kinds}, got 'gan'")):
        study_from_dict({"models": [{"name": "X", "kind": "gan"}]})
    with pytest.raises(PtychoInputError, match="unknown key.*'widht'"):
        study_from_dict({"models": [{"name": "X", "kind": "unrolled",
                                     "model": {"widht": 3}}]})


def test_committed_regime_map_loads_and_plans():
    from pathlib import Path

    from ptychopinn.studies.spec import load_study

    path = Path(__file__).resolve().parents[2] / "examples" / "regime_map.yaml"
    probe = path.parent / "../../shared/data/real/ptychopinn-xpp-run1084-recon"
    if not probe.exists():
        pytest.skip("shared/data (XPP probe) not beside the checkout")
    spec = load_study(path)
    assert [v.name for v in spec.views] == ["dense", "half", "sparse", "separate"]
    assert spec.doses == (1e3, 1e4, 1e6, 1e9)
    assert {m.kind for m in spec.models} == {"pinn", "unrolled", "iterative"}
    trains = [j for j in build_jobs(spec) if j.kind == "train"]
    # train_view: dense: one training per (dose, network), on the dense train half
    assert spec.train_view == "dense" and spec.iterative.snapshot_every == 1
    assert sorted(j.id for j in trains) == sorted(
        f"train-d{d}-dense-{m}" for d in ("1e3", "1e4", "1e6", "1e9")
        for m in ("PtychoPINN", "PtychoPINN-Unrolled"))
