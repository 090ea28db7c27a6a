"""Composition: every config file composes against its schema, presets are real multiruns,
and type errors fail at compose time naming the full key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from sweeps.checks import check_value, validate
from sweeps.config import ConfigError, config_dir, config_hash
from sweeps.errors import one_line

CONF = Path(config_dir())
GROUPS = {g.name: sorted(p.stem for p in g.glob("*.yaml")) for g in CONF.iterdir() if g.is_dir()}


def test_defaults_are_the_worked_example(make_cfg):
    cfg = make_cfg()
    assert (cfg.model.name, cfg.model.init) == ("linear", "zeros")
    assert (cfg.optimizer.name, cfg.optimizer.lr) == ("sgd", 0.03)
    assert (cfg.data.slope, cfg.data.intercept) == (0.8, 0.5)
    assert cfg.train.epochs == 200 and cfg.train.zero_grad is True
    assert cfg.data.n_val > 0
    validate(cfg)


@pytest.mark.parametrize("group, option", [(g, o) for g, opts in GROUPS.items() if g != "sweep" for o in opts])
def test_every_group_option_composes_and_validates(make_cfg, group, option):
    cfg = make_cfg(f"{group}={option}")
    validate(cfg)


@pytest.mark.parametrize("preset", GROUPS["sweep"])
def test_sweep_presets_are_multiruns_over_the_four_axes(make_cfg, preset):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = make_cfg(f"sweep={preset}", with_hydra=True)
    # compose() does not run hydra, but the preset's hydra node is in the composed config
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    params = dict(cfg.hydra.sweeper.params)
    assert cfg.sweep.name == preset
    for key, values in params.items():  # every swept value composes and is allowed
        for value in OverridesParser.create().parse_override(f"{key}={values}").sweep_string_iterator():
            validate(make_cfg(f"sweep={preset}", f"{key}={value}"))


def test_diagnostic_grid_crosses_all_four_axes(make_cfg):
    params = make_cfg("sweep=diagnostic", with_hydra=True).hydra.sweeper.params
    for key in ("optimizer", "optimizer.lr", "data.noise", "train.zero_grad"):
        assert "," in str(params[key]), key


@pytest.mark.parametrize("override, key", [
    ("optimizer.lr=fast", "optimizer.lr"),
    ("train.epochs=1.5", "train.epochs"),
    ("train.zero_grad=maybe", "train.zero_grad"),
])
def test_wrong_type_fails_at_compose_time_naming_the_key(make_cfg, override, key):
    with pytest.raises((ConfigCompositionException, ValidationError)) as info:
        make_cfg(override)
    assert key in str(info.value) + str(info.value.__cause__)


@pytest.mark.parametrize("override, message", [
    ("optimizer.lr=0", "optimizer.lr=0.0: must be a finite number > 0"),
    ("optimizer.lr=inf", "optimizer.lr=inf: must be a finite number > 0"),
    ("train.epochs=0", "train.epochs=0: must be an integer >= 1"),
    ("data.noise=-0.5", "data.noise=-0.5: must be a finite number >= 0"),
    ("train.device=gpu", "train.device='gpu': must be auto, cpu, cuda, cuda:N or mps"),
    ("optimizer.momentum=1.0", "optimizer.momentum=1.0: must be a number in [0, 1)"),
])
def test_value_checks_name_key_value_and_allowed(make_cfg, override, message):
    with pytest.raises(ConfigError) as info:
        validate(make_cfg(override))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


BAD_NAMES = [  # the messages as the CLI printed them when these fields were plain strings
    ("optimizer.name", "adamw",
     "optimizer.name='adamw': must be one of ['sgd', 'momentum', 'adam', 'rmsprop']"),
    ("model.name", "cnn", "model.name='cnn': must be one of ['linear', 'poly', 'mlp']"),
    ("model.init", "ones", "model.init='ones': must be one of ['zeros', 'default']"),
    ("train.dtype", "float16", "train.dtype='float16': must be one of ['float32', 'float64']"),
    ("train.lr_schedule", "linear",
     "train.lr_schedule='linear': must be one of ['constant', 'step', 'cosine', 'exponential', 'warmup_cosine']"),
]


@pytest.mark.parametrize("key, value, message", BAD_NAMES)
def test_bad_name_fails_at_compose_time_naming_key_value_and_allowed(make_cfg, key, value,
                                                                     message):
    with pytest.raises(ConfigCompositionException) as info:
        make_cfg(f"{key}={value}")
    assert one_line(info.value) == ("config", message)
    # the same line for a swept value (checked before a multirun starts) and a plain container
    assert check_value(key, value) == message
    container = OmegaConf.to_container(make_cfg(), resolve=True)
    group, field = key.split(".")
    container[group][field] = value
    with pytest.raises(ConfigError) as plain:
        validate(container)
    assert str(plain.value) == message


def test_all_problems_reported_together(make_cfg):
    with pytest.raises(ConfigError) as info:
        validate(make_cfg("optimizer.lr=-1", "data.noise=-1"))
    assert "optimizer.lr" in str(info.value) and "data.noise" in str(info.value)


def test_config_hash_ignores_where_runs_go(make_cfg):
    a = make_cfg()
    b = make_cfg("paths.output_dir=/elsewhere", "tracking.experiment=other", "tracking.uri=sqlite:///x.db")
    c = make_cfg("optimizer.lr=0.3")
    assert config_hash(a) == config_hash(b) != config_hash(c)
