"""``hydra/launcher=vectorized``: Hydra's own launcher suites (other tasks run one by one), its
fast composition against Hydra's, and real sweeps read back from the store next to the same
sweep run by the basic launcher."""

from __future__ import annotations

import logging
import math
import subprocess
import sys

import numpy as np
import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite
from hydra.types import HydraContext, RunMode
from hydra.version import VersionBase
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from packaging.version import Version

from hydra_plugins.sweeps_vectorized_launcher import _compose, _core
from hydra_plugins.sweeps_vectorized_launcher.vectorized_launcher import VectorizedLauncher
from sweeps import app, callbacks
from sweeps.config import config_dir
from sweeps.config import register_configs


def test_discovery() -> None:
    found = Plugins.instance().discover(Launcher)
    assert VectorizedLauncher.__name__ in [x.__name__ for x in found]


@pytest.mark.filterwarnings("ignore:Future Hydra versions will no longer change working directory")
@pytest.mark.parametrize("launcher_name, overrides", [("vectorized", [])])
class TestVectorizedLauncher(LauncherTestSuite):
    """Hydra's launcher suite: its task functions are not the sweeps task, so every job takes
    the one-by-one path (which still composes through the launcher's SweepComposer)."""

    @pytest.fixture(autouse=True)
    def hydra_default_version_base(self, hydra_restore_singletons):
        # Importing sweeps.cli (conftest does) sets version_base=1.3 process-wide; Hydra's suite
        # expects its own default (1.1: jobs chdir into their output dir).
        VersionBase.instance().setbase(Version("1.1"))


@pytest.mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [({"defaults": [{"override hydra/launcher": "vectorized"},
                    {"override hydra/hydra_logging": "hydra_debug"},
                    {"override hydra/job_logging": "disabled"}]}, ["-m"])],
)
class TestVectorizedLauncherIntegration(IntegrationTestSuite):
    """Hydra's integration suite: real apps in subprocesses with this launcher."""


@pytest.mark.parametrize("task, expected", [
    (app.run_job, True),
    (lambda cfg: 0, False),
    (type("Marked", (), {"sweeps_batchable": True, "__call__": lambda self, c: 0})(), False),
])
def test_is_sweeps_task(task, expected):
    from sweeps.cli import _task

    assert _core.is_sweeps_task(_task) and _core.is_sweeps_task(task) is expected


# --- composing: once per set of group choices, equal to Hydra's own -------------------------


@pytest.fixture
def sweeps_hydra(hydra_restore_singletons):
    """The project's Hydra: its config loader composes, its multirun runs sweeps in process."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        yield GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()


JOBS = [
    ["optimizer=adam", "optimizer.lr=0.1", "train.zero_grad=false"],
    ["optimizer=adam", "optimizer.lr=1.0", "train.zero_grad=true", "data.noise=2"],
    ["model=poly", "optimizer.lr=3e-4", "data.name='quoted name'", "train.clip_grad_norm=null"],
    ["model=poly", "optimizer=rmsprop", "tracking.experiment=x${sweep.name}", "train.epochs=7"],
    ["optimizer=sgd", "+extra=1"],  # an addition: composed in full
    ["hydra.job.chdir=false", "optimizer.lr=0.5"],  # a hydra override: composed in full
]


def test_composer_equals_hydra_compose(sweeps_hydra, tmp_path):
    # The run and sweep dirs fixed: their default ${now:...} resolved twice may read two seconds.
    master = sweeps_hydra.compose_config(
        "config", [f"paths.output_dir={tmp_path}", "sweep=smoke",
                   "hydra.job.config.override_dirname.exclude_keys=[train.epochs]",
                   f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep"],
        run_mode=RunMode.MULTIRUN)
    ctx = HydraContext(config_loader=sweeps_hydra.config_loader, callbacks=None)
    composer = _compose.SweepComposer(ctx, master)
    for num, ov in enumerate(JOBS):
        fast = composer.compose(ov, num)
        real = sweeps_hydra.config_loader.load_sweep_config(master, ov)
        real.hydra.job.id = real.hydra.job.num = num
        assert OmegaConf.to_container(fast) == OmegaConf.to_container(real), ov
        for c in (fast, real):
            c.hydra.runtime.output_dir = "job"  # set by run_job; needed to resolve the rest
        assert OmegaConf.to_container(fast, resolve=True) == \
            OmegaConf.to_container(real, resolve=True)
        assert OmegaConf.is_struct(fast) and not OmegaConf.is_readonly(fast.hydra)
    assert composer.full == 5  # adam, poly, poly+rmsprop once each; the two odd jobs in full


def test_composer_rejects_what_hydra_rejects(sweeps_hydra, tmp_path):
    master = sweeps_hydra.compose_config("config", [f"paths.output_dir={tmp_path}"],
                                         run_mode=RunMode.MULTIRUN)
    composer = _compose.SweepComposer(HydraContext(sweeps_hydra.config_loader, None), master)
    with pytest.raises(Exception, match="optimizer.lr"):
        composer.compose(["optimizer.lr=fast"], 0)
    with pytest.raises(Exception, match="no_such_key"):
        composer.compose(["optimizer.no_such_key=1"], 0)


# --- the sweeps task, in process --------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating MLflow's tables takes seconds); each test
    writes its own experiment, named after the test."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    return uri


@pytest.fixture
def sweep(sweeps_hydra, store, tmp_path, request):
    """Run one multirun of the sweeps task with the vectorised launcher, as the CLI would
    (the parent run is closed afterwards, even when a job failed); returns its JobReturns."""
    experiment = request.node.name

    def _run(*overrides: str):
        error = None
        try:
            (returns,) = sweeps_hydra.multirun(
                config_name="config", task_function=app.run_job, with_log_configuration=False,
                overrides=["hydra/launcher=vectorized", "hydra.mode=MULTIRUN",
                           f"paths.output_dir={tmp_path}", f"tracking.uri={store}",
                           f"tracking.experiment={experiment}", *overrides])
            return returns
        except BaseException as err:
            error = err
            raise
        finally:
            callbacks.finish_open_sweeps(error)

    _run.children = lambda: _children(store, experiment)
    return _run


def _children(uri: str, experiment: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], "tags.`sweeps.role` = 'child'", max_results=1000)


@pytest.fixture
def launcher_log():
    """What the launcher logged. (Hydra reconfigures the root logger while it launches, which
    detaches pytest's caplog; a handler on the launcher's own logger stays.)"""
    records: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger(_core.__name__.rpartition(".")[0])  # the launcher package
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _spy_launch(monkeypatch) -> list:
    real_launch, launched = _core.launch, []

    def spy(*args, **kw):
        launched.extend(real_launch(*args, **kw))
        return launched

    monkeypatch.setattr(_core, "launch", spy)
    return launched


def test_failed_recording_fails_only_its_job(sweep, monkeypatch):
    """A job whose recording raises leaves the bulk path, runs through run_job, and is stored
    FAILED with its error; the other jobs are stored FINISHED, once each."""
    real_label = app.label

    def label(cfg, history):
        if cfg["optimizer"]["lr"] == 0.1:
            raise RuntimeError("labeller broke")
        return real_label(cfg, history)

    monkeypatch.setattr(app, "label", label)
    launched = _spy_launch(monkeypatch)
    with pytest.raises(RuntimeError, match="labeller broke"):  # the sweeper re-raises it
        sweep("optimizer.lr=0.01,0.1,1.0", "train.epochs=20")
    assert [r.status for r in launched] == \
        [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.COMPLETED]
    assert isinstance(launched[1]._return_value, RuntimeError)
    assert math.isfinite(launched[0].return_value) and launched[0].return_value > 0
    runs = {r.data.tags["sweeps.job_num"]: r for r in sweep.children()}
    assert sorted(runs) == ["0", "1", "2"]
    assert [runs[k].info.status for k in "012"] == ["FINISHED", "FAILED", "FINISHED"]
    assert runs["1"].data.tags["sweeps.error"] == "RuntimeError: labeller broke"


def test_a_failed_bulk_write_records_the_jobs_one_by_one(sweep, monkeypatch, launcher_log):
    from sweeps import tracking

    real, calls = tracking.finish_many, []

    def finish_many(uri, logs, status):
        calls.append(len(logs))
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return real(uri, logs, status)

    monkeypatch.setattr(tracking, "finish_many", finish_many)  # the bulk write
    monkeypatch.setattr(tracking.runs, "finish_many", finish_many)  # each run's own finish
    launched = _spy_launch(monkeypatch)
    sweep("optimizer.lr=0.01,0.1,1.0", "train.epochs=20")
    assert calls[0] == 3 and calls[1:] == [1, 1, 1]  # the bulk write, then one run each
    assert any("writing 3 runs at once failed (RuntimeError: disk full)" in m for m in launcher_log)
    assert [r.status for r in launched] == [JobStatus.COMPLETED] * 3
    runs = sweep.children()
    assert sorted(r.data.tags["sweeps.job_num"] for r in runs) == ["0", "1", "2"]
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_resume_skips_finished_jobs_without_training_them(sweep, launcher_log, tmp_path):
    sweep("optimizer.lr=0.01,0.1", "train.epochs=20", f"hydra.sweep.dir={tmp_path / 'first'}")
    first = {r.info.run_id for r in sweep.children()}
    launcher_log.clear()
    ret = sweep("optimizer.lr=0.01,0.1,0.3", "train.epochs=20",
                f"hydra.sweep.dir={tmp_path / 'second'}")
    text = "\n".join(launcher_log)
    assert "trained 1 jobs in 1 batched programs" in text and "2 finished before (resumed)" in text
    runs = sweep.children()
    assert len(runs) == 3 and first < {r.info.run_id for r in runs}
    assert [r.status for r in ret] == [JobStatus.COMPLETED] * 3
    final = {r.data.params["optimizer.lr"]: r.data.metrics["val_loss"] for r in runs}
    assert [r.return_value for r in ret] == \
        pytest.approx([final["0.01"], final["0.1"], final["0.3"]])


def test_jobs_the_engine_cannot_train_run_alone(sweep, launcher_log, monkeypatch):
    monkeypatch.setattr("sweeps.engine.MODELS", ("linear",))  # pretend poly is not supported
    ret = sweep("model=linear,poly", "train.epochs=10")
    assert any(m.startswith("#1 runs on its own (sequential loop): model.name='poly'")
               for m in launcher_log), launcher_log
    assert [r.status for r in ret] == [JobStatus.COMPLETED] * 2
    assert len(sweep.children()) == 2


# --- the real CLI: vectorised and basic launcher store the same sweep -----------------------------


GRID = ["-m", "optimizer=sgd,adam", "optimizer.lr=0.01,1.0", "train.zero_grad=true,false",
        "train.epochs=50"]
WHERE = ("hydra", "paths.", "tracking.")  # what differs between the two sweeps
LAUNCHER_INFO = "hydra.hydra_logging.handlers.console.level=INFO"  # the launcher's log lines


def _by_point(uri: str, experiment: str) -> dict:
    """Grid point (config hash) -> (child run, metric histories); checks the parent."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    (parent,) = client.search_runs([exp.experiment_id], "tags.`sweeps.role` = 'parent'")
    assert parent.info.status == "FINISHED"
    points = {}
    for r in _children(uri, experiment):
        assert r.info.status == "FINISHED"
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id
        hist = {k: [m.value for m in sorted(client.get_metric_history(r.info.run_id, k),
                                            key=lambda m: m.step)] for k in r.data.metrics}
        points[r.data.tags["sweeps.config_hash"]] = (r, hist)
    return points


def _where_free(items: dict) -> dict:
    return {k: v for k, v in items.items() if not k.startswith(WHERE) and "launcher" not in k}


def test_cli_sweep_stores_what_the_basic_launcher_stores(store, tmp_path):
    # Both sweeps at once (the store takes parallel writers): half the wall time on 2 cores.
    procs = {launcher: subprocess.Popen(
        [sys.executable, "-m", "sweeps", *GRID, f"hydra/launcher={launcher}", LAUNCHER_INFO,
         f"paths.output_dir={tmp_path / launcher}", f"tracking.uri={store}",
         f"tracking.experiment=cli-{launcher}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) for launcher in ("vectorized", "basic")}
    for launcher, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{launcher} exited {proc.returncode}:\n{out}"
        assert "8 finished, 0 failed" in out, out
        if launcher == "vectorized":  # the batched path ran, not the one-by-one fallback
            assert "trained 8 jobs in 2 batched programs" in out, out
    vec, basic = _by_point(store, "cli-vectorized"), _by_point(store, "cli-basic")
    assert len(vec) == 8 and vec.keys() == basic.keys()
    differ = {"mlflow.parentRunId", "sweeps.pid", "mlflow.note.content", "sweeps.overrides"}
    for point, (run, hist) in vec.items():
        ref_run, ref_hist = basic[point]
        tags, ref_tags = run.data.tags, ref_run.data.tags
        name = tags["mlflow.runName"]
        # a batched run says how its duration was measured; a run trained alone needs not
        assert "sweeps.batch" in tags and "sweeps.batch" not in ref_tags
        assert tags.keys() - {"sweeps.batch"} == ref_tags.keys()
        differ = differ | {"sweeps.batch"}
        assert {k: v for k, v in tags.items() if k not in differ} == \
            {k: v for k, v in ref_tags.items() if k not in differ}, name
        assert [o for o in tags["sweeps.overrides"].split() if not o.startswith(WHERE)] == \
            [o for o in ref_tags["sweeps.overrides"].split() if not o.startswith(WHERE)]
        assert _where_free(run.data.params) == _where_free(ref_run.data.params), name
        assert run.data.params.keys() == ref_run.data.params.keys()
        assert {k: len(v) for k, v in hist.items()} == {k: len(v) for k, v in ref_hist.items()}
        if tags["symptom"] in ("healthy", "stalled", "overfitting"):  # not chaotic: same numbers
            for k, v in hist.items():
                np.testing.assert_allclose(v, ref_hist[k], rtol=1e-4, atol=1e-7,
                                           err_msg=f"{name} {k}")

    # what run_job leaves in a job dir: the same .hydra/ files (as configs) and the job's log line
    dirs = {launcher: next((tmp_path / launcher / "sweeps" / "adhoc").glob("*/3")) for launcher in procs}
    files = {launcher: {f: OmegaConf.to_container(OmegaConf.load(d / ".hydra" / f))
                        for f in ("config.yaml", "hydra.yaml", "overrides.yaml")} for launcher, d in dirs.items()}
    for f in files.values():
        f["config.yaml"] = {k: v for k, v in f["config.yaml"].items() if k not in ("paths", "tracking")}
        f["overrides.yaml"] = [o for o in f["overrides.yaml"] if not o.startswith(WHERE)]
        h = f["hydra.yaml"]["hydra"]
        assert h["runtime"]["output_dir"].endswith("/3") and h["job"]["num"] == 3 and h["job"]["id"] == "3"
        for key in ("launcher", "overrides", "runtime"):
            h.pop(key)
        h["job"].pop("override_dirname")  # holds the paths, which differ
    assert files["vectorized"] == files["basic"]
    for d in dirs.values():
        log = (d / "cli.log").read_text()
        assert "[sweeps.app][INFO] - sgd lr=1 noise=0 zero_grad=off epochs=50 -> " in log, log
