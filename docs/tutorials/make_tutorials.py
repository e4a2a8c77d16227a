"""Write the tutorial notebooks of docs/tutorials/ (without outputs) from the cells below.

    python docs/tutorials/make_tutorials.py          # rewrite the .ipynb files
    python docs/tutorials/make_tutorials.py --check  # exit 1 if a notebook differs from this script

Every number a notebook's text mentions is computed by one of its cells, except the seed's
classic 4.47 / 3.30 of the first one, which a cell checks. tests/test_tutorials.py runs each
notebook top to bottom in a fresh Jupyter kernel.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

#: A cell is ("md", text) or ("py", code).
NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}

NOTEBOOKS["01_regression_with_and_without_intercept.ipynb"] = [
    ("md", """\
# 1. Regression with and without the intercept

A neuron computes `output = activation(Σ(input * kernel) + bias)`. With the identity as the activation and one
input, that is a straight line `y = w·x + b`. This notebook fits such a line twice to the same data: once with the
bias `b` (the intercept) and once with `b` forced to 0, so the line must pass through the origin.

The data are the classic example: NumPy seed 42, 50 points on `y = 3x + 2` plus Gaussian noise of σ = 2.
`biaslab.run_regression()` fits both lines in closed form and returns a result that shows itself: the claims with
their verdicts, the main numbers and the figure, all drawn by biaslab's report renderer."""),
    ("py", """\
import biaslab

result = biaslab.run_regression()  # seed 42, n = 50, y = 3x + 2 + N(0, 2)
result"""),
    ("md", """\
On this data the classic numbers are a mean squared error of **4.47 without** the intercept and **3.30 with** it.
The next cell checks them against the result instead of trusting this sentence."""),
    ("py", """\
without, with_ = result.without_bias.mse, result.with_bias.mse
assert (f"{without:.2f}", f"{with_:.2f}") == ("4.47", "3.30"), (without, with_)
print(f"MSE without intercept {without:.4f}, with intercept {with_:.4f}; "
      f"the intercept removes {100 * (1 - with_ / without):.1f}% of the error")
print(f"fitted line with intercept: y = {result.with_bias.coef[0]:.3f}·x + {result.with_bias.intercept:.3f}")
print(f"fitted line through the origin: y = {result.without_bias.coef[0]:.3f}·x")"""),
    ("md", """\
Each conclusion is a claim: a statement, its verdict and the evidence it rests on. They are plain data, so you can
use them in code:"""),
    ("py", """\
for claim in result.claims:
    print(f"[{claim.verdict}] {claim.text}")"""),
    ("md", """\
The figure is a matplotlib `Figure`; `result.figure(NAME)` hands it to you to restyle or save (`result.figure_names()`
lists the names). Here the right panel, the residuals, gets a title of our own:"""),
    ("py", """\
print(result.figure_names())
fig = result.figure("regression")
fig.axes[1].set_title("Residuals: without the intercept they trend with x")
fig"""),
    ("md", """\
Does the intercept always help this much? Generate data whose true intercept is 0 and look at the claims table: it
reports whether the bias still lowers the MSE by at least 1%."""),
    ("py", """\
biaslab.run_regression(intercept=0.0)"""),
    ("md", """\
Runs of the command line are results too. `biaslab regression --out DIR` saves `results.json` with the figures and a
report; `biaslab.load_results(DIR)` reads any saved run back, and it shows itself the same way."""),
    ("py", """\
import subprocess, sys

subprocess.run([sys.executable, "-m", "biaslab", "regression", "--out", "runs/regression", "--quiet"], check=True)
saved = biaslab.load_results("runs/regression")
assert saved.with_bias.mse == result.with_bias.mse  # the same seed gives the same fit
saved"""),
]

NOTEBOOKS["02_bias_as_relu_threshold.ipynb"] = [
    ("md", """\
# 2. The bias is the ReLU's threshold

A ReLU unit computes `relu(w·x + b)`. It outputs 0 until its weighted sum `w·x` crosses `−b`, then passes the sum
through. So the bias decides *where* the unit switches on: at `x = −b/w`. This notebook measures that for several
biases, then lets you move `w` and `b` yourself."""),
    ("py", """\
import biaslab

result = biaslab.run_relu(w=1.0, biases=[-2.0, -1.0, 0.0, 1.0, 2.0])
result"""),
    ("md", """\
The thresholds are data on the result. The next cell prints, for each bias, where the unit switches and on which
side it is active, and checks `x = −b/w` by evaluating the unit just either side of it."""),
    ("py", """\
import numpy as np
from biaslab.math.activations import activate

w = result.w
for t in result.thresholds:
    below, above = activate(np.array([w * (t.x - 1e-6) + t.b, w * (t.x + 1e-6) + t.b]), "relu")
    print(f"b = {t.b:+.1f}: switches at x = {t.x:+.2f} (−b/w = {-t.b / w + 0.0:+.2f}), active when {t.active_when}; "
          f"relu just below {below:.1e}, just above {above:.1e}")
    assert t.x == -t.b / w and below == 0.0 and above > 0.0"""),
    ("md", """\
In two dimensions, `relu(w1·x1 + w2·x2 + b)` is active on one side of the line `w1·x1 + w2·x2 = −b`. The bias moves
that line away from the origin by `|b|/‖w‖`; without it, the line always passes through the origin. The result holds
the active share of the square for every bias:"""),
    ("py", """\
for region in result.plane:
    print(f"b = {region.b:+.1f}: boundary {region.distance_from_origin:.3f} from the origin, "
          f"origin active: {region.origin_active}, active share of the square {100 * region.active_share:.1f}%")"""),
    ("md", """\
Move it yourself. `biaslab.explore.widget()` shows the explorer's panels here in the notebook (the same page as
`biaslab explore`, offline). Each number it shows is the one biaslab computes for the same settings."""),
    ("py", """\
from biaslab.explore import widget

widget(panels=["activation", "plane"])"""),
    ("md", """\
Other activations have thresholds too: a sigmoid crosses 0.5 and a tanh crosses 0 exactly where `w·x + b = 0`."""),
    ("py", """\
biaslab.run_relu(w=2.0, biases=[-1.0, 0.0, 1.0], activation="sigmoid")"""),
]

NOTEBOOKS["03_conv_layer_on_a_real_image.ipynb"] = [
    ("md", """\
# 3. A conv layer from the formula, on a real image

Each output pixel of a convolution is one unit: `relu(Σ(patch * kernel) + b)`, over the patch of the image under the
kernel. This notebook computes one such unit by hand on scikit-image's `camera` picture, checks it against biaslab's
convolution, then lets you move the biases of *your own* `torch.nn.Conv2d`."""),
    ("py", """\
import numpy as np
import skimage.data

image = skimage.data.camera() / 255.0  # 512 × 512, values in [0, 1]
image = image.reshape(128, 4, 128, 4).mean(axis=(1, 3))  # block-averaged to 128 × 128, as biaslab conv does
kernel = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])  # sobel-x: responds to vertical edges
b = -0.5
row, col = 64, 40
patch = image[row - 1:row + 2, col - 1:col + 2]
total = float((patch * kernel).sum())  # Σ(patch * kernel)
print("patch:\\n", patch.round(3))
print(f"Σ(patch * kernel) = {total:.4f};  + b = {total + b:.4f};  relu(Σ + b) = {max(total + b, 0.0):.4f}")"""),
    ("md", """\
The same unit from biaslab's convolution (`biaslab.math.conv.weighted_sum`, the NumPy code the `conv` command runs):"""),
    ("py", """\
from biaslab.math.conv import weighted_sum

maps = weighted_sum(image[None], kernel[None, None], padding="same")[0]  # (1 kernel, H, W) -> (H, W)
print(f"weighted_sum at ({row}, {col}) = {maps[row, col]:.4f}; by hand {total:.4f}")
assert abs(maps[row, col] - total) < 1e-12
active = float((maps + b > 0).mean())
print(f"with b = {b}, {100 * active:.1f}% of the units fire (Σ > −b = {-b})")"""),
    ("md", """\
`biaslab.run_conv` does this for several kernels and biases, measures the share of active units, checks the maps
against `torch.nn.functional.conv2d`, and explains one output pixel step by step:"""),
    ("py", """\
import biaslab

conv = biaslab.run_conv(builtin="camera", max_size=128, kernels=["sobel-x", "laplacian"],
                        biases=[-0.5, 0.0, 0.5], explain=(row, col))
conv"""),
    ("md", """\
The command's breakdown of output (64, 40) for sobel-x is the unit we computed by hand at the top:"""),
    ("py", """\
sobel = conv.explain.kernels[0]
print(f"{sobel.kernel}: Σ(input * kernel) = {sobel.sum:.6f} (by hand: {total:.6f})")
assert abs(sobel.sum - total) < 1e-12"""),
    ("md", """\
Now your own layer. `widget(conv_layer, image)` shows the explorer's conv panel for a `torch.nn.Conv2d`: one entry
per output channel, its feature maps, and a bias slider per channel that moves the layer's real bias. In a live
notebook, move a slider and read the values back from `w.bias`; here we set them from Python, which moves the sliders
and the layer alike."""),
    ("py", """\
import torch
from biaslab.explore import widget

torch.manual_seed(0)
layer = torch.nn.Conv2d(1, 4, kernel_size=3, padding=1)
w = widget(layer, "camera", max_size=128)
w"""),
    ("py", """\
print("biases in the widget:", [round(v, 4) for v in w.bias])
w.bias = [0.1, -0.1, 0.2, 0.0]
print("the layer's bias now:", layer.bias.detach().numpy().round(4))
print("active share of channel 0:", f"{100 * w.active_share(0):.1f}%")"""),
    ("md", """\
The active share the widget shows is the one `biaslab conv` computes for the same kernel, bias and image. Check it:
save channel 0's kernel to a file and run the command's library function on it."""),
    ("py", """\
import tempfile, os

kernel_file = os.path.join(tempfile.mkdtemp(), "channel0.npy")
np.save(kernel_file, layer.weight.detach().double().numpy()[0])
check = biaslab.run_conv(builtin="camera", max_size=128, kernel_file=kernel_file, biases=[w.bias[0]], padding=1,
                         check_torch=False)
print(f"biaslab conv: {100 * check.kernels[0].biases[0].fraction_active:.2f}%, widget: {100 * w.active_share(0):.2f}%")
assert check.kernels[0].biases[0].fraction_active == w.active_share(0)"""),
]

NOTEBOOKS["04_audit_your_own_model.ipynb"] = [
    ("md", """\
# 4. Auditing your own model

Some biases cannot change what a network computes. A convolution's bias right before a BatchNorm should be
subtracted again by the BatchNorm's mean; the bias of an attention layer's keys adds the same number to every score
of a query, which the softmax should cancel. `biaslab audit` traces a model and says, for each bias, whether it is
redundant, foldable or needed, and why; the cells below check both expectations on a model of our own.

Here the model is a small one of our own: a conv before a BatchNorm, then a self-attention layer over the pixels."""),
    ("py", """\
import torch
from torch import nn

torch.manual_seed(0)


class TinyVisionAttention(nn.Module):
    def __init__(self, channels=8, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, kernel_size=3, padding=1)  # has a bias ...
        self.bn = nn.BatchNorm2d(channels)  # ... which this BatchNorm subtracts again
        self.attn = nn.MultiheadAttention(channels, num_heads=2, batch_first=True)
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        tokens = x.flatten(2).transpose(1, 2)  # (batch, pixels, channels)
        mixed, _ = self.attn(tokens, tokens, tokens)
        return self.head(mixed.mean(dim=1))


def make_model():
    return TinyVisionAttention()


example = torch.randn(2, 3, 8, 8)
make_model()(example).shape"""),
    ("md", """\
`biaslab.find_biases(model, example_input)` works on the model object in memory and returns one finding per bias
(the attention's packed `in_proj_bias` is split into its query, key and value parts):"""),
    ("py", """\
import biaslab

model = make_model().eval()
for f in biaslab.find_biases(model, example):
    name = f.param + (f" [{f.part}]" if f.part else "")
    print(f"{name:28s} {f.status:10s} {f.short_reason or f.reason}")"""),
    ("md", """\
`biaslab.run_audit` is the full command: it names the model by `module:factory` (a function defined in this notebook
lives in the module `__main__`), measures how much each bias contributes on sample inputs, and states each verdict as
a claim. With `verify=True` it also perturbs every bias it calls redundant and records whether the output stayed
put."""),
    ("py", """\
audit = biaslab.run_audit("__main__:make_model", input_shape=(2, 3, 8, 8), data="random", samples=32, verify=True)
audit"""),
    ("md", """\
The findings (`audit.biases`) are data too. The next cell lists the biases the audit calls redundant, and whether perturbing each one
left the output unchanged:"""),
    ("py", """\
for f in audit.biases:
    if f.status == "redundant":
        print(f"{f.param + (' [' + f.part + ']' if f.part else ''):28s} verified unchanged: {f.verified}")"""),
]

NOTEBOOKS["05_does_my_network_need_its_biases.ipynb"] = [
    ("md", """\
# 5. Does my network need its biases? An honest ablation

One training run with biases and one without proves nothing: the difference between two seeds can be larger than the
effect. `biaslab.run_ablate` trains the same network with and without its biases on several seeds, pairs the runs by
seed, and tests the differences (paired t-test and Wilcoxon, a confidence interval, an effect size, corrected for the
number of comparisons). Its claims say what the numbers support, and no more.

The settings here are tiny so that the notebook runs quickly on a laptop CPU: a small MLP on scikit-learn's 8×8
digits, 4 seeds, 3 epochs. Tiny settings have little statistical power; read the verdicts with that in mind, and
raise `seeds` and `epochs` for a real answer. The progress bar below is live while it trains."""),
    ("py", """\
import biaslab

result = biaslab.run_ablate(models=["mlp"], datasets=["digits"], seeds=4, epochs=3, quick=True,
                            out_dir=None, show_progress=True)
result"""),
    ("md", """\
Behind each verdict are per-seed accuracies. The next cell prints them side by side with the paired difference, so
you can see the spread the statistics work with."""),
    ("py", """\
cfg = result.configurations[0]
a, b = "with-bias", "no-bias"
acc_a, acc_b = cfg.variants[a].test_acc, cfg.variants[b].test_acc
print(f"{'seed':>5} {a:>10} {b:>10} {'a − b (pp)':>11}")
for s, x, y in zip(cfg.seeds, acc_a, acc_b):
    print(f"{s:>5} {x:>10.4f} {y:>10.4f} {100 * (x - y):>+11.2f}")
c = cfg.comparisons[0]
print(f"mean difference {100 * c.diff_mean:+.2f} pp, paired t-test p = {c.p_value:.3g}, "
      f"{c.a_wins} of {c.n} seeds favour {a}: {c.verdict}")"""),
    ("md", """\
The result has more figures than the one shown above: `result.figure_names()` lists them. Here are the test-accuracy
curves over the epochs, every seed of both variants:"""),
    ("py", """\
print(result.figure_names())
result.figure("ablate_curves")"""),
]

NOTEBOOKS["06_bias_free_denoising.ipynb"] = [
    ("md", """\
# 6. (Optional) Bias-free denoising

A denoiser with no bias anywhere is *scale-equivariant*: scaling the noisy input scales the output by the same
factor, `f(α·y) = α·f(y)`. Mohan et al. (ICLR 2020) report that such networks keep working at noise levels they were
not trained on. `biaslab.run_denoise` trains a small DnCNN and its bias-free twin on the same patches, then compares
them inside and beyond the training range of noise, and states what it measured as claims.

The settings here are tiny (150 training steps of a narrow network) so that it runs quickly on a laptop CPU; at
these settings the claims table, not this text, says which of the paper's effects show up."""),
    ("py", """\
import biaslab

result = biaslab.run_denoise(quick=True, steps=150, depth=5, width=16, sigma_max=10.0, eval_crop=64,
                             sigmas=(5, 10, 25, 50), show_progress=True)
result"""),
    ("md", """\
The numbers behind the claims are stored in the result; the next cell prints the PSNR of both networks at every test
noise level, with the training range marked, and the measured scale-equivariance error of each network."""),
    ("py", """\
for i, sigma in enumerate(result.sigmas):
    inside = "inside" if sigma <= result.train_sigma_max else "beyond"
    row = ", ".join(f"{name}: {curve[i]:.2f} dB" for name, curve in result.psnr.items())
    print(f"σ = {sigma:>4g} ({inside} the training range): {row}")
for name, err in result.equivariance_error.items():
    print(f"{name}: largest relative error of f(α·y) = α·f(y) over the tested α: {err:.2g}")"""),
]


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, text) in enumerate(cells):
        cell = nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text)
        cell["id"] = f"{name[:2]}-{i:02d}"  # stable ids: rewriting an unchanged notebook changes nothing
        nb.cells.append(cell)
    return nb


def main(argv: list[str]) -> int:
    stale = []
    for name, cells in NOTEBOOKS.items():
        text = nbformat.writes(build(name, cells)) + "\n"
        path = HERE / name
        if "--check" in argv:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python docs/tutorials/make_tutorials.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
