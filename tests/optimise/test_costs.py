"""Cost functions against NumPy formulas, and the hand-written Gram gradient against TensorFlow's."""

import numpy as np
import pytest


@pytest.fixture
def session():
    import tensorflow as tf

    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        yield sess


def test_style_gram_value_and_gradient_match_plain_matmul(session):
    import tensorflow as tf

    from nst.optimise import costs

    rng = np.random.default_rng(0)
    activation = rng.normal(size=(1, 5, 7, 4)).astype(np.float32)
    target = rng.normal(size=(4, 4)).astype(np.float32)
    a = tf.constant(activation)
    fast = costs.style_gram(a)
    rows = tf.reshape(a, [35, 4])
    plain = tf.matmul(tf.transpose(rows), rows)
    fast_grad = tf.gradients(tf.reduce_sum(tf.square(fast - target)), [a])[0]
    plain_grad = tf.gradients(tf.reduce_sum(tf.square(plain - target)), [a])[0]
    fast_value, plain_value, fast_g, plain_g = session.run([fast, plain, fast_grad, plain_grad])
    np.testing.assert_allclose(fast_value, plain_value, rtol=1e-6)
    np.testing.assert_allclose(fast_g, plain_g, rtol=1e-5, atol=1e-5 * np.abs(plain_g).max())
    # And against the formula: G = F^T F with F [positions, channels].
    features = activation.reshape(35, 4).astype(np.float64)
    np.testing.assert_allclose(fast_value, features.T @ features, rtol=1e-5)


def test_layer_style_and_content_costs_match_formulas(session):
    import tensorflow as tf

    from nst.optimise import costs

    rng = np.random.default_rng(1)
    a_S, a_G = rng.normal(1, 3, (2, 1, 6, 3, 5)).astype(np.float32)
    style, content = session.run([costs.layer_style_cost(tf.constant(a_S), tf.constant(a_G)),
                                  costs.content_cost(tf.constant(a_S), tf.constant(a_G))])
    n_H, n_W, n_C = 6, 3, 5

    def gram(a):
        rows = a.reshape(n_H * n_W, n_C).astype(np.float64)
        return rows.T @ rows

    assert style == pytest.approx(((gram(a_S) - gram(a_G)) ** 2).sum() / (4 * n_C ** 2 * (n_H * n_W) ** 2), rel=1e-5)
    assert content == pytest.approx(((a_S - a_G) ** 2).sum() / (4 * n_H * n_W * n_C), rel=1e-5)


def test_total_variation_of_constant_image_is_zero_and_of_a_step_is_known(session):
    import tensorflow as tf

    from nst.optimise import costs

    flat = np.full((1, 4, 5, 3), 7.0, np.float32)
    step = flat.copy()
    step[:, :, 3:, :] = 9.0  # one vertical edge of height 2 across 4 rows and 3 channels
    tv_flat, tv_step = session.run([costs.total_variation(tf.constant(flat)), costs.total_variation(tf.constant(step))])
    assert tv_flat == 0
    assert tv_step == pytest.approx(4 * 3 * 2.0 ** 2 / 20)


# The sliced-Wasserstein term (nst.optimise.costs.distribution_cost, Heitz et al. 2021) and its targets.

def _target_of(features, directions):
    """The target nst.optimise.graphs builds: projections sorted per column, resampled to the same count, one row
    per direction [n_C, N]."""
    from nst.optimise.graphs import quantiles

    flat = features.reshape(-1, features.shape[-1]) @ directions
    return quantiles(np.sort(flat, axis=0), flat.shape[0]).T


def test_distribution_cost_sees_what_the_gram_matrix_cannot():
    # One channel, 1000 positions: all ones, or a quarter at 2 and the rest 0 (sparse specks).  Both
    # have the same second moment, so the same Gram matrix, but not the same distribution.
    import tensorflow as tf

    from nst.optimise.costs import distribution_cost, style_gram

    dense = np.ones((1, 40, 25, 1), np.float32)
    sparse = np.zeros((1, 40, 25, 1), np.float32)
    sparse.reshape(-1)[::4] = 2.0
    dense_t, sparse_t = tf.constant(dense), tf.constant(sparse)
    assert float(style_gram(dense_t)[0, 0]) == pytest.approx(float(style_gram(sparse_t)[0, 0]))
    identity = np.eye(1, dtype=np.float32)
    # Sorted: 750 zeros and 250 twos against 1000 ones: every squared difference is 1.
    assert float(distribution_cost(dense_t, _target_of(sparse, identity), identity)) == pytest.approx(1.0)
    assert float(distribution_cost(dense_t, _target_of(dense, identity), identity)) == 0.0


def test_distribution_cost_ignores_where_features_are():
    # A distribution of features, not a layout: shuffling the positions changes nothing.
    import tensorflow as tf

    from nst.optimise.costs import distribution_cost
    from nst.optimise.graphs import projection_directions

    rng = np.random.default_rng(3)
    features = rng.gamma(0.5, size=(1, 12, 10, 8)).astype(np.float32)
    shuffled = rng.permutation(features.reshape(-1, 8)).reshape(features.shape)
    directions = projection_directions(8)
    assert np.allclose(directions @ directions.T, np.eye(8), atol=1e-5)
    target = _target_of(features, directions)
    assert float(distribution_cost(tf.constant(shuffled), target, directions)) < 1e-10
    assert float(distribution_cost(tf.constant(shuffled * 1.5), target, directions)) > 1e-3


def test_quantiles_resample_a_sorted_column():
    from nst.optimise.graphs import quantiles

    ordered = np.arange(10, dtype=np.float32)[:, None]  # 0..9
    assert np.array_equal(quantiles(ordered, 10), ordered)
    half = quantiles(ordered, 5)[:, 0]  # the centres of 5 bins of 2 values each
    assert np.allclose(half, [0.5, 2.5, 4.5, 6.5, 8.5])
    assert np.all(np.diff(quantiles(ordered, 23)[:, 0]) >= 0)


def test_distribution_cost_has_the_value_and_gradient_of_sorting():
    # The cost pairs each projection with the target of its rank (NumPy's sort, nst.optimise.costs.rank_matched):
    # the same value and gradient as the textbook form, mean((sort(P) - target)^2) with tf.sort.
    import tensorflow as tf

    from nst.optimise.costs import distribution_cost
    from nst.optimise.graphs import projection_directions

    rng = np.random.default_rng(5)
    features = tf.constant(rng.gamma(0.7, size=(1, 9, 7, 6)).astype(np.float32))
    features_np = features.numpy()
    features_np[0, :3, :, 0] = 0.0  # ties, as ReLU zeros give
    features = tf.constant(features_np)
    directions = projection_directions(6)
    target = _target_of(rng.gamma(2.0, size=(1, 9, 7, 6)).astype(np.float32), directions)  # [6, 63]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(features)
        cost = distribution_cost(features, target, directions)
        projections = tf.matmul(tf.reshape(features, [63, 6]), directions)  # [63, 6]
        textbook = tf.reduce_mean(tf.square(tf.sort(projections, axis=0) - target.T))
    assert float(cost) == pytest.approx(float(textbook), rel=1e-5) and float(cost) > 0.1
    np.testing.assert_allclose(tape.gradient(cost, features), tape.gradient(textbook, features), rtol=1e-4, atol=1e-7)


def test_rank_matched_orders_negative_zero_and_positive_values():
    from nst.optimise.costs import rank_matched

    values = np.array([[3.0, -1.5, 0.0, -0.0, 2.0, -7.0, 1e-30, -1e-30]], np.float32)
    target = np.arange(8, dtype=np.float32)[None] * 10  # rank r -> 10 r
    expected = np.argsort(np.argsort(values[0], kind="stable"), kind="stable") * 10.0
    got = rank_matched(values, target)[0]
    assert np.array_equal(got[[0, 1, 4, 5, 6, 7]], expected[[0, 1, 4, 5, 6, 7]])
    assert sorted(got[[2, 3]]) == [30.0, 40.0]  # 0.0 and -0.0: equal values, ranks 3 and 4 (of 0..7)
    many = np.random.default_rng(0).normal(size=(5, 1000)).astype(np.float32)
    ordered = np.sort(many, axis=1)
    assert np.array_equal(rank_matched(many, ordered), many)  # its own sorted rows give every value back


def _exact_rank_matched(values, target):
    from nst.optimise.costs import _argsort_rows_exact, rank_matched

    return rank_matched(values, target, _argsort_rows_exact)


def test_rank_matched_on_long_rows_is_a_ranking_to_within_one_quantum():
    # Rows as long as the default run's finest conv1_1 (196,608 positions) are ranked on 14-bit
    # quantised values (issue 30): every target still used once, values more than one quantum
    # apart still in order, and the matched targets close to the exact ranking's.
    from nst.optimise.costs import rank_matched

    rng = np.random.default_rng(3)
    n = 196_608
    values = (rng.gamma(0.7, size=(3, n)) - rng.gamma(0.7, size=(3, n))).astype(np.float32)  # heavy tails
    values[:, :n // 10] = 0.0  # ReLU's zeros project to exact ties
    target = np.sort(rng.normal(size=(3, n)).astype(np.float32), axis=1)
    got = rank_matched(values, target)
    assert np.array_equal(np.sort(got, axis=1), target)
    quantum = (values.max(axis=1) - values.min(axis=1)) / (2 ** 14 - 1)
    for row, step in enumerate(quantum):
        order = np.argsort(values[row], kind="stable")
        v, m = values[row][order], got[row][order]
        below = np.searchsorted(v, v - 1.01 * step, side="left") - 1  # last index more than a quantum lower
        highest_before = np.maximum.accumulate(m)
        assert np.all(highest_before[np.maximum(below, 0)][below >= 0] <= m[below >= 0])
    exact = _exact_rank_matched(values, target)
    # Measured 1.7 % on these rows, most of it values next to the block of zeros (0.1-0.5 % on real features).
    assert np.sqrt(np.mean((got - exact) ** 2)) < 0.025 * np.sqrt(np.mean((values - exact) ** 2))


def test_rank_matched_is_exact_where_too_few_bits_would_be_left():
    # Past 2^18 positions fewer than 14 bits would remain for the value: those rows are sorted exactly.
    from nst.optimise.costs import rank_matched

    rng = np.random.default_rng(4)
    values = rng.normal(size=(1, 2 ** 18 + 1)).astype(np.float32)
    target = np.sort(rng.normal(size=values.shape).astype(np.float32), axis=1)
    assert np.array_equal(rank_matched(values, target), _exact_rank_matched(values, target))
