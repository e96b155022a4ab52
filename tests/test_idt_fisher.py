"""Fisher vectors and count sketch against slow, obviously-correct references."""
import warnings

import numpy as np
import pytest

from vidssl.errors import FisherModelError
from vidssl.idt.fisher import FisherConfig, FisherModel, FisherStats, GMMBlock, power_l2
from vidssl.idt.options import IDTOptions
from vidssl.idt.sketch import CountSketch


def random_block(rng, d_in, d, k, start=10):
    comps = np.linalg.qr(rng.normal(size=(d_in, d_in)))[0][:d]
    return GMMBlock(slice(start, start + d_in), rng.normal(size=d_in), comps, rng.dirichlet(np.ones(k)),
                    rng.normal(size=(k, d)), rng.uniform(0.5, 2.0, size=(k, d)))


def slow_fisher(block, x, normalisation):
    """Per-descriptor loop of Eq. 5-6 (VLFeat normalisation) averaged over descriptors."""
    k, d = block.means.shape
    acc = np.zeros((2, k, d))
    for xi in x:
        logp = np.array([np.log(block.weights[j]) - 0.5 * np.sum(np.log(2 * np.pi * block.variances[j])
                         + (xi - block.means[j]) ** 2 / block.variances[j]) for j in range(k)])
        q = np.exp(logp - logp.max())
        q /= q.sum()
        for j in range(k):
            phi = (xi - block.means[j]) / np.sqrt(block.variances[j])
            if normalisation == "vlfeat":
                acc[0, j] += q[j] / np.sqrt(block.weights[j]) * phi
                acc[1, j] += q[j] / np.sqrt(block.weights[j]) * (phi ** 2 - 1) / np.sqrt(2)
            else:
                acc[0, j] += q[j] * phi
                acc[1, j] += q[j] * (phi ** 2 - 1)
    return (acc / len(x)).reshape(-1)


@pytest.mark.parametrize("n,d,k,chunk", [(7, 3, 2, 3), (20, 5, 4, 20), (13, 2, 6, 1)])
@pytest.mark.parametrize("normalisation", ["vlfeat", "unnormalised"])
def test_fisher_vs_loop(n, d, k, chunk, normalisation):
    rng = np.random.default_rng(n * d * k)
    block = random_block(rng, d + 2, d, k)
    x = rng.normal(size=(n, d))
    st = FisherStats(block)
    for s in range(0, n, chunk):  # streamed in chunks
        st.update(x[s:s + chunk])
    np.testing.assert_allclose(st.fisher(normalisation), slow_fisher(block, x, normalisation), rtol=1e-8, atol=1e-10)


def test_power_l2():
    v = np.array([4.0, -9.0, 0.0])
    np.testing.assert_allclose(power_l2(v), np.array([2.0, -3.0, 0.0]) / np.sqrt(13))
    assert np.all(power_l2(np.zeros(3)) == 0)


@pytest.mark.parametrize("d_in,d_out", [(10, 3), (257, 64), (1000, 2000)])
def test_count_sketch_vs_dense(d_in, d_out):
    cs = CountSketch(d_in, d_out, seed=3)
    P = np.zeros((d_out, d_in))
    for j in range(d_in):
        P[cs.hashes[j], j] = cs.signs[j]
    x = np.random.default_rng(0).normal(size=(5, d_in))
    np.testing.assert_allclose(cs(x), x @ P.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cs(x[0]), P @ x[0], rtol=1e-5, atol=1e-5)
    again = CountSketch(d_in, d_out, seed=3)
    assert np.array_equal(again.hashes, cs.hashes) and np.array_equal(again.signs, cs.signs)
    with pytest.raises(ValueError, match="expects"):
        cs(np.zeros((2, d_in + 1)))


def fake_rows(rng, n, opts, shift=0.0):
    rows = rng.random((n, opts.row_dim)).astype(np.float32)
    rows[:, 10:] += shift
    return rows


@pytest.mark.parametrize("pca", ["variance", "per_type"])
def test_model_fit_encode_roundtrip(tmp_path, pca):
    opts = IDTOptions()
    rng = np.random.default_rng(0)
    samples = fake_rows(rng, 120, opts)
    cfg = FisherConfig(pca=pca, variance=0.5, components=3, sketch_dim=64, gmm_iters=20)
    with warnings.catch_warnings():  # tiny random data: the GMM may stop before converging
        warnings.simplefilter("ignore")
        model = FisherModel.fit(samples, cfg, opts)
    if pca == "per_type":
        assert [b.dim for b in model.blocks] == [15, 48, 54, 48, 48]
    rows = fake_rows(rng, 50, opts, shift=0.3)
    v = model.encode([rows[:17], rows[17:]])
    assert v.shape == (64,) and v.dtype == np.float32
    # same as one chunk, and the sketch of the normalised Fisher vector
    np.testing.assert_allclose(v, model.encode([rows]), rtol=1e-5, atol=1e-6)
    path = model.save(tmp_path / "fv.npz")
    loaded = FisherModel.load(path)
    np.testing.assert_allclose(loaded.encode([rows]), v, rtol=1e-6, atol=1e-7)
    assert loaded.out_dim == 64 and loaded.cfg == cfg


def test_model_errors(tmp_path):
    with pytest.raises(FisherModelError, match="does not exist"):
        FisherModel.load(tmp_path / "nope.npz")
    with pytest.raises(FisherModelError, match="pca"):
        FisherConfig(pca="whiten")
    opts = IDTOptions()
    with pytest.raises(FisherModelError, match="components"):
        FisherModel.fit(fake_rows(np.random.default_rng(0), 5, opts), FisherConfig(components=8), opts)


@pytest.mark.parametrize("variance", [0.5, 0.9, 1.0])
def test_pca_matches_svd(variance):
    from vidssl.idt.fisher import fit_pca

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12)) + 3.0
    mean, comps = fit_pca(x, None, variance)
    u, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    ratio = np.cumsum(s ** 2) / np.sum(s ** 2)
    n = int(np.argmax(ratio >= variance - 1e-12) + 1)
    assert comps.shape == (n, 12)
    np.testing.assert_allclose(np.abs(comps @ vt[:n].T), np.eye(n), atol=1e-6)


# ----------------------------------------------------------------------------------------
# Fisher vectors against scikit-image's reference implementation
def sklearn_gmm(block):
    """Our GMM block as a fitted sklearn GaussianMixture(covariance_type='diag')."""
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(n_components=block.k, covariance_type="diag")
    gmm.weights_ = block.weights.copy()
    gmm.means_ = block.means.copy()
    gmm.covariances_ = block.variances.copy()
    gmm.precisions_cholesky_ = 1.0 / np.sqrt(block.variances)
    gmm.precisions_ = 1.0 / block.variances
    gmm.converged_, gmm.n_iter_, gmm.lower_bound_ = True, 1, 0.0
    gmm.n_features_in_ = block.dim
    return gmm


def skimage_layout(fv_sk, k, d):
    """skimage.feature.fisher_vector returns [d_pi (K), d_mu (K x D), d_sigma (K x D)] with
    d_sigma = -(sum_i q_ik [((x_i - mu_k) / sigma_k)^2 - 1]) / (N sqrt(2 w_k)): drop the
    weights block and flip the sign of the variance block to get VLFeat's [g_mu, g_var]."""
    assert fv_sk.shape == (k + 2 * k * d,)
    return np.concatenate([fv_sk[k:k + k * d], -fv_sk[k + k * d:]])


@pytest.mark.parametrize("n,d,k", [(40, 3, 2), (300, 16, 8), (1000, 24, 32)])
def test_fisher_vs_skimage(n, d, k):
    skf = pytest.importorskip("skimage.feature")
    rng = np.random.default_rng(n + d + k)
    block = random_block(rng, d, d, k)
    block.mean, block.components = np.zeros(d), np.eye(d)  # identity PCA: rows are the descriptors
    # descriptors drawn from the mixture, so that the posteriors are spread over components
    comp = rng.choice(k, n, p=block.weights)
    x = block.means[comp] + rng.normal(size=(n, d)) * np.sqrt(block.variances[comp])
    gmm = sklearn_gmm(block)
    np.testing.assert_allclose(block.posteriors(x), gmm.predict_proba(x), rtol=1e-7, atol=1e-10)

    st = FisherStats(block)
    for s in range(0, n, 64):  # streamed in chunks
        st.update(x[s:s + 64])
    ours = st.fisher("vlfeat")
    ref = skimage_layout(skf.fisher_vector(x, gmm), k, d)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())

    # improved FV: skimage powers and L2-normalises with its weights block included, so
    # re-normalise after dropping it (power normalisation is element-wise)
    ref_imp = skimage_layout(skf.fisher_vector(x, gmm, improved=True, alpha=0.5), k, d)
    ref_imp /= np.linalg.norm(ref_imp)
    np.testing.assert_allclose(power_l2(ours, 0.5), ref_imp, rtol=1e-5, atol=1e-7)

    # the whole encode path (rows of 436 columns, model without sketch)
    opts = IDTOptions()
    rows = np.zeros((n, opts.row_dim), np.float32)
    rows[:, 10:10 + d] = x
    model = FisherModel(FisherConfig(components=k, sketch_dim=0), opts, [block])
    ref32 = skimage_layout(skf.fisher_vector(rows[:, 10:10 + d].astype(np.float64), gmm, improved=True), k, d)
    np.testing.assert_allclose(model.encode([rows]), ref32 / np.linalg.norm(ref32), rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------------------
# count sketch: inner products preserved in expectation over the hash functions
def sketch_variance(x, y, d_out):
    """Var over random (h, s) of <Px, Py>: (|x|^2 |y|^2 + <x,y>^2 - 2 sum_i x_i^2 y_i^2) / d_out."""
    return (x @ x * (y @ y) + (x @ y) ** 2 - 2 * np.sum(x * x * y * y)) / d_out


def test_count_sketch_unbiased_over_seeds():
    rng = np.random.default_rng(0)
    d_in, d_out, seeds = 3000, 64, 2000
    a = rng.normal(size=d_in)
    pairs = {"independent": (a, rng.normal(size=d_in)),
             "correlated": (a, 0.8 * a + 0.6 * rng.normal(size=d_in)),
             "same": (a, a),
             "sparse, heavy-tailed": (rng.standard_t(2, d_in) * (rng.random(d_in) < 0.1),
                                      rng.standard_t(2, d_in) * (rng.random(d_in) < 0.1))}
    vecs = np.stack([v for pair in pairs.values() for v in pair]).astype(np.float32)
    est = np.empty((seeds, len(pairs)))
    for s in range(seeds):  # the same hashes for every pair of one seed
        p = CountSketch(d_in, d_out, seed=s)(vecs).astype(np.float64)
        est[s] = (p[0::2] * p[1::2]).sum(1)
    for est, (name, (x, y)) in zip(est.T, pairs.items()):
        true = float(x @ y)
        se = est.std(ddof=1) / np.sqrt(seeds)
        assert est.std() > 0 and len(np.unique(est)) > seeds // 2, name  # the seed changes the hashes
        assert abs(est.mean() - true) < 4 * se, (name, est.mean(), true, se)
        # and the spread is the count sketch's, not that of some other projection
        np.testing.assert_allclose(est.var(ddof=1), sketch_variance(x, y, d_out), rtol=0.15, err_msg=name)


def test_count_sketch_unbiased_over_pairs_and_seeds():
    """A fresh pair and a fresh seed per draw: standardised errors have mean 0 and variance 1."""
    rng = np.random.default_rng(1)
    d_in, d_out, draws = 1000, 32, 3000
    z = np.empty(draws)
    for s in range(draws):
        x = rng.normal(size=d_in)
        y = 0.5 * x + rng.normal(size=d_in)
        px, py = CountSketch(d_in, d_out, seed=10_000 + s)(np.stack([x, y]))
        z[s] = (float(px.astype(np.float64) @ py) - x @ y) / np.sqrt(sketch_variance(x, y, d_out))
    assert abs(z.mean()) < 4 / np.sqrt(draws), z.mean()
    assert 0.85 < z.var() < 1.15, z.var()


def test_count_sketch_not_dense():
    """The sketch of a 500k-d vector (a dense 500k x 2000 float32 P would be 4 GB) uses a
    few bytes per input dimension: hashes, signs and a sparse matrix with d_in entries."""
    import tracemalloc

    d_in, d_out = 500_000, 2000
    x = np.random.default_rng(0).normal(size=(2, d_in)).astype(np.float32)
    tracemalloc.start()
    try:
        cs = CountSketch(d_in, d_out, seed=0)
        out = cs(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (2, d_out)
    assert peak < 100 * d_in, peak  # 4 GB dense vs < 50 MB
    assert cs._matrix.nnz == d_in and cs._matrix.shape == (d_in, d_out)
    # one column hit per input dimension with a +-1 sign
    np.testing.assert_allclose(out[0].sum(), (x[0] * cs.signs).sum(), rtol=1e-3)
