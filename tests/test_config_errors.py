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


@pytest.mark.parametrize(("build", "message"), [
    (lambda: TrainConfig(epochs=0), "epochs must be >= 1, got 0"),
    (lambda: TrainConfig(learning_rate=-1.0), "learning_rate must be > 0, got -1.0"),
    (lambda: GroupingConfig(gridsize=0), "gridsize must be >= 1, got 0"),
    (lambda: InferConfig(batch_size=0), "batch_size must be >= 1, got 0"),
    (lambda: RunConfig().with_overrides(train={"batch_size": 0}),
     "<dict>: key 'train': batch_size must be >= 1, got 0"),
    (lambda: ModelConfig(kind="nope"), None),
    (lambda: ModelConfig(kind="unrolled", consistency="gauss"),
     "consistency must be 'modulus' or 'poisson', got 'gauss'"),
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
