"""Every config raises PtychoInputError (one line) for a bad value, as the CLI expects (#24)."""

from __future__ import annotations

import pytest

from ptychopinn.config import RunConfig, TrainConfig
from ptychopinn.data.grouping import GroupingConfig
from ptychopinn.data.simulate import SimulationConfig
from ptychopinn.errors import PtychoInputError
from ptychopinn.inference.adapt import AdaptConfig
from ptychopinn.inference.predict import InferConfig
from ptychopinn.iterative.ptychi_backend import IterativeConfig
from ptychopinn.models.config import ModelConfig
from ptychopinn.models.options import CNNOptions, UnrolledOptions


@pytest.mark.parametrize(("build", "message"), [
    (lambda: TrainConfig(epochs=0), "epochs must be >= 1, got 0"),
    (lambda: TrainConfig(learning_rate=-1.0), "learning_rate must be > 0, got -1.0"),
    (lambda: GroupingConfig(gridsize=0), "gridsize must be >= 1, got 0"),
    (lambda: InferConfig(batch_size=0), "batch_size must be >= 1, got 0"),
    (lambda: RunConfig().with_overrides(train={"batch_size": 0}),
     "<dict>: key 'train': batch_size must be >= 1, got 0"),
    (lambda: ModelConfig(kind="nope"), None),
    (lambda: ModelConfig(kind="unrolled", options=UnrolledOptions(consistency="gauss")),
     "consistency must be 'modulus' or 'poisson', got 'gauss'"),
    (lambda: ModelConfig.from_dict({"kind": "unrolled", "refiner_scales": 3}),
     "<dict>: key 'model': refiner_scales must be 1 or 2, got 3"),
    (lambda: ModelConfig.from_dict({"kind": "unrolled", "inference_steps": -1}),
     "<dict>: key 'model': inference_steps must be >= 0, got -1"),
    (lambda: ModelConfig.from_dict({"kind": "unrolled", "object_steps": -3}),
     "<dict>: key 'model': object_steps must be >= 0, got -3"),
    (lambda: ModelConfig(kind="unrolled", options=CNNOptions()),
     "model.kind 'unrolled' takes UnrolledOptions, not CNNOptions"),
    (lambda: ModelConfig.from_dict({"kind": "pinn", "n_iterations": 3}),
     "<dict>: key 'model.n_iterations': an option of model.kind unrolled, not of model.kind "
     "'pinn' (its options: n_filters_scale, amp_activation, object_big, pad_object, "
     "batch_norm)"),
    (lambda: ModelConfig.from_dict({"kind": "unrolled", "n_filters_scale": 0.5}),
     "<dict>: key 'model.n_filters_scale': an option of model.kind pinn / baseline, not of "
     "model.kind 'unrolled' (its options: n_iterations, refiner_width, memory_channels, "
     "dose_input, consistency, step_map, refiner_scales, inference_steps, "
     "object_steps)"),
    (lambda: InferConfig(extra_steps=-2), "extra_steps must be >= 0, got -2"),
    (lambda: SimulationConfig(n_positions=0), None),
    (lambda: IterativeConfig(epochs=0), None),
    (lambda: AdaptConfig(minutes=-1.0), None),
])
def test_bad_config_values_raise_one_line_input_errors(build, message):
    with pytest.raises(PtychoInputError) as e:
        build()
    text = str(e.value)
    assert "\n" not in text and text
    if message is not None:
        assert text == message
