"""The eleven task forms of the NST class (class_tasks/) and the spec's mains (examples/class_mains/).

Expected values come from the spec (method lists, return arities, messages,
print formats, layer names, the parameter count, shapes) or from NumPy
recomputations of the spec's formulas on the very tensors a main used (its
globals, returned by runpy).  The spec's printed costs depend on Keras'
ImageNet weights and the course's golden_gate.jpg and are not checked.
"""

import importlib
import inspect
import re
import runpy
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[2]
TASKS_DIR = ROOT / "class_tasks"
MAINS_DIR = ROOT / "examples" / "class_mains"
TASKS = list(range(11))
SMALL_SIDE = 64  # long side of the scaled images when the mains run small

# Public methods each task adds (the spec's task list); task 1 also brings
# the project's public helper `preprocess`.
ADDED = {0: {"scale_image"}, 1: {"load_model", "preprocess"}, 2: {"gram_matrix"}, 3: {"generate_features"},
         4: {"layer_style_cost"}, 5: {"style_cost"}, 6: {"content_cost"}, 7: {"total_cost"},
         8: {"compute_grads"}, 9: {"generate_image"}, 10: {"variational_cost"}}
LAYERS = ['block1_conv1', 'block1_conv2', 'block1_pool', 'block2_conv1', 'block2_conv2', 'block2_pool',
          'block3_conv1', 'block3_conv2', 'block3_conv3', 'block3_conv4', 'block3_pool',
          'block4_conv1', 'block4_conv2', 'block4_conv3', 'block4_conv4', 'block4_pool',
          'block5_conv1', 'block5_conv2']
NUMBER = r"(-?\d+(?:\.\d+)?(?:e[-+]\d+)?)"
SCALAR = re.compile(r"^tf\.Tensor\({}, shape=\(\), dtype=float32\)$".format(NUMBER))
PROGRESS_9 = re.compile(r"^Cost at iteration (\d+): {0}, content {0}, style {0}$".format(NUMBER))
PROGRESS_10 = re.compile(r"^Cost at iteration (\d+): {0}, content {0}, style {0}, var {0}$".format(NUMBER))


def file_name(task):
    return "100-neural_style" if task == 10 else "{}-neural_style".format(task)


@pytest.fixture
def on_task_path(monkeypatch):
    """class_tasks/ on sys.path (as the mains' folder would be) and the repository as working directory."""
    monkeypatch.syspath_prepend(str(TASKS_DIR))
    monkeypatch.chdir(ROOT)


@pytest.fixture
def small(monkeypatch, on_task_path):
    """Scale images to a 64-pixel long side instead of 512, in every task file (each has its own MAX_SIDE)."""
    for task in TASKS:
        monkeypatch.setattr(importlib.import_module(file_name(task)), "MAX_SIDE", SMALL_SIDE)


@pytest.fixture(scope="session")
def main_images(weights_path):
    """The spec's two images (the project's samples), fetched and hash-checked if missing."""
    from nst.io import images

    return [images.fetch_sample(name) for name in ("starry_night.jpg", "golden_gate.jpg")]


def read_pair(paths):
    from nst.io.images import read_rgb

    return [read_rgb(path) for path in paths]


def task_nst(task):
    return importlib.import_module(file_name(task)).NST


def run_main(task, capsys):
    """Run examples/class_mains/<task>-main.py as a script; its stdout lines and globals."""
    namespace = runpy.run_path(str(MAINS_DIR / "{}-main.py".format(task)), run_name="__main__")
    return capsys.readouterr().out.strip().splitlines(), namespace


def numbers(text):
    return [float(x) for x in re.findall(NUMBER, text)]


def gram(layer):
    """The spec's Gram matrix, in float64 NumPy: (1, h, w, c) -> (c, c), divided by h * w."""
    features = np.asarray(layer, np.float64).reshape(-1, layer.shape[-1])
    return features.T @ features / features.shape[0]


# --------------------------------------------------------------------------
# The task files

@pytest.mark.parametrize("task", TASKS)
def test_task_file_is_a_documented_executable_class_form(task, on_task_path):
    path = TASKS_DIR / (file_name(task) + ".py")
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env python3\n") and text.endswith("\n")
    assert path.stat().st_mode & 0o111
    module = importlib.import_module(file_name(task))
    NST = module.NST
    assert NST.__name__ == "NST" and NST.__module__ == file_name(task)
    assert module.__doc__ and NST.__doc__
    expected = set().union(*(ADDED[t] for t in range(task + 1)))
    public = {name for name, value in vars(NST).items()
              if not name.startswith("_") and (callable(value) or isinstance(value, staticmethod))}
    assert public == expected
    for name, value in vars(NST).items():
        if callable(value) or isinstance(value, staticmethod):
            assert getattr(NST, name).__doc__, name
    parameters = list(inspect.signature(NST.__init__).parameters)
    assert parameters[:5] == ["self", "style_image", "content_image", "alpha", "beta"]
    assert ("var" in parameters) == (task == 10)


def test_task_0_and_2_stop_before_the_model_or_features(on_task_path, small, main_images):
    style, content = read_pair(main_images)
    zero = task_nst(0)(style, content)
    assert not hasattr(zero, "model") and not hasattr(zero, "var")
    two = task_nst(2)(style, content)
    assert two.model.count_params() == 15304768 and not hasattr(two, "gram_style_features")
    with pytest.raises(TypeError):
        task_nst(9)(style, content, var=10)  # no var before task 10


def test_total_cost_arity_by_task(on_task_path, small, main_images):
    style, content = read_pair(main_images)
    seven = task_nst(7)(style, content, alpha=2, beta=3)
    image = tf.clip_by_value(seven.content_image + 0.1, 0, 1)
    J, J_content, J_style = seven.total_cost(image)
    assert float(J) == pytest.approx(2 * float(J_content) + 3 * float(J_style), rel=1e-6)
    ten = task_nst(10)(style, content, alpha=2, beta=3, var=0.5)
    J10, J10_content, J10_style, J_var = ten.total_cost(image)
    assert float(J10_content) == pytest.approx(float(J_content), rel=1e-6)
    assert float(J10) == pytest.approx(float(J) + 0.5 * float(J_var), rel=1e-6)
    for nst in (task_nst(8)(style, content), ten):
        assert len(nst.compute_grads(tf.Variable(nst.content_image))) == 4


@pytest.mark.parametrize("task, message", [(9, "step must be positive and less than iterations"),
                                           (10, "iterations must be positive and less than iterations")])
def test_step_message_by_task(task, message, on_task_path, small, main_images):
    style, content = read_pair(main_images)
    nst = task_nst(task)(style, content)
    for step in (0, 5, 6):
        with pytest.raises(ValueError, match="^{}$".format(message)):
            nst.generate_image(iterations=5, step=step)


# --------------------------------------------------------------------------
# The spec's mains

def test_main_0(on_task_path, main_images, capsys):
    lines, _ = run_main(0, capsys)
    assert lines[:2] == ["['block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1', 'block5_conv1']",
                         "block5_conv2"]
    # The spec prints (1, 320, 512, 3) for starry_night.jpg; the sample golden_gate.jpg here is
    # 4:3 (the course's scaled to (1, 343, 512, 3)).
    assert re.fullmatch(r"<class '.*EagerTensor'> \(1, 320, 512, 3\) 0\.0 1\.0", lines[2])
    assert re.fullmatch(r"<class '.*EagerTensor'> \(1, 384, 512, 3\) 0\.0 1\.0", lines[3])
    assert lines[4:] == ["10000.0", "1", "True"]


def test_main_1(on_task_path, main_images, capsys):
    lines, namespace = run_main(1, capsys)
    summary = "\n".join(lines)
    assert 'Model: "model"' in summary
    positions = [summary.find(name + " (") for name in LAYERS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), positions
    assert re.search(r"Total params: 15,304,768\b", summary)
    assert re.search(r"Trainable params: 0\b", summary)
    assert re.search(r"Non-trainable params: 15,304,768\b", summary)


def test_main_2(on_task_path, capsys):
    lines, namespace = run_main(2, capsys)
    text = "\n".join(lines)
    assert text.startswith("tf.Tensor(\n[[[") and text.endswith("]]], shape=(1, 3, 3), dtype=float32)")
    printed = np.array(numbers(text.split("shape=")[0])).reshape(3, 3)
    np.testing.assert_allclose(printed, gram(namespace["input_layer"].numpy()), rtol=1e-5, atol=1e-6)


def test_main_3(on_task_path, small, main_images, capsys):
    lines, namespace = run_main(3, capsys)
    text = "\n".join(lines)
    # The list of Gram matrices (EagerTensor reprs), then the content feature (str of a tensor).
    assert re.findall(r"<tf\.Tensor: shape=\(([\d, ]+)\)", text) == [
        "1, 64, 64", "1, 128, 128", "1, 256, 256", "1, 512, 512", "1, 512, 512"]
    # golden_gate.jpg at 48x64 reaches block5_conv2 at 3x4.
    assert lines[-1].endswith("shape=(1, 3, 4, 512), dtype=float32)")


def test_main_4_and_5(on_task_path, small, main_images, capsys):
    lines, namespace = run_main(4, capsys)
    nst, outputs = namespace["nst"], namespace["outputs"]
    costs = [np.mean((gram(output.numpy()) - target.numpy()[0]) ** 2)
             for output, target in zip(outputs[:-1], nst.gram_style_features)]
    assert len(lines) == 1 and float(SCALAR.match(lines[0]).group(1)) == pytest.approx(costs[0], rel=1e-4)
    lines, _ = run_main(5, capsys)
    assert len(lines) == 1 and float(SCALAR.match(lines[0]).group(1)) == pytest.approx(np.mean(costs), rel=1e-4)


def test_main_6_and_7(on_task_path, small, main_images, capsys):
    lines, namespace = run_main(6, capsys)
    expected = np.mean((namespace["content_output"].numpy().astype(np.float64)
                        - namespace["nst"].content_feature.numpy()) ** 2)
    content = float(SCALAR.match(lines[0]).group(1))
    assert len(lines) == 1 and content > 0 and content == pytest.approx(expected, rel=1e-4)
    lines, namespace = run_main(7, capsys)
    J, J_content, J_style = (float(SCALAR.match(line).group(1)) for line in lines)
    assert J_content == pytest.approx(content, rel=1e-5)  # the same seeded noisy image
    assert J == pytest.approx(1e4 * J_content + 1 * J_style, rel=1e-5)


def test_main_8(on_task_path, small, main_images, capsys):
    lines, namespace = run_main(8, capsys)
    J, J_content, J_style = (float(SCALAR.match(line).group(1)) for line in lines[:3])
    assert J_content == 0.0 and J == pytest.approx(J_style, rel=1e-6) and J > 0
    assert lines[3] == "tf.Tensor(" and lines[-1].endswith("shape=(1, 48, 64, 3), dtype=float32)")
    assert np.abs(namespace["grads"].numpy()).max() > 0


@pytest.mark.parametrize("task, progress", [(9, PROGRESS_9), (10, PROGRESS_10)])
def test_main_9_and_10(task, progress, on_task_path, small, main_images, capsys, monkeypatch):
    monkeypatch.setenv("NST_MAIN_ITERATIONS", "3")
    lines, namespace = run_main(task, capsys)
    matches = [progress.match(line) for line in lines[:-1]]
    assert all(matches), lines
    assert [int(m.group(1)) for m in matches] == [0, 1, 2, 3]
    assert float(matches[0].group(3)) == 0.0  # iteration 0 is the content image
    totals = [float(m.group(2)) for m in matches]
    best = re.fullmatch(r"Best cost: {}".format(NUMBER), lines[-1])
    assert best and float(best.group(1)) == pytest.approx(min(totals), rel=1e-6)
    assert namespace["generated_image"].shape == (48, 64, 3)
