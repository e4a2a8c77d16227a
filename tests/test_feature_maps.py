import json

import numpy as np
import pytest
import scipy.signal
from PIL import Image

from biaslab.feature_maps import MAX_KERNELS, downscale, prepare_image, run_conv
from biaslab.io import BiaslabError, to_jsonable
from biaslab.kernels import KERNELS


@pytest.fixture
def picture(tmp_path):
    rng = np.random.default_rng(0)
    grey = (np.linspace(0, 255, 24)[None, :] * np.ones((20, 1)) * 0.7 + rng.integers(0, 70, (20, 24)))
    path = tmp_path / "tiny.png"
    Image.fromarray(grey.astype(np.uint8)).save(path)
    return path


def test_downscale_block_averages():
    img = np.arange(6 * 8, dtype=float).reshape(6, 8)
    small = downscale(img, 4)
    assert small.shape == (3, 4)
    assert small[0, 0] == img[:2, :2].mean()
    assert downscale(img, 8) is img
    assert downscale(np.ones((9, 9, 3)), 4).shape == (3, 3, 3)


def test_prepare_image_builtin_and_file(picture):
    camera, source, size = prepare_image()
    assert camera.shape == (1, 512, 512) and source == "camera" and size == (512, 512)
    assert 0.0 <= camera.min() and camera.max() <= 1.0
    coffee, source, size = prepare_image("coffee", color=True, max_size=100)
    assert coffee.shape == (3, 400 // 6, 100) and size == (400, 600)
    full = prepare_image("coffee", color=True, max_size=600)[0]
    np.testing.assert_allclose(coffee[:, 0, 0], full[:, :6, :6].mean(axis=(1, 2)))  # 6×6 block averages
    tiny, source, _ = prepare_image(None, picture)
    assert tiny.shape == (1, 20, 24) and source == str(picture)
    with pytest.raises(BiaslabError, match="either --builtin or --image"):
        prepare_image("camera", picture)
    with pytest.raises(BiaslabError, match="--max-size must be ≥ 1"):
        prepare_image(max_size=0)


def test_maps_are_the_formula(picture):
    res = run_conv(image=picture, kernels=["sobel-x", "gaussian"], biases=[-0.5, 0.0, 0.25], explain=(0, 23))
    image = res.image[0]
    for m in res.maps:
        expected = scipy.signal.correlate2d(image, KERNELS[m.name], mode="same")  # zero padding, no flip
        np.testing.assert_allclose(m.total, expected, atol=1e-12)
    assert res.torch_max_abs_diff < 1e-12
    d = json.loads(json.dumps(to_jsonable(res.to_dict())))
    sobel = d["kernels"][0]
    assert sobel["name"] == "sobel-x" and [s["bias"] for s in sobel["biases"]] == [-0.5, 0.0, 0.25]
    total = res.maps[0].total
    for s in sobel["biases"]:
        assert s["threshold"] == -s["bias"]
        assert s["fraction_active"] == pytest.approx(np.mean(total > -s["bias"]))
        assert s["mean_activation"] == pytest.approx(np.maximum(total + s["bias"], 0).mean())
        assert s["max_activation"] == pytest.approx(max(total.max() + s["bias"], 0.0))
    # a lower bias never lets more units fire
    actives = [s["fraction_active"] for s in sobel["biases"]]
    assert actives == sorted(actives)
    assert d["check"]["max_abs_diff"] < 1e-12 and d["output_shape"] == [20, 24]


def test_explanation_matches_every_feature_map(picture):
    res = run_conv(image=picture, kernels=["laplacian", "emboss"], biases=[-0.3, 0.0, 0.3],
                   activation="gelu", explain=(19, 0), check_torch=False)
    d = res.to_dict()["explain"]
    assert d["position"] == [19, 0] and len(d["kernels"]) == 2
    for k, m in zip(d["kernels"], res.maps):
        assert k["sum"] == pytest.approx(float(m.total[19, 0]), abs=1e-12)
        assert np.asarray(k["patch"])[0, 2].tolist() == [0.0, 0.0, 0.0]  # bottom row hangs over the padding
        for b in k["biases"]:
            assert b["output"] == pytest.approx(b["feature_map"], abs=1e-12)
            assert b["pre_activation"] == pytest.approx(k["sum"] + b["bias"])
    assert "Output (19, 0) = gelu(Σ(input * kernel) + b)" in res.summary()
    assert res.to_dict()["check"] is None


def test_sweep_spans_all_to_none_active():
    res = run_conv(builtin="camera", kernels=["sobel-y"], max_size=64, check_torch=False)
    sweep = res.sweep()
    frac = sweep["kernels"]["sobel-y"]["fraction_active"]
    assert frac[0] < 0.02 and frac[-1] > 0.98
    assert np.all(np.diff(frac) >= 0)
    assert np.all(np.diff(sweep["kernels"]["sobel-y"]["mean_activation"]) >= 0)
    assert res.params["kernels"] == ["sobel-y"] and res.image.shape == (1, 64, 64)
    assert "64×64, block-averaged from 512×512" in res.summary()


def test_default_kernels_random_kernels_and_seed(picture):
    res = run_conv(image=picture, check_torch=False)
    assert [m.name for m in res.maps] == ["gaussian", "sobel-x", "laplacian"]
    a = run_conv(image=picture, random=2, kernel_size=5, seed=3, check_torch=False)
    b = run_conv(image=picture, random=2, kernel_size=5, seed=3, check_torch=False)
    assert [m.name for m in a.maps] == ["random-1", "random-2"]
    np.testing.assert_array_equal(a.maps[1].kernel, b.maps[1].kernel)
    assert a.maps[0].kernel.shape == (1, 5, 5)
    np.savetxt(picture.parent / "gaussian.txt", np.eye(3))
    c = run_conv(image=picture, kernels=["gaussian"], kernel_file=picture.parent / "gaussian.txt", check_torch=False)
    assert [m.name for m in c.maps] == ["gaussian", "gaussian (2)"]
    assert set(c.to_dict()["sweep"]["kernels"]) == {"gaussian", "gaussian (2)"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "swish"}, "unknown activation 'swish'"),
        ({"biases": []}, "at least one --bias"),
        ({"biases": [float("nan")]}, "finite"),
        ({"random": MAX_KERNELS + 1}, f"at most {MAX_KERNELS}"),
        ({"explain": (20, 0)}, r"position \(20, 0\) is outside the 20×24 output"),
        ({"stride": 2}, "not supported for strided"),
        ({"kernels": ["blur"]}, "unknown kernel 'blur'"),
    ],
)
def test_bad_arguments(picture, kwargs, match):
    with pytest.raises(BiaslabError, match=match):
        run_conv(image=picture, check_torch=False, **kwargs)
