"""Fisher vectors and count sketch against slow, obviously-correct references."""
import warnings

import numpy as np
import pytest

from vidssl.idt.fisher import FisherConfig, FisherModel, FisherModelError, FisherStats, GMMBlock, power_l2
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
