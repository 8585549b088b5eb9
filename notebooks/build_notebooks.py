"""Build the classroom notebook and its exercise version from the cells below.

    python notebooks/build_notebooks.py            # write both notebooks (no outputs)
    python notebooks/build_notebooks.py --execute  # ... then run the solution and store its outputs
    python notebooks/build_notebooks.py --check    # exit 1 if a committed notebook drifted from this file

The solution notebook is the list ``CELLS``.  The exercise notebook is derived
from it: inside every ``### START CODE HERE ###`` / ``### END CODE HERE ###``
block, each statement becomes a placeholder (``x = None``, or ``None`` for a
bare call) and comments stay, so the two cannot drift apart.  The exercise
notebook never carries outputs.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import sys
import textwrap
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # the checkout's nst package, when run as a script
    sys.path.insert(0, str(HERE.parent))

from nst.classroom import GRADED_COST_FUNCTIONS as GRADED_FUNCTIONS  # noqa: E402  (the cells tagged "graded")
NAME = "Art_Generation_with_Neural_Style_Transfer.ipynb"
SOLUTION = HERE / NAME
EXERCISE = HERE / "exercise" / NAME
ITERATIONS_ENV = "NST_NOTEBOOK_ITERATIONS"
OUTPUT_DIR_ENV = "NST_NOTEBOOK_OUTPUT_DIR"
START, END = "### START CODE HERE ###", "### END CODE HERE ###"

# (kind, source, tags, names of the diagrams the cell embeds as attachments)
CELLS: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = []


def md(text, *tags, diagrams=()):
    """A markdown cell; ``diagrams`` names nst.classroom.notebook_diagrams figures it shows as attachments."""
    source = textwrap.dedent(text).strip("\n")
    for name in diagrams:
        if f"(attachment:{name})" not in source:
            raise ValueError(f"markdown cell embeds {name} but does not show it")
    CELLS.append(("markdown", source, tags, tuple(diagrams)))


def code(text, *tags):
    CELLS.append(("code", textwrap.dedent(text).strip("\n"), tags, ()))


# ---------------------------------------------------------------------------
# The notebook, section by section (the assignment's order).

md("""
# Art Generation with Neural Style Transfer

In this notebook you paint a photograph in the manner of a painting. The method is
the one Gatys, Ecker and Bethge published in 2015
([A Neural Algorithm of Artistic Style](https://arxiv.org/abs/1508.06576)).

**You will:**
- write the cost functions that neural style transfer minimises, and
- use them to generate a new, stylised image.

There is one twist compared with most of the models you have trained so far: the
network's weights stay fixed. What gradient descent changes here are the **pixels**
of the image being generated.

This is the classroom version of the deeplearning.ai assignment, running on current
TensorFlow through its TF 1 interface (`tensorflow.compat.v1`). Each graded test cell
is followed by a check cell that compares what was printed with the assignment's
expected output.
""")

md("""
The notebook lives in `notebooks/`, but the assignment's paths (`images/`,
`pretrained-model/`, `output/`) are relative to the project's root folder. The next
cell therefore moves the working directory up to the folder that holds `nst_utils.py`,
wherever the notebook was opened from. It also quietens TensorFlow's start-up log
messages, which say nothing about the assignment.
""")

code("""
import os
import sys
from pathlib import Path

# Walk up from the notebook's folder to the project root (the folder holding nst_utils.py).
project_root = Path.cwd()
while not (project_root / "nst_utils.py").exists() and project_root != project_root.parent:
    project_root = project_root.parent
os.chdir(project_root)
if str(project_root) not in sys.path:
    sys.path.insert(0, str(project_root))
# Keep TensorFlow's C++ start-up messages (information and warnings) out of the cells below
if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
print("Working directory: the project root (the folder holding nst_utils.py)")
""")

md("""
The imports. The course imported `scipy.misc` to read images and `tensorflow` as `tf`;
`scipy.misc.imread` no longer exists, so images are read with `load_image` from
`nst_utils` (it also crops any picture's centre to 4:3 and resizes it to 400x300), and
`tf` is TensorFlow's TF 1
interface, `tensorflow.compat.v1`. Importing `nst_utils` switches TensorFlow to graph
mode, the way TF 1 worked, so sessions and `tf.train.AdamOptimizer` behave as the
course describes.
""")

code("""
import time

import matplotlib.pyplot as plt
from matplotlib.pyplot import imshow
import numpy as np
import tensorflow.compat.v1 as tf

from nst_utils import *
from nst.notebook_helpers import (check_printed, check_printed_matrix, contact_sheet, displayable,
                                  pick_image_pair, plot_costs, show_side_by_side)

%matplotlib inline
# JPEG figures keep the saved notebook small (its photos would weigh several MB as PNG)
%config InlineBackend.figure_formats = ["jpeg"]
""")

md("""
## 1 - Problem statement

Neural style transfer (NST) takes two pictures, a **content** image C and a **style**
image S, and produces a third, the **generated** image G, that shows what C shows
but looks as if it had been painted the way S was painted.

The course paired a photograph of the Louvre in Paris with a painting by Claude Monet.
Those two files are not distributed with this project, so unless you add them to
`images/` (as `louvre_small.jpg` and `monet.jpg`) the notebook uses a sample pair
instead: a street of old houses in Tübingen as the content and Van Gogh's *The Starry
Night* as the style. A cell further down tells you which pair it picked.

Here is the idea on toy pictures (drawn for this notebook): the generated image keeps
the house of the photograph and takes the colours and brush strokes of the painting.

![A toy photograph of a house, plus a toy painting of blue and yellow swirls, gives the house painted in swirls](attachment:content_style_generated.png)
""", diagrams=("content_style_generated.png",))

md("""
## 2 - Transfer learning

NST does not train a network of its own. It borrows one that was trained for
something else, image classification, and uses what that network has learned about
images; reusing a network this way is called transfer learning.

As in the original paper, the network is VGG-19, a 19-layer convolutional network
trained on ImageNet. Its first layers respond to simple things such as edges and
colour blobs; deeper layers respond to textures, parts of objects and whole objects.

The next cell builds VGG-19 in TensorFlow and loads its weights. `load_vgg_model`
returns a Python dictionary: the key `'input'` is a TensorFlow variable that holds the
image fed to the network, and every other key names a layer (`'conv4_2'`,
`'avgpool3'`, ...) whose value is the tensor of that layer's activations.

About the weights: the course used MatConvNet's `imagenet-vgg-verydeep-19.mat`. If you
put that file in `pretrained-model/`, it is used. Otherwise the project uses a
converted copy of the *normalised* VGG-19 of Gatys et al. (2016), the same
architecture with rescaled filters, printed below as `CONFIG.VGG_MODEL`.

The weights enter the graph as constants: only the input variable receives a gradient,
so no kernel ever changes, and training changes nothing but the pixels of the image.
""")

code("""
print("Weights:", os.path.relpath(CONFIG.VGG_MODEL))
model = load_vgg_model(CONFIG.VGG_MODEL)
print(model)
""")

md("""
To run an image through the network, assign it to the input variable:

```python
model["input"].assign(image)
```

and then evaluate the layer you want in a session, for example the activations of
layer `conv4_2`:

```python
sess.run(model["conv4_2"])
```
""")

md("""
## 3 - Neural style transfer

The algorithm is built in three steps:

- a content cost $J_{content}(C,G)$,
- a style cost $J_{style}(S,G)$,
- and their weighted sum, $J(G) = \\alpha J_{content}(C,G) + \\beta J_{style}(S,G)$, which is minimised.

### Running TensorFlow 1 test cells on TensorFlow 2

The test cells below are the course's. They fix TensorFlow's random seed with
`tf.set_random_seed(1)` and then draw random tensors, so that everybody's function
receives the same numbers. TensorFlow 1 and TensorFlow 2 turn that one seed into the
per-operation seeds in different ways, so the same cell run on TensorFlow 2 draws
different numbers and prints, for example, `J_content = 7.641...` instead of the
expected `6.76559`. Your function would be right, but the numbers would not be
comparable.

`enable_course_compat()` puts TensorFlow 1's rule back for this notebook, and also
NumPy's old way of printing numbers (NumPy 1.13), which is the format of the expected
outputs. It changes nothing in how your functions compute, only which random numbers
the test cells draw and how results are printed. The README section "The course's
expected outputs on TensorFlow 2" has the details.
""")

code("""
from nst.tf1_compat import enable_course_compat

enable_course_compat()
""")

md("""
### 3.1 - Computing the content cost

First, the content image. The next cell picks the image pair (see section 1) and
shows the content image. `load_image` first crops the centre of each picture to the
4:3 shape of 400x300 (The Starry Night, at 16:10, loses a strip at each side rather
than being squeezed), then resizes it.
""")

code("""
content_path, style_path = pick_image_pair()
# load_image crops the centre to 4:3 (a wider or taller picture is trimmed, not squeezed),
# then resizes to 400x300
content_image = load_image(content_path)
imshow(content_image);
""")

md("""
#### 3.1.1 - Making the generated image G keep the content of C

Shallow layers of a convolutional network pick up low-level features (edges,
simple textures); deep layers pick up high-level ones (complex textures, object
parts, whole objects). To describe *what is in* an image we use one layer's
activations. A layer in the middle of the network works best in practice: shallow
enough to keep the layout, deep enough to ignore exact pixel values. (Once you are
done, try other layers and compare the results.)

Feed C through VGG-19 and call the chosen layer's activations $a^{(C)}$, a volume of
shape $n_H \\times n_W \\times n_C$. Do the same with G to get $a^{(G)}$. The content cost
is

$$J_{content}(C,G) = \\frac{1}{4 \\times n_H \\times n_W \\times n_C}\\sum_{\\text{all entries}} (a^{(C)} - a^{(G)})^2 \\tag{1}$$

where $n_H$, $n_W$ and $n_C$ are the height, width and number of channels of that
layer.

**Unrolling.** It helps to flatten each volume into a matrix with one row per channel
and one column per position: shape $(n_C, n_H \\times n_W)$. The activations arrive as
`(1, n_H, n_W, n_C)`, channels last, so reshape them to `(n_H * n_W, n_C)` first and
*then* transpose. (Reshaping straight to `(n_C, n_H * n_W)` keeps the numbers but puts
them in the wrong places: each row would mix channels.) For the content cost the
unrolling does not change the result, since it is a sum over all entries, but the
style cost below needs it done right, so practise it here.

![A 3 by 4 by 4 activation volume unrolled into a 4 by 12 matrix: one row per channel, one column per position](attachment:unrolling.png)

**Exercise:** implement `compute_content_cost` with TensorFlow.

1. Get the dimensions from `a_G` with `a_G.get_shape().as_list()`.
2. Unroll `a_C` and `a_G` (`tf.reshape`, `tf.transpose`).
3. Compute equation (1) (`tf.reduce_sum`, `tf.square`, `tf.subtract`).
""", diagrams=("unrolling.png",))

code('''
# GRADED FUNCTION: compute_content_cost

def compute_content_cost(a_C, a_G):
    """
    Content cost between two activation volumes of the same layer (equation 1).

    Arguments:
    a_C -- tensor of shape (1, n_H, n_W, n_C), the layer's activations for the content image C
    a_G -- tensor of shape (1, n_H, n_W, n_C), the same layer's activations for the generated image G

    Returns:
    J_content -- scalar tensor, equation (1)
    """
    ### START CODE HERE ###
    # Dimensions of the layer, read from a_G (about 1 line)
    m, n_H, n_W, n_C = a_G.get_shape().as_list()

    # Unroll both volumes to (n_C, n_H*n_W): reshape to (n_H*n_W, n_C), then transpose (about 2 lines)
    a_C_unrolled = tf.transpose(tf.reshape(a_C, [n_H * n_W, n_C]))
    a_G_unrolled = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))

    # Sum of the squared differences, divided by 4 n_H n_W n_C (about 1 line)
    J_content = tf.reduce_sum(tf.square(tf.subtract(a_C_unrolled, a_G_unrolled))) / (4 * n_H * n_W * n_C)
    ### END CODE HERE ###

    return J_content
''', "graded")

code("""
tf.reset_default_graph()

with tf.Session() as test:
    tf.set_random_seed(1)
    a_C = tf.random_normal([1, 4, 4, 3], mean=1, stddev=4)
    a_G = tf.random_normal([1, 4, 4, 3], mean=1, stddev=4)
    J_content = compute_content_cost(a_C, a_G)
    printed_content = "J_content = " + str(J_content.eval())
    print(printed_content)
""", "test")

md("""
**Expected output**

| | |
|---|---|
| **J_content** | 6.76559 |

The next cell compares the line printed above with it.
""")

code("""
check_printed(printed_content, "J_content = 6.76559");
""", "check")

md("""
**Remember:**
- The content cost compares one hidden layer's activations for C and for G.
- Minimising it keeps what is in G close to what is in C.
""")

md("""
### 3.2 - Computing the style cost

The style image:
""")

code("""
style_image = load_image(style_path)
imshow(style_image);
""")

md("""
#### 3.2.1 - Style matrix

The style of an image is captured by a **Gram matrix**, also called the style matrix.
For vectors $v_1, \\dots, v_n$, the Gram matrix holds all their dot products:
$G_{ij} = v_i^T v_j$. A large $G_{ij}$ means $v_i$ and $v_j$ point the same way.

A word on names: $G$ is used both for the generated image and for a Gram matrix;
which one is meant should be clear from the context (the code says `GA`, `GS`, `GG`
for Gram matrices).

Take a layer's unrolled activations, the $(n_C, n_H \\times n_W)$ matrix of section
3.1.1: row $i$ is where, and how strongly, filter $i$ responds across the image. Multiply
the matrix by its own transpose and you get an $(n_C, n_C)$ matrix:

- off the diagonal, $G_{ij}$ is large when filters $i$ and $j$ tend to fire at the same
  places, that is, when two features occur together;
- on the diagonal, $G_{ii}$ says how active filter $i$ is over the whole image; if
  filter $i$ detects, say, vertical strokes, a large $G_{ii}$ means the image has many.

Features and how they co-occur, regardless of where: that is what we mean by style.

![The unrolled matrix A times its transpose gives the n_C by n_C Gram matrix; entry (2, 4) is the dot product of rows 2 and 4 of A](attachment:gram_matrix.png)

**Exercise:** implement `gram_matrix`: for a matrix $A$, $G_A = A A^T$ (`tf.matmul`,
`tf.transpose`).
""", diagrams=("gram_matrix.png",))

code('''
# GRADED FUNCTION: gram_matrix

def gram_matrix(A):
    """
    Argument:
    A -- matrix of shape (n_C, n_H*n_W)

    Returns:
    GA -- Gram matrix of A, of shape (n_C, n_C)
    """
    ### START CODE HERE ### (about 1 line)
    GA = tf.matmul(A, tf.transpose(A))
    ### END CODE HERE ###

    return GA
''', "graded")

code("""
tf.reset_default_graph()

with tf.Session() as test:
    tf.set_random_seed(1)
    A = tf.random_normal([3, 2*1], mean=1, stddev=4)
    GA = gram_matrix(A)
    printed_gram = "GA = " + str(GA.eval())
    print(printed_gram)
""", "test")

md("""
**Expected output**

| | |
|---|---|
| **GA** | [[  6.42230511  -4.42912197  -2.09668207]<br> [ -4.42912197  19.46583748  19.56387138]<br> [ -2.09668207  19.56387138  20.6864624 ]] |

The course printed these float32 numbers with 8 decimals, a little more than float32
can hold, in NumPy 1.13's layout (note `20.6864624 ]]`: that NumPy showed an entry's
trailing zeros as spaces), which this notebook reproduces. Six of the nine printed
entries agree to the last decimal; the last digits of the other three (6.42..., and
-2.09... twice) depend on how the computer's matrix product rounds its last bit, so
they are not one fixed value: on the machine that ran this notebook they read
6.42230558 and -2.09668159, one or two float32 steps (ulps) from the course's. So the
check below compares the layout exactly and the numbers within 5e-7, and says so
rather than pretending to an exact match.
""")

code("""
check_printed_matrix(printed_gram);
""", "check")

md("""
#### 3.2.2 - Style cost

The aim is to make the Gram matrix of G look like the Gram matrix of S. For one hidden
layer $a^{[l]}$, the style cost is

$$J_{style}^{[l]}(S,G) = \\frac{1}{4 \\times {n_C}^2 \\times (n_H \\times n_W)^2} \\sum_{i=1}^{n_C}\\sum_{j=1}^{n_C}\\left(G^{(S)}_{ij} - G^{(G)}_{ij}\\right)^2 \\tag{2}$$

where $G^{(S)}$ and $G^{(G)}$ are the Gram matrices of that layer's activations for
the style image and for the generated image.

**Exercise:** implement `compute_layer_style_cost`.

1. Get the dimensions from `a_G` (`a_G.get_shape().as_list()`).
2. Unroll `a_S` and `a_G` to $(n_C, n_H \\times n_W)$. Here the order matters: reshape
   to `(n_H * n_W, n_C)`, then transpose.
3. Compute both Gram matrices with your `gram_matrix`.
4. Compute equation (2). Watch the normalisation: $n_C$ and $n_H \\times n_W$ are both
   squared, and there is a 4.
""")

code('''
# GRADED FUNCTION: compute_layer_style_cost

def compute_layer_style_cost(a_S, a_G):
    """
    Style cost of one layer (equation 2).

    Arguments:
    a_S -- tensor of shape (1, n_H, n_W, n_C), the layer's activations for the style image S
    a_G -- tensor of shape (1, n_H, n_W, n_C), the same layer's activations for the generated image G

    Returns:
    J_style_layer -- scalar tensor, equation (2)
    """
    ### START CODE HERE ###
    # Dimensions of the layer, read from a_G (about 1 line)
    m, n_H, n_W, n_C = a_G.get_shape().as_list()

    # Unroll to (n_C, n_H*n_W): reshape to (n_H*n_W, n_C), then transpose (about 2 lines)
    a_S = tf.transpose(tf.reshape(a_S, [n_H * n_W, n_C]))
    a_G = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))

    # Gram matrices of S and of G (about 2 lines)
    GS = gram_matrix(a_S)
    GG = gram_matrix(a_G)

    # Sum of squared differences, divided by 4 n_C^2 (n_H n_W)^2 (about 1 line)
    J_style_layer = tf.reduce_sum(tf.square(tf.subtract(GS, GG))) / (4 * n_C ** 2 * (n_H * n_W) ** 2)
    ### END CODE HERE ###

    return J_style_layer
''', "graded")

code("""
tf.reset_default_graph()

with tf.Session() as test:
    tf.set_random_seed(1)
    a_S = tf.random_normal([1, 4, 4, 3], mean=1, stddev=4)
    a_G = tf.random_normal([1, 4, 4, 3], mean=1, stddev=4)
    J_style_layer = compute_layer_style_cost(a_S, a_G)
    printed_style_layer = "J_style_layer = " + str(J_style_layer.eval())
    print(printed_style_layer)
""", "test")

md("""
**Expected output**

| | |
|---|---|
| **J_style_layer** | 9.19028 |
""")

code("""
check_printed(printed_style_layer, "J_style_layer = 9.19028");
""", "check")

md("""
#### 3.2.3 - Style weights

One layer gives one view of style. Combining several layers, shallow and deep, gives
better results: shallow layers contribute colours and fine texture, deep layers larger
patterns. Each layer gets a weight $\\lambda^{[l]}$:
""")

code("""
STYLE_LAYERS = [
    ('conv1_1', 0.2),
    ('conv2_1', 0.2),
    ('conv3_1', 0.2),
    ('conv4_1', 0.2),
    ('conv5_1', 0.2)]
""")

md("""
The style cost of the whole network is the weighted sum of the layer costs:

$$J_{style}(S,G) = \\sum_{l} \\lambda^{[l]} J^{[l]}_{style}(S,G)$$

The function below is given (not graded). It expects the style image to be assigned
to `model['input']` already: for each layer it evaluates the style activations once
(they become constants), takes the generated image's activations as the tensor
`model[layer_name]` (re-evaluated at every optimisation step), and adds up the
weighted layer costs. It uses the session `sess` that section 4 opens.
""")

code('''
def compute_style_cost(model, STYLE_LAYERS):
    """
    Weighted sum of the style costs of several layers.

    Arguments:
    model -- the VGG-19 dictionary from load_vgg_model
    STYLE_LAYERS -- list of (layer name, weight)

    Returns:
    J_style -- scalar tensor
    """
    J_style = 0

    for layer_name, coeff in STYLE_LAYERS:
        # This layer's output tensor
        out = model[layer_name]

        # The style image is the current input: its activations, evaluated now, are a constant
        a_S = sess.run(out)

        # The generated image's activations: the same tensor, evaluated later with G as input
        a_G = out

        # Add this layer's weighted cost
        J_style += coeff * compute_layer_style_cost(a_S, a_G)

    return J_style
''')

md("""
**Remember:**
- A Gram matrix of a layer's activations describes style: which features occur and
  which occur together.
- Using several layers, weighted, gives better results than one.
- Minimising the style cost makes G's Gram matrices look like S's.
""")

md("""
### 3.3 - Total cost

Put the two together:

$$J(G) = \\alpha J_{content}(C,G) + \\beta J_{style}(S,G)$$

**Exercise:** implement `total_cost`, with $\\alpha$ and $\\beta$ as arguments that
default to 10 and 40.
""")

code('''
# GRADED FUNCTION: total_cost

def total_cost(J_content, J_style, alpha = 10, beta = 40):
    """
    Total cost.

    Arguments:
    J_content -- content cost (equation 1)
    J_style -- style cost
    alpha -- weight of the content cost
    beta -- weight of the style cost

    Returns:
    J -- alpha * J_content + beta * J_style
    """
    ### START CODE HERE ### (about 1 line)
    J = alpha * J_content + beta * J_style
    ### END CODE HERE ###

    return J
''', "graded")

code("""
tf.reset_default_graph()

with tf.Session() as test:
    np.random.seed(3)
    J_content = np.random.randn()
    J_style = np.random.randn()
    J = total_cost(J_content, J_style)
    printed_total = "J = " + str(J)
    print(printed_total)
""", "test")

md("""
**Expected output**

| | |
|---|---|
| **J** | 35.34667875478276 |
""")

code("""
check_printed(printed_total, "J = 35.34667875478276");
""", "check")

md("""
**Remember:**
- The total cost is a weighted sum of the content cost and the style cost.
- $\\alpha$ and $\\beta$ set how much content and how much style you get.
""")

md("""
## 4 - Solving the optimisation problem

Everything comes together here:

1. open an interactive session;
2. load the content image;
3. load the style image;
4. start the generated image from noise;
5. load VGG-19;
6. build the graph: the content cost (content image through the network), the style
   cost (style image through the network), the total cost, and an optimiser with its
   learning rate;
7. initialise the graph and run the optimiser for many iterations, updating the
   generated image each time.

An **interactive session** makes itself the default session as soon as it is created,
so tensors can be evaluated without naming the session each time. Start from an empty
graph:
""")

code("""
# Start from an empty graph
tf.reset_default_graph()

# Open the interactive session
sess = tf.InteractiveSession()
""")

md("""
Load the content image, give it a batch dimension and subtract VGG's mean pixel
(`reshape_and_normalize_image`); `load_image` resizes it to 400x300 first, the size
the network is built for.
""")

code("""
content_image = reshape_and_normalize_image(load_image(content_path))
print("content image:", os.path.basename(content_path), content_image.shape)
""")

md("""
The style image, the same way:
""")

code("""
style_image = reshape_and_normalize_image(load_image(style_path))
print("style image:", os.path.basename(style_path), style_image.shape)
""")

md("""
The generated image starts as mostly noise with a little of the content image mixed
in (`generate_noise_image`, 60% noise by default). Starting close to the content makes
the content emerge quickly. (`nst_utils.py` has the details.)
""")

code("""
generated_image = generate_noise_image(content_image)
imshow(displayable(generated_image));
""")

md("""
Load VGG-19 again, now in the session's fresh graph:
""")

code("""
model = load_vgg_model(CONFIG.VGG_MODEL)
""")

md("""
The content cost uses layer `conv4_2`. The next cell:

1. assigns the content image to the network's input;
2. takes `out = model['conv4_2']`;
3. evaluates it now: `a_C`, the content image's activations, a NumPy array;
4. keeps the tensor itself as `a_G`: it is evaluated later, at every step, with the
   generated image as input;
5. builds the content cost from the two.
""")

code("""
# Feed the content image to the network
sess.run(model['input'].assign(content_image))

# The layer used for content
out = model['conv4_2']

# Its activations for the content image: fixed numbers from now on
a_C = sess.run(out)

# The same layer as a tensor: evaluated at every step, with the generated image as input
a_G = out

# The content cost
J_content = compute_content_cost(a_C, a_G)
""")

md("""
`a_G` is still an unevaluated tensor here; `model_nn` below evaluates it at every
iteration. Now the style cost, with the style image as input:
""")

code("""
# Feed the style image to the network
sess.run(model['input'].assign(style_image))

# The style cost over STYLE_LAYERS
J_style = compute_style_cost(model, STYLE_LAYERS)
""")

md("""
**Exercise:** compute the total cost `J` with `total_cost`, using `alpha = 10` and
`beta = 40`.
""")

code("""
### START CODE HERE ### (1 line)
J = total_cost(J_content, J_style, alpha = 10, beta = 40)
### END CODE HERE ###
""")

md("""
The optimiser: Adam with a learning rate of 2.0, minimising `J`. Its only trainable
variable is the network's input, so each step changes the pixels of the generated
image.
""")

code("""
# The optimiser (1 line)
optimizer = tf.train.AdamOptimizer(2.0)

# One training step (1 line)
train_step = optimizer.minimize(J)
""")

md(f"""
**Exercise:** implement `model_nn`. It initialises the graph's variables, assigns the
noisy image to the network's input, and runs `train_step` `num_iterations` times. Like
the course's version it reads `model`, `train_step`, `J`, `J_content` and `J_style`
from the notebook. Every 20 iterations it prints the three costs and saves the current
image as `output/<iteration>.png`; at the end it saves `output/generated_image.jpg`
and returns the final image, read back from `model['input']`.

It also keeps the printed costs in `cost_history` and the saved files in
`saved_images`, for the figures below. (`OUTPUT_DIR` is `output` unless the environment
variable `{OUTPUT_DIR_ENV}` names another folder; the automated test uses that to keep
its images apart.)
""")

code(f"""
OUTPUT_DIR = os.environ.get("{OUTPUT_DIR_ENV}", "output")
""")

code('''
def model_nn(sess, input_image, num_iterations = 200):
    global cost_history, saved_images
    cost_history = []   # (iteration, total cost, content cost, style cost) at every print
    saved_images = []   # (label, file) of every saved image
    os.makedirs(OUTPUT_DIR, exist_ok=True)

    # Initialise the graph's variables (run the initialiser in the session)
    ### START CODE HERE ### (1 line)
    sess.run(tf.global_variables_initializer())
    ### END CODE HERE ###

    # Put the noisy starting image into the network's input with assign()
    ### START CODE HERE ### (1 line)
    sess.run(model['input'].assign(input_image))
    ### END CODE HERE ###

    for i in range(num_iterations):

        # One optimisation step on the total cost
        ### START CODE HERE ### (1 line)
        sess.run(train_step)
        ### END CODE HERE ###

        # The generated image so far: the current value of model['input']
        ### START CODE HERE ### (1 line)
        generated_image = sess.run(model['input'])
        ### END CODE HERE ###

        # Report every 20 iterations
        if i % 20 == 0:
            Jt, Jc, Js = sess.run([J, J_content, J_style])
            print("Iteration " + str(i) + " :")
            print("total cost = " + str(Jt))
            print("content cost = " + str(Jc))
            print("style cost = " + str(Js))
            cost_history.append((i, Jt, Jc, Js))

            # Save the current image in the output folder
            path = os.path.join(OUTPUT_DIR, str(i) + ".png")
            save_image(path, generated_image)
            saved_images.append(("iteration " + str(i), path))

    # Save the final image
    path = os.path.join(OUTPUT_DIR, "generated_image.jpg")
    save_image(path, generated_image)
    saved_images.append(("final (" + str(num_iterations) + " iterations)", path))

    return generated_image
''')

md(f"""
Run the next cell to generate the image. The course ran 200 iterations and warned of
about 3 minutes per 20 iterations on a CPU; on a two-core laptop expect a few seconds
per iteration. The number of iterations is 200 unless the environment variable
`{ITERATIONS_ENV}` says otherwise (the automated test runs the whole notebook with a
short run that way; leave it unset in class).
""")

code(f"""
num_iterations = int(os.environ.get("{ITERATIONS_ENV}", "200"))

start = time.time()
generated_image = model_nn(sess, generated_image, num_iterations)
seconds = time.time() - start
print("{{}} iterations in {{:.0f}} s ({{:.2f}} s per iteration)".format(num_iterations, seconds, seconds / num_iterations))
""", "model_nn_call")

md("""
**Expected output, and why it cannot match here**

The course expects its first report to read `total cost = 5.05035e+09`,
`content cost = 7877.67`, `style cost = 1.26257e+08`. Those numbers depend on three
things this notebook does not have: MatConvNet's VGG-19 weights, the Louvre and Monet
images, and the random noise image. With the normalised VGG-19 (used unless you add
the official file), every filter's activations are scaled to about 1 on average, so
all the costs are many orders of magnitude smaller: the total starts somewhere around
40, not 5e9. The numbers printed above therefore cannot be compared with the course's;
what should agree is their behaviour: the total cost falls fast during the first
iterations and then more slowly. The plot further down shows all three costs.
""")

md("""
### The result

Content, style and the generated image side by side:
""")

code("""
show_side_by_side([load_image(content_path), load_image(style_path), generated_image],
                  ["content: " + os.path.basename(content_path),
                   "style: " + os.path.basename(style_path),
                   "generated ({} iterations)".format(num_iterations)]);
""")

md("""
The images `model_nn` saved every 20 iterations (they are in the output folder too),
so you can watch the style take over:
""")

code("""
contact_sheet(saved_images);
""")

md("""
The three costs at every report, on a logarithmic scale:
""")

code("""
plot_costs(cost_history);
""")

md("""
The course used settings that give a first result quickly. For better-looking images,
run longer, perhaps with a smaller learning rate. Once you are done with the
assignment, come back and experiment.
""")

md("""
## 5 - Test with your own images (optional, ungraded)

You can run the algorithm on your own pictures:

1. Copy them into the `images/` folder of the project (any size: `load_image` crops
   their centre to 4:3 and resizes them to 400x300).
2. In section 4, replace the paths before loading the images, for example
   ```python
   content_path = "images/my_content.jpg"
   style_path = "images/my_style.jpg"
   ```
3. Run section 4 again from `tf.reset_default_graph()` (or restart the kernel and run
   all cells).

Other things to try:
- which layers carry the style, and with which weights (`STYLE_LAYERS`);
- the number of iterations (`num_iterations`);
- the balance between content and style (`alpha` and `beta`);
- another image size: set `CONFIG.IMAGE_WIDTH` and `CONFIG.IMAGE_HEIGHT` before
  `load_vgg_model` and pass the same size to `load_image`.
""")

md("""
## 6 - Conclusion

You have built neural style transfer and used it to make a picture. This was also a
model in which optimisation updates an image's pixels instead of a network's
parameters.

**What to remember:**
- Neural style transfer combines a content image C and a style image S into a new,
  artistic image G.
- It works with the hidden-layer activations of a pretrained convolutional network.
- The content cost uses one hidden layer's activations.
- The style cost of one layer compares Gram matrices of that layer's activations; the
  overall style cost is a weighted sum over several layers.
- Minimising the total cost over the pixels produces the new image.
""")

md("""
## References

- Leon A. Gatys, Alexander S. Ecker, Matthias Bethge (2015). A Neural Algorithm of
  Artistic Style. https://arxiv.org/abs/1508.06576
- Leon A. Gatys, Alexander S. Ecker, Matthias Bethge (2016). Image Style Transfer Using
  Convolutional Neural Networks. CVPR 2016 (the normalised VGG-19 used here).
- Karen Simonyan, Andrew Zisserman (2015). Very Deep Convolutional Networks for
  Large-Scale Image Recognition. https://arxiv.org/abs/1409.1556
- MatConvNet pretrained models (VLFeat). https://www.vlfeat.org/matconvnet/pretrained/
- Harish Narayanan, Convolutional neural networks for artistic style transfer.
  https://harishnarayanan.org/writing/artistic-style-transfer/
- deeplearning.ai, Convolutional Neural Networks, week 4 assignment "Art Generation
  with Neural Style Transfer" (the structure this notebook follows; the text and code
  here are this project's own).
""")


# ---------------------------------------------------------------------------
# Building

def placeholder_line(line: str) -> str:
    """One statement of a solution block -> its exercise placeholder."""
    indent = line[: len(line) - len(line.lstrip())]
    statement = ast.parse(line.strip()).body
    if len(statement) != 1:
        raise ValueError(f"one statement per line inside START/END blocks, got: {line!r}")
    node = statement[0]
    if isinstance(node, ast.Assign):
        targets = " = ".join(ast.get_source_segment(line.strip(), t) for t in node.targets)
        return f"{indent}{targets} = None"
    return f"{indent}None"


def exercise_source(source: str) -> str:
    """Replace the statements inside every START/END block by placeholders; keep comments and blank lines."""
    lines, inside = [], False
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped.startswith(START):
            inside = True
        elif stripped.startswith(END):
            inside = False
        elif inside and stripped and not stripped.startswith("#"):
            line = placeholder_line(line)
        lines.append(line)
    if inside:
        raise ValueError("unterminated START CODE HERE block")
    return "\n".join(lines)


_DIAGRAMS: dict[str, str] = {}


def diagrams() -> dict[str, str]:
    """The notebook's diagrams (nst.classroom.notebook_diagrams), base64 PNG by attachment name, drawn once."""
    if not _DIAGRAMS:
        import base64

        from nst.classroom.notebook_diagrams import render_all

        _DIAGRAMS.update({name: base64.b64encode(png).decode("ascii") for name, png in render_all().items()})
    return _DIAGRAMS


def _metadata():
    return {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }


def _check_graded_cells() -> None:
    """The cells tagged "graded" define the classroom's graded cost functions, in its order (the grader's list)."""
    names = [source.split("def ", 1)[1].split("(", 1)[0] for _kind, source, tags, _names in CELLS if "graded" in tags]
    if tuple(names) != GRADED_FUNCTIONS:
        raise ValueError(f"the graded cells define {names}, not nst.classroom's {list(GRADED_FUNCTIONS)}")


def build(exercise: bool = False) -> nbformat.NotebookNode:
    """The notebook (solution or exercise), without outputs; cell ids are stable."""
    _check_graded_cells()
    notebook = nbformat.v4.new_notebook(metadata=_metadata())
    pictures = diagrams()
    for index, (kind, source, tags, names) in enumerate(CELLS):
        cell_id = f"cell-{index:03d}"
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source, id=cell_id)
            if names:
                cell.attachments = {name: {"image/png": pictures[name]} for name in names}
        else:
            if exercise:
                source = exercise_source(source)
            cell = nbformat.v4.new_code_cell(source, id=cell_id)
        if tags:
            cell.metadata["tags"] = list(tags)
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


def dumps(notebook) -> str:
    text = nbformat.writes(notebook)
    return text if text.endswith("\n") else text + "\n"


def write(notebook, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".ipynb.part")
    temporary.write_text(dumps(notebook), encoding="utf-8")
    os.replace(temporary, path)


def execute(notebook, timeout: int = 3600, env: dict | None = None):
    """Run ``notebook`` in a fresh kernel from notebooks/ and return it with outputs."""
    from nbclient import NotebookClient

    notebook = copy.deepcopy(notebook)
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(HERE)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return notebook


def sources(notebook) -> list[tuple]:
    """Each cell's type, source and attachments (the diagrams): what the script decides."""
    return [(cell.cell_type, cell.source, cell.get("attachments")) for cell in notebook.cells]


def drift() -> list[str]:
    """Problems with the committed notebooks: empty when both agree with this script."""
    problems = []
    expected_exercise = dumps(build(exercise=True))
    if not EXERCISE.exists() or EXERCISE.read_text(encoding="utf-8") != expected_exercise:
        problems.append(f"{EXERCISE.relative_to(HERE.parent)} differs from the script's exercise notebook")
    if not SOLUTION.exists() or sources(nbformat.read(SOLUTION, as_version=4)) != sources(build()):
        problems.append(f"{SOLUTION.relative_to(HERE.parent)}'s cells differ from the script's")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--execute", action="store_true", help="run the solution notebook and store its outputs")
    parser.add_argument("--check", action="store_true", help="only check that the committed notebooks match")
    args = parser.parse_args(argv)
    if args.check:
        problems = drift()
        for problem in problems:
            print(problem, "- run python notebooks/build_notebooks.py", file=sys.stderr)
        return 1 if problems else 0
    write(build(exercise=True), EXERCISE)
    print("wrote", EXERCISE)
    solution = build()
    if args.execute:
        start = time.time()
        solution = execute(solution)
        print(f"executed the solution notebook in {time.time() - start:.0f} s")
    write(solution, SOLUTION)
    print("wrote", SOLUTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
