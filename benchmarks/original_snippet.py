"""The classic demonstration, as it is usually shown (Agg backend, savefig instead of show).

Reference for benchmarks/bench_regression.py; usage: python original_snippet.py OUT.png
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.metrics import mean_squared_error  # noqa: E402

np.random.seed(42)
X = np.linspace(0, 10, 50).reshape(-1, 1)
y = 3 * X + 2 + np.random.normal(0, 2, size=(50, 1))

model_no_bias = LinearRegression(fit_intercept=False)
model_no_bias.fit(X, y)
y_pred_no_bias = model_no_bias.predict(X)
mse_no_bias = mean_squared_error(y, y_pred_no_bias)

model_with_bias = LinearRegression(fit_intercept=True)
model_with_bias.fit(X, y)
y_pred_with_bias = model_with_bias.predict(X)
mse_with_bias = mean_squared_error(y, y_pred_with_bias)

plt.scatter(X, y, label="Data Points")
plt.plot(X, y_pred_no_bias, label=f"Without Bias (MSE: {mse_no_bias:.2f})", color="orange")
plt.plot(X, y_pred_with_bias, label=f"With Bias (MSE: {mse_with_bias:.2f})", color="green")
plt.title("Linear Regression Comparison")
plt.xlabel("Input")
plt.ylabel("Output")
plt.legend()
plt.savefig(sys.argv[1] if len(sys.argv) > 1 else "original.png")
print(f"MSE without bias: {mse_no_bias}, MSE with bias: {mse_with_bias}")
