"""The denoising experiment's parts: model, patches, training, metrics, Jacobian, weights I/O."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from biaslab.bias_free import BiasFreeBatchNorm2d, count_biases, make_bias_free
from biaslab.denoise import (
    TEST_IMAGES,
    TRAIN_IMAGES,
    DnCNN,
    apply_denoiser,
    equivariance_error,
    evaluate_psnr,
    jacobian_rows,
    linearity_residual,
    load_denoiser,
    psnr,
    run_denoise,
    sample_patches,
    save_denoiser,
    train_denoisers,
)
from biaslab.io import BiaslabError


def _trained_pair(seed: int = 0, steps: int = 3) -> dict[str, DnCNN]:
    torch.manual_seed(seed)
    wb = DnCNN(depth=4, width=8)
    models = {"with_bias": wb, "bias_free": make_bias_free(wb)}
    rng = np.random.default_rng(0)
    imgs = [rng.random((40, 40)).astype(np.float32)]
    train_denoisers(models, imgs, steps=steps, batch_size=4, patch_size=16, sigma_max=30, seed=seed)
    return models


def _random_pair(seed: int = 0) -> dict[str, DnCNN]:
    """A with-bias DnCNN with non-zero biases and last layer, its bias-free twin; eval mode."""
    torch.manual_seed(seed)
    wb = DnCNN(depth=4, width=8)
    with torch.no_grad():
        for name, p in wb.named_parameters():
            if name.endswith("bias") or name == "body.8.weight":  # body.8: the last conv
                p.normal_(0.0, 0.2)
            elif p.dim() == 1:  # BatchNorm gains
                p.fill_(1.0)
    models = {"with_bias": wb, "bias_free": make_bias_free(wb)}
    for m in models.values():
        m.train()(torch.rand(4, 1, 12, 12))  # running statistics
        m.eval()
    return models


def test_dncnn_structure_and_bias_free_twin():
    net = DnCNN(depth=5, width=8)
    convs = [m for m in net.body if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5 and all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.body) == 3
    assert net.architecture == {"model": "DnCNN", "depth": 5, "width": 8, "channels": 1, "bias": True}
    free = DnCNN(depth=5, width=8, bias=False)
    assert count_biases(free) == 0 and sum(isinstance(m, BiasFreeBatchNorm2d) for m in free.body) == 3
    converted = make_bias_free(net)
    assert converted.architecture["bias"] is False
    # the converter and the bias=False constructor build the same network
    assert converted.state_dict().keys() == free.state_dict().keys()
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():  # residual: f(y) = y − body(y)
        torch.testing.assert_close(net(x), x - net.body(x))


def test_dncnn_rejects_bad_sizes():
    with pytest.raises(BiaslabError, match="depth >= 2"):
        DnCNN(depth=1)


def test_psnr_matches_definition_and_clips():
    clean = np.full((4, 4), 0.5)
    assert psnr(clean, clean + 0.1) == pytest.approx(20.0)  # 10·log10(1 / 0.01)
    assert psnr(clean, clean) == math.inf
    assert psnr(np.ones((2, 2)), np.full((2, 2), 3.0)) == math.inf  # clipped to 1 first


def test_sample_patches_shapes_range_and_determinism():
    imgs = [np.linspace(0, 1, 30 * 50, dtype=np.float32).reshape(30, 50), np.zeros((20, 20), np.float32)]
    a = sample_patches(imgs, 16, 8, np.random.default_rng(3))
    b = sample_patches(imgs, 16, 8, np.random.default_rng(3))
    assert a.shape == (16, 1, 8, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


def test_training_is_deterministic_and_trains_both_nets_on_the_same_data():
    a, b = _trained_pair(seed=5), _trained_pair(seed=5)
    for k in a:
        for (n1, t1), (_, t2) in zip(a[k].state_dict().items(), b[k].state_dict().items()):
            torch.testing.assert_close(t1, t2, rtol=0, atol=0, msg=f"{k}.{n1}")
    assert not a["with_bias"].training and not a["bias_free"].training


def test_equivariance_and_linearity_separate_the_two_nets():
    models = _random_pair()
    y = torch.rand(2, 1, 16, 16) + 0.1 * torch.randn(2, 1, 16, 16)
    eq_bf = equivariance_error(models["bias_free"], y, (0.3, 3.0))
    eq_wb = equivariance_error(models["with_bias"], y, (0.3, 3.0))
    assert max(eq_bf) < 1e-5 < 1e-2 < min(eq_wb)
    assert linearity_residual(models["bias_free"], y) < 1e-5
    assert linearity_residual(models["with_bias"], y) > 1e-2


def test_jacobian_rows_match_autograd_and_reconstruct_the_output():
    models = _random_pair()
    net = models["bias_free"].double()
    y = torch.rand(1, 1, 9, 9, dtype=torch.float64)
    pixels = [(3, 4), (6, 6)]
    rows = jacobian_rows(net, y, pixels)
    for (r, c), row in zip(pixels, rows):
        leaf = y.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(net(leaf)[0, 0, r, c], leaf)  # ∂f(y)[r, c] / ∂y, by plain autograd
        np.testing.assert_allclose(row, grad[0, 0].numpy(), atol=1e-12)
        assert abs(row[r, c]) > 0 and np.count_nonzero(row) > 1
        # bias-free: the denoised pixel is exactly the row's weighted sum of the noisy input
        with torch.no_grad():
            expected = float(net(y)[0, 0, r, c])
        assert float((row * y[0, 0].numpy()).sum()) == pytest.approx(expected, abs=1e-12)


def test_evaluate_psnr_has_one_value_per_sigma_and_noisy_gets_worse():
    models = _random_pair()
    clean = torch.rand(2, 1, 16, 16)
    out = evaluate_psnr(models, clean, [5, 50])
    assert set(out) == {"noisy", "with_bias", "bias_free"} and all(len(v) == 2 for v in out.values())
    assert out["noisy"][0] > out["noisy"][1]
    assert evaluate_psnr(models, clean, [5, 50]) == out  # fixed noise for a seed


def test_train_and_test_images_are_disjoint():
    assert not set(TRAIN_IMAGES) & set(TEST_IMAGES)


def test_save_and_load_round_trip(tmp_path):
    models = _random_pair()
    for k, m in models.items():
        path = save_denoiser(m, tmp_path / f"{k}.pt")
        back = load_denoiser(path)
        assert back.architecture == m.architecture
        x = torch.rand(1, 1, 10, 10)
        with torch.no_grad():
            torch.testing.assert_close(back(x), m(x))
        (tmp_path / f"{k}.json").unlink()  # without the JSON the architecture is read off the weights
        assert load_denoiser(path).architecture == m.architecture


def test_load_refuses_wrong_architecture_and_non_state_dicts(tmp_path):
    net = DnCNN(depth=4, width=8)
    path = save_denoiser(net, tmp_path / "net.pt")
    (tmp_path / "net.json").write_text('{"model": "DnCNN", "depth": 5, "width": 8, "channels": 1, "bias": true}')
    with pytest.raises(BiaslabError, match="does not match a DnCNN with depth=5"):
        load_denoiser(path)
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(BiaslabError, match="not a biaslab DnCNN"):
        load_denoiser(other)
    listy = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], listy)
    with pytest.raises(BiaslabError, match="not a state_dict"):
        load_denoiser(listy)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_load_refuses_untrusted_pickle_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"body.0.weight": _Payload(marker)}))
    with pytest.raises(BiaslabError, match="refusing to load"):
        load_denoiser(evil)
    assert not marker.exists()


def test_apply_denoiser_on_an_image(tmp_path):
    from PIL import Image

    net = _random_pair()["bias_free"]
    path = save_denoiser(net, tmp_path / "bf.pt")
    img = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(0).random((20, 24)) * 255).astype(np.uint8)).save(img)
    res = apply_denoiser(path, img, sigma=30, seed=1)
    assert res.denoised.shape == (20, 24) and res.psnr_noisy is not None
    assert res.to_dict()["psnr"]["noisy"] == pytest.approx(res.psnr_noisy)
    again = apply_denoiser(path, img, sigma=0)
    assert again.psnr_noisy is None and np.array_equal(again.noisy, again.clean)
    with pytest.raises(BiaslabError, match="--sigma"):
        apply_denoiser(path, img, sigma=-1)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"sigma_max": -5}, "--sigma-max"), ({"depth": 1}, "--depth"), ({"steps": 0}, "--steps"),
     ({"sigmas": [-1]}, "noise levels")],
)
def test_run_denoise_rejects_bad_settings(kwargs, message):
    with pytest.raises(BiaslabError, match=message):
        run_denoise(quick=True, **kwargs)


def test_run_denoise_on_user_images_needs_two(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(BiaslabError, match="at least 2"):
        run_denoise(quick=True, images=tmp_path)


@settings(max_examples=15, deadline=None)
@given(alpha=st.floats(0.01, 100.0), seed=st.integers(0, 1000))
def test_bias_free_dncnn_is_homogeneous_in_float64(alpha, seed):
    torch.manual_seed(seed)
    net = DnCNN(depth=4, width=6, bias=False).double()
    net.train()
    net(torch.rand(4, 1, 12, 12, dtype=torch.float64))  # non-trivial running variances
    net.eval()
    y = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(alpha * y), alpha * net(y), rtol=1e-12, atol=1e-13 * alpha)


@pytest.mark.slow
def test_quick_run_reproduces_the_paper_qualitatively(tmp_path):
    res = run_denoise(quick=True, seed=0, save_dir=tmp_path)
    gaps = res.gaps()
    assert gaps["mean_gain_far_out_db"] > 1.0  # bias-free clearly better at σ ≥ 5× the training max
    assert gaps["max_abs_gap_in_range_db"] < 0.75  # and about as good inside the training range
    assert max(res.equivariance["bias_free"]) < 1e-5 < 1e-2 < max(res.equivariance["with_bias"])
