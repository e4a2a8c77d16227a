/* biaslab explore: every control updates its numbers synchronously, inside the input event.
 *
 * The data embedded by `biaslab explore` (see biaslab/explore/data.py) is read from the
 * #explore-data script element. Plain JavaScript, no framework, no network.
 *
 * The same source drives the notebook widget (biaslab.explore.widget, static/widget.js): there it
 * is loaded as a module with BIASLAB_WIDGET defined, and startExplorer(root, data, hooks) runs
 * on the widget's shadow root, with hooks that send the chosen biases back to Python.
 */
function startExplorer(root, DATA, hooks) {
  "use strict";

  hooks = hooks || {};
  const $ = (id) => root.getElementById(id);

  /* ---------- numbers as people read them (the rules of biaslab.numfmt) ---------- */

  /** Every number the page shows passes through here: its sign (and an exponent's) is the minus
   *  sign "−" (U+2212), never the hyphen "-", and a value that reads as zero has no sign ("0.000"). */
  function minusSign(text) {
    return (Number(text) === 0 ? text.replace("-", "") : text).replace(/-/g, "−");
  }

  const missing = (x) => x === null || x === undefined || Number.isNaN(x);
  const infinity = (x) => (x > 0 ? "∞" : "−∞");

  /** `d` decimals, as fmt_fixed: "−1.500", never "−0.000"; null or NaN as "n/a". */
  function fixed(x, d) {
    if (missing(x)) return "n/a";
    return Number.isFinite(x) ? minusSign(x.toFixed(d)) : infinity(x);
  }

  /** `n` significant digits, trailing zeros dropped, as fmt_num: "−0.25", "1.5e−5", "1.235e5". */
  function sig(x, n) {
    if (missing(x)) return "n/a";
    if (!Number.isFinite(x)) return infinity(x);
    if (x === 0) return "0";
    const [mantissa, e] = x.toExponential(n - 1).split("e"), exp = Number(e);
    const strip = (s) => (s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s);
    return minusSign(exp < -4 || exp >= n ? `${strip(mantissa)}e${exp}` : strip(x.toFixed(Math.max(0, n - 1 - exp))));
  }

  /** "+1.23 dB" / "−0.04 dB", and "0 dB" for what rounds to zero, as fmt_signed. */
  function signed(x, d, unit = "") {
    if (missing(x)) return "n/a";
    const text = fixed(Math.abs(x), d);
    return Number(text) === 0 ? `0${unit}` : `${x > 0 ? "+" : "−"}${text}${unit}`;
  }

  const percent = (fraction) => fixed(100 * fraction, 1) + "%";

  /** A number inside a command line the reader may copy: the hyphen "-" the shell and biaslab's parser read. */
  const argument = (x, d) => fixed(x, d).replace("−", "-");

  /* ---------- arrays: base64 of little-endian bytes ---------- */

  function decode(spec) {
    const bin = atob(spec.data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const types = { uint8: Uint8Array, uint32: Uint32Array, float32: Float32Array, float64: Float64Array };
    return new types[spec.dtype](bytes.buffer);
  }

  /* ---------- activations, as biaslab.activations defines them ---------- */

  /** erf(x) to double precision: a series of positive terms below 3, the continued fraction of erfc above. */
  function erf(x) {
    const ax = Math.abs(x);
    if (ax > 6) return Math.sign(x);
    if (ax < 3) { // erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)): no cancellation
      let term = ax, sum = ax;
      for (let n = 1; n < 200 && term > 1e-17 * sum; n++) {
        term *= (2 * ax * ax) / (2 * n + 1);
        sum += term;
      }
      return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
    }
    let f = 0; // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))
    for (let n = 60; n >= 1; n--) f = (n / 2) / (ax + f);
    return Math.sign(x) * (1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f));
  }

  const ACTIVATIONS = {
    relu: (z) => Math.max(z, 0),
    leaky_relu: (z) => (z > 0 ? z : 0.01 * z),
    sigmoid: (z) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z))),
    tanh: (z) => Math.tanh(z),
    gelu: (z) => 0.5 * z * (1 + erf(z / Math.SQRT2)),
  };

  /* ---------- drawing ---------- */

  const COLORS = { ink: "#1b1f24", muted: "#4a5563", grid: "#dfe4ea", with: "#0b62c4", without: "#c2410c", active: "#f59e0b" };

  function canvasFont(scale) {
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    return `${Math.round(rem * scale)}px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif`;
  }

  /** Size the canvas backing store to its CSS box × devicePixelRatio; draw in CSS pixels. */
  function fitCanvas(canvas) {
    const rect = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(rect.width * dpr)), h = Math.max(1, Math.round(rect.height * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, rect.width, rect.height);
    return { ctx, w: rect.width, h: rect.height };
  }

  function niceTicks(lo, hi, count) {
    const span = hi - lo;
    if (!(span > 0)) return [lo];
    const raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    return ticks;
  }

  /** Frame, grid, ticks and axis labels (x below, y above the frame); returns the data → pixel maps. */
  function axes(ctx, w, h, xr, yr, labels, xticks) {
    ctx.font = canvasFont(0.75);
    const em = parseFloat(ctx.font), left = ctx.measureText("−00.0").width + 14;
    const box = { l: left, r: w - 12, t: em * 1.6 + 4, b: h - em * 2.4 - 4 };
    const X = (x) => box.l + ((x - xr[0]) / (xr[1] - xr[0])) * (box.r - box.l);
    const Y = (y) => box.b - ((y - yr[0]) / (yr[1] - yr[0])) * (box.b - box.t);
    ctx.lineWidth = 1;
    ctx.fillStyle = COLORS.muted;
    ctx.strokeStyle = COLORS.grid;
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    const xs = xticks || niceTicks(xr[0], xr[1], Math.max(3, Math.floor((box.r - box.l) / 70)))
      .map((t) => [t, sig(t, 3)]);
    for (const [t, label] of xs) {
      ctx.beginPath(); ctx.moveTo(X(t), box.t); ctx.lineTo(X(t), box.b); ctx.stroke();
      ctx.textAlign = X(t) + ctx.measureText(label).width / 2 > w ? "right" : "center"; // keep the last label inside
      ctx.fillText(label, ctx.textAlign === "right" ? w - 2 : X(t), box.b + 4);
    }
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (const t of niceTicks(yr[0], yr[1], Math.max(3, Math.floor((box.b - box.t) / 45)))) {
      ctx.beginPath(); ctx.moveTo(box.l, Y(t)); ctx.lineTo(box.r, Y(t)); ctx.stroke();
      ctx.fillText(sig(t, 3), box.l - 5, Y(t));
    }
    ctx.strokeStyle = COLORS.muted;
    ctx.strokeRect(box.l, box.t, box.r - box.l, box.b - box.t);
    ctx.fillStyle = COLORS.ink;
    ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText(labels[0], (box.l + box.r) / 2, h - 2);
    ctx.textAlign = "left"; ctx.textBaseline = "top";
    ctx.fillText(labels[1], 4, 2);
    return { X, Y, box };
  }

  /** Where the y-axis label that axes() writes at the top left ends, in CSS pixels. */
  function labelEnd(ctx, label) {
    ctx.font = canvasFont(0.75);
    return 4 + ctx.measureText(label).width;
  }

  function zeroLine(ctx, a, yr) {
    if (yr[0] < 0 && yr[1] > 0) {
      ctx.strokeStyle = COLORS.muted; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(a.box.l, a.Y(0)); ctx.lineTo(a.box.r, a.Y(0)); ctx.stroke();
    }
  }

  function range(values, pad) {
    let lo = Math.min(...values), hi = Math.max(...values);
    if (!(hi > lo)) { lo -= 1; hi += 1; }
    const p = (hi - lo) * pad;
    return [lo - p, hi + p];
  }

  function showValue(input, decimals) {
    $(input.id + "-value").textContent = fixed(Number(input.value), decimals);
  }

  function onInput(elements, update) {
    for (const el of elements) {
      el.addEventListener("input", update);
      if (el.tagName === "SELECT") el.addEventListener("change", update);
    }
  }

  /* ---------- 1. the bias is a threshold ---------- */

  const reluInputs = { w: $("relu-w"), b: $("relu-b"), act: $("relu-activation") };
  /** What each activation does on either side of the threshold. */
  const BEYOND = {
    relu: "on the other side the ReLU outputs exactly 0.",
    leaky_relu: "on the other side it outputs 0.01·(w·x + b), small and negative.",
    sigmoid: "there the output is above 0.5, on the other side below.",
    tanh: "there the output is positive, on the other side negative.",
    gelu: "there the output is positive, on the other side small and negative (at most 0.17 in size).",
  };

  function updateRelu() {
    const w = Number(reluInputs.w.value), b = Number(reluInputs.b.value), name = reluInputs.act.value;
    showValue(reluInputs.w, 1); showValue(reluInputs.b, 1);
    const t = w === 0 ? null : -b / w + 0;
    $("relu-threshold").textContent = t === null ? "none (w = 0)" : fixed(t, 3);
    $("relu-rule").textContent = t === null
      ? `With w = 0 the unit sees only b: w·x + b = ${fixed(b, 1)} for every x, so it is ${b > 0 ? "always" : "never"} on the active side.`
      : `w·x + b > 0 exactly when x ${w > 0 ? ">" : "<"} ${fixed(t, 3)}; ${BEYOND[name]}`;
    drawRelu(w, b, name, t);
  }

  function drawRelu(w, b, name, t) {
    const { ctx, w: cw, h: ch } = fitCanvas($("relu-plot"));
    const act = ACTIVATIONS[name], xr = [-5, 5], xs = [], ys = [];
    for (let i = 0; i <= 400; i++) { const x = xr[0] + (i / 400) * (xr[1] - xr[0]); xs.push(x); ys.push(act(w * x + b)); }
    const yr = range([...ys, 0, 1], 0.08);
    const ylabel = `${name}(w·x + b)`, a = axes(ctx, cw, ch, xr, yr, ["x", ylabel]);
    // the active side, w·x + b > 0
    ctx.fillStyle = "rgba(245, 158, 11, 0.14)";
    if (t === null) { if (b > 0) ctx.fillRect(a.box.l, a.box.t, a.box.r - a.box.l, a.box.b - a.box.t); }
    else {
      const edge = Math.min(Math.max(t, xr[0]), xr[1]);
      const [from, to] = w > 0 ? [edge, xr[1]] : [xr[0], edge];
      ctx.fillRect(a.X(from), a.box.t, a.X(to) - a.X(from), a.box.b - a.box.t);
    }
    zeroLine(ctx, a, yr);
    ctx.strokeStyle = COLORS.with; ctx.lineWidth = 3;
    ctx.beginPath();
    xs.forEach((x, i) => (i ? ctx.lineTo(a.X(x), a.Y(ys[i])) : ctx.moveTo(a.X(x), a.Y(ys[i]))));
    ctx.stroke();
    if (t !== null && t >= xr[0] && t <= xr[1]) {
      ctx.strokeStyle = COLORS.without; ctx.lineWidth = 2; ctx.setLineDash([7, 5]);
      ctx.beginPath(); ctx.moveTo(a.X(t), a.box.t); ctx.lineTo(a.X(t), a.box.b); ctx.stroke();
      ctx.setLineDash([]);
      // above the plot area (never over the curve), over the dashed line as far as the y-axis label allows
      const free = labelEnd(ctx, ylabel) + 12, text = `x = −b/w = ${fixed(t, 3)}`;
      ctx.fillStyle = COLORS.without; ctx.font = canvasFont(0.8);
      const half = ctx.measureText(text).width / 2;
      ctx.textAlign = "center"; ctx.textBaseline = "bottom";
      ctx.fillText(text, Math.max(free + half, Math.min(a.X(t), cw - 2 - half)), a.box.t - 2);
    }
  }

  /* ---------- 2. a unit in two dimensions ---------- */

  const planeInputs = { w1: $("plane-w1"), w2: $("plane-w2"), b: $("plane-b") };
  const SQUARE = 3;

  /** The part of the square [−3, 3]² where w1·x1 + w2·x2 + b > 0 (Sutherland–Hodgman, one edge). */
  function activePolygon(w1, w2, b) {
    const f = (p) => w1 * p[0] + w2 * p[1] + b;
    const corners = [[-SQUARE, -SQUARE], [SQUARE, -SQUARE], [SQUARE, SQUARE], [-SQUARE, SQUARE]];
    const out = [];
    for (let i = 0; i < 4; i++) {
      const p = corners[i], q = corners[(i + 1) % 4], fp = f(p), fq = f(q);
      if (fp > 0) out.push(p);
      if ((fp > 0) !== (fq > 0) && fp !== fq) {
        const s = fp / (fp - fq);
        out.push([p[0] + s * (q[0] - p[0]), p[1] + s * (q[1] - p[1])]);
      }
    }
    return out;
  }

  function polygonArea(points) {
    let twice = 0;
    for (let i = 0; i < points.length; i++) {
      const p = points[i], q = points[(i + 1) % points.length];
      twice += p[0] * q[1] - q[0] * p[1];
    }
    return Math.abs(twice) / 2;
  }

  /** Where the line w1·x1 + w2·x2 + b = 0 crosses the square's edges. */
  function boundarySegment(w1, w2, b) {
    const pts = [];
    if (w2 !== 0) for (const x1 of [-SQUARE, SQUARE]) { const x2 = -(b + w1 * x1) / w2; if (Math.abs(x2) <= SQUARE) pts.push([x1, x2]); }
    if (w1 !== 0) for (const x2 of [-SQUARE, SQUARE]) { const x1 = -(b + w2 * x2) / w1; if (Math.abs(x1) <= SQUARE) pts.push([x1, x2]); }
    return pts;
  }

  function updatePlane() {
    const w1 = Number(planeInputs.w1.value), w2 = Number(planeInputs.w2.value), b = Number(planeInputs.b.value);
    Object.values(planeInputs).forEach((el) => showValue(el, 1));
    const poly = activePolygon(w1, w2, b);
    const share = polygonArea(poly) / (2 * SQUARE) ** 2;
    $("plane-active-fraction").textContent = percent(share);
    const norm = Math.hypot(w1, w2);
    $("plane-boundary").textContent = norm === 0
      ? `w = (0, 0): the unit sees only b, so it is ${b > 0 ? "active everywhere" : "active nowhere"}.`
      : `Boundary ${fixed(w1, 1)}·x1 + ${fixed(w2, 1)}·x2 = ${fixed(-b, 1)}, at distance |b|/‖w‖ = ${fixed(Math.abs(b) / norm, 3)} ` +
        `from the origin${b === 0 ? " (through it: b = 0)" : ""}; the origin is ${b > 0 ? "active" : "inactive"}.`;
    drawPlane(w1, w2, b, poly);
  }

  function drawPlane(w1, w2, b, poly) {
    const { ctx, w, h } = fitCanvas($("plane-plot"));
    const a = axes(ctx, w, h, [-SQUARE, SQUARE], [-SQUARE, SQUARE], ["x1", "x2"]);
    if (poly.length) {
      ctx.fillStyle = "rgba(245, 158, 11, 0.45)";
      ctx.beginPath();
      poly.forEach((p, i) => (i ? ctx.lineTo(a.X(p[0]), a.Y(p[1])) : ctx.moveTo(a.X(p[0]), a.Y(p[1]))));
      ctx.closePath(); ctx.fill();
    }
    ctx.font = canvasFont(0.8);
    const seg = boundarySegment(w1, w2, b);
    if (seg.length >= 2) {
      ctx.strokeStyle = COLORS.ink; ctx.lineWidth = 3;
      ctx.beginPath(); ctx.moveTo(a.X(seg[0][0]), a.Y(seg[0][1])); ctx.lineTo(a.X(seg[1][0]), a.Y(seg[1][1])); ctx.stroke();
    }
    // origin
    ctx.strokeStyle = COLORS.ink; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(a.X(-0.2), a.Y(0)); ctx.lineTo(a.X(0.2), a.Y(0));
    ctx.moveTo(a.X(0), a.Y(-0.2)); ctx.lineTo(a.X(0), a.Y(0.2)); ctx.stroke();
    // the weight vector points into the active side
    const norm = Math.hypot(w1, w2);
    if (norm > 0) {
      const len = 1.2, ux = (w1 / norm) * len, uy = (w2 / norm) * len;
      const [x0, y0, x1, y1] = [a.X(0), a.Y(0), a.X(ux), a.Y(uy)];
      const ang = Math.atan2(y1 - y0, x1 - x0), head = 12;
      ctx.strokeStyle = COLORS.with; ctx.fillStyle = COLORS.with; ctx.lineWidth = 3;
      ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(x1, y1);
      ctx.lineTo(x1 - head * Math.cos(ang - 0.4), y1 - head * Math.sin(ang - 0.4));
      ctx.lineTo(x1 - head * Math.cos(ang + 0.4), y1 - head * Math.sin(ang + 0.4));
      ctx.closePath(); ctx.fill();
      ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.fillText("w", a.X(ux * 1.25), a.Y(uy * 1.25));
    }
  }

  /* ---------- 3. regression with and without the intercept ---------- */

  const REG = DATA.regression;
  const regInputs = { intercept: $("reg-intercept"), slope: $("reg-slope"), noise: $("reg-noise") };
  const regX = Float64Array.from(REG.x);
  let regNoise = Float64Array.from(REG.unit_noise), regDraw = 0;

  /** This page's own generator (mulberry32), not NumPy's: uniform in [0, 1). */
  function mulberry32(seed) {
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /** n standard normals by Box–Muller from mulberry32(seed). */
  function gaussians(n, seed) {
    const u = mulberry32(seed), out = new Float64Array(n);
    for (let k = 0; k < n; k += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - u())), phi = 2 * Math.PI * u();
      out[k] = r * Math.cos(phi);
      if (k + 1 < n) out[k + 1] = r * Math.sin(phi);
    }
    return out;
  }

  /** Least squares in closed form: through the origin, and with an intercept. */
  function fits(x, y) {
    const n = x.length;
    let sxx0 = 0, sxy0 = 0, xm = 0, ym = 0;
    for (let i = 0; i < n; i++) { sxx0 += x[i] * x[i]; sxy0 += x[i] * y[i]; xm += x[i]; ym += y[i]; }
    xm /= n; ym /= n;
    let sxx = 0, sxy = 0;
    for (let i = 0; i < n; i++) { sxx += (x[i] - xm) ** 2; sxy += (x[i] - xm) * (y[i] - ym); }
    const without = { slope: sxx0 > 0 ? sxy0 / sxx0 : 0, intercept: 0 };
    const slope = sxx > 0 ? sxy / sxx : 0;
    const withBias = { slope, intercept: ym - slope * xm };
    for (const f of [without, withBias]) {
      let sse = 0;
      for (let i = 0; i < n; i++) sse += (y[i] - (f.slope * x[i] + f.intercept)) ** 2;
      f.mse = sse / n;
    }
    return { with: withBias, without };
  }

  function lineText(f) {
    const b = f.intercept === 0 ? "" : (f.intercept > 0 ? " + " : " − ") + fixed(Math.abs(f.intercept), 3);
    return `ŷ = ${fixed(f.slope, 3)}·x${b}`;
  }

  // The same rule as the library's claim bias_lowers_mse: the bias must lower the MSE by at least 1 %.
  // The explanation names the intercept the data were drawn with and the one the fit found, so it
  // never says the data "need" an intercept they were drawn without.
  function regressionVerdict(f, trueIntercept) {
    const m0 = f.without.mse, m1 = f.with.mse, scale = Math.max(m0, m1);
    if (scale <= 1e-20) return "Both fits are exact here: there is nothing for the bias to lower.";
    const lower = (m0 - m1) / m0;
    const fitted = `the fitted intercept is ${fixed(f.with.intercept, 3)}`;
    const drawn = trueIntercept === 0 ? "these data were drawn with intercept 0"
      : `these data were drawn with intercept ${fixed(trueIntercept, 3)}`;
    if (lower >= 0.01) {
      if (trueIntercept === 0) {
        return `Here the bias lowers the MSE by ${fixed(100 * lower, 1)} %, although ${drawn}: ${fitted}, ` +
          "which comes from this draw of the noise alone.";
      }
      return `Here the bias lowers the MSE by ${fixed(100 * lower, 1)} %: ${drawn} (${fitted}), ` +
        "which a line through the origin cannot reach.";
    }
    return `Here the bias lowers the MSE by only ${fixed(100 * Math.max(lower, 0), 2)} % (less than 1 %): ` +
      `${drawn} and ${fitted}; the line through the origin fits as well.`;
  }

  /** A <code> command line with one decimal per option value, each "--option value" kept on one line. */
  function commandLine(command, options) {
    const code = document.createElement("code");
    code.append(command);
    for (const [option, value] of options) {
      const pair = document.createElement("span");
      pair.className = "option";
      pair.textContent = `${option} ${argument(value, 1)}`;
      code.append(" ", pair);
    }
    return code;
  }

  function updateRegression() {
    const slope = Number(regInputs.slope.value), intercept = Number(regInputs.intercept.value);
    const sigma = Number(regInputs.noise.value);
    Object.values(regInputs).forEach((el) => showValue(el, 1));
    // the library's order of operations: slope·X + intercept + (0 + σ·gauss)
    const y = regX.map((x, i) => slope * x + intercept + sigma * regNoise[i]);
    const f = fits(regX, y);
    $("reg-mse-with").textContent = fixed(f.with.mse, 4);
    $("reg-mse-without").textContent = fixed(f.without.mse, 4);
    $("reg-line-with").textContent = lineText(f.with);
    $("reg-line-without").textContent = lineText(f.without);
    $("reg-verdict").textContent = regressionVerdict(f, intercept);
    if (regDraw === 0) {
      $("reg-source").replaceChildren(`Noise: NumPy's draws for seed ${REG.defaults.seed}. These are the data and MSEs of `,
        commandLine("biaslab regression", [["--slope", slope], ["--intercept", intercept], ["--noise", sigma]]), ".");
    } else {
      $("reg-source").textContent = `Noise: draw ${regDraw} of this page's own generator (mulberry32 and Box–Muller), ` +
        "not NumPy's random stream; the two fits are still exact least squares.";
    }
    drawRegression(y, f);
  }

  function drawRegression(y, f) {
    const x = regX, xr = [Math.min(...x), Math.max(...x)];
    const ends = [f.with, f.without].flatMap((g) => xr.map((v) => g.slope * v + g.intercept));
    const yr = range([...y, ...ends, 0], 0.06);
    let { ctx, w, h } = fitCanvas($("reg-plot"));
    let a = axes(ctx, w, h, xr, yr, ["x", "y"]);
    zeroLine(ctx, a, yr);
    ctx.fillStyle = "rgba(27, 31, 36, 0.7)";
    x.forEach((v, i) => { ctx.beginPath(); ctx.arc(a.X(v), a.Y(y[i]), 3.5, 0, 2 * Math.PI); ctx.fill(); });
    const fitLine = (g, color, dash) => {
      ctx.strokeStyle = color; ctx.lineWidth = 3; ctx.setLineDash(dash);
      ctx.beginPath(); ctx.moveTo(a.X(xr[0]), a.Y(g.slope * xr[0] + g.intercept));
      ctx.lineTo(a.X(xr[1]), a.Y(g.slope * xr[1] + g.intercept)); ctx.stroke(); ctx.setLineDash([]);
    };
    fitLine(f.with, COLORS.with, []);
    fitLine(f.without, COLORS.without, [9, 6]);
    legend(ctx, a, [["with bias", COLORS.with, []], ["without bias", COLORS.without, [9, 6]]], f.with.slope < 0 ? "tr" : "tl");

    ({ ctx, w, h } = fitCanvas($("reg-residuals")));
    const res = (g) => Array.from(x, (v, i) => y[i] - (g.slope * v + g.intercept));
    const rw = res(f.with), rn = res(f.without), rr = range([...rw, ...rn, 0], 0.1), ylabel = "residual y − ŷ";
    a = axes(ctx, w, h, xr, rr, ["x", ylabel]);
    zeroLine(ctx, a, rr);
    const dots = (r, color, square) => {
      ctx.fillStyle = color;
      x.forEach((v, i) => {
        if (square) ctx.fillRect(a.X(v) - 3, a.Y(r[i]) - 3, 6, 6);
        else { ctx.beginPath(); ctx.arc(a.X(v), a.Y(r[i]), 3.5, 0, 2 * Math.PI); ctx.fill(); }
      });
    };
    dots(rn, COLORS.without, true);
    dots(rw, COLORS.with, false);
    const marks = [["with bias", COLORS.with, false], ["without bias", COLORS.without, true]];
    if (!markerLegend(ctx, a, w, labelEnd(ctx, ylabel), marks)) {
      legend(ctx, a, [["with bias ●", COLORS.with, []], ["without bias ■", COLORS.without, [9, 6]]], "tr");
    }
  }

  /** A one-line legend of dot (or square) markers above the plot area, right-aligned, after ``free``
   *  (where the y-axis label ends): it covers no data. Returns false, drawing nothing, where it does not fit. */
  function markerLegend(ctx, a, w, free, items) {
    ctx.font = canvasFont(0.75);
    const gap = 14, mark = 8, widths = items.map(([text]) => mark + 5 + ctx.measureText(text).width);
    let x = w - 4 - widths.reduce((sum, v) => sum + v, 0) - gap * (items.length - 1);
    if (x < free + gap) return false;
    const y = 2 + parseFloat(ctx.font) / 2 + 1;  // the line of the y-axis label
    items.forEach(([text, color, square], i) => {
      ctx.fillStyle = color;
      if (square) ctx.fillRect(x + 1, y - 3, 6, 6);
      else { ctx.beginPath(); ctx.arc(x + 4, y, 3.5, 0, 2 * Math.PI); ctx.fill(); }
      ctx.fillStyle = COLORS.ink; ctx.textAlign = "left"; ctx.textBaseline = "middle";
      ctx.fillText(text, x + mark + 5, y);
      x += widths[i] + gap;
    });
    return true;
  }

  /** A legend in the corner the data leave free ("tl", "tr", "bl" or "br"). */
  function legend(ctx, a, items, corner) {
    ctx.font = canvasFont(0.75);
    const lh = parseFloat(ctx.font) * 1.4, height = lh * items.length + 8;
    const width = Math.max(...items.map(([t]) => ctx.measureText(t).width)) + 44;
    const x = corner[1] === "r" ? a.box.r - 8 : a.box.l + 8 + width;
    const top = corner[0] === "t" ? a.box.t + 6 : a.box.b - 6 - height;
    ctx.fillStyle = "rgba(255, 255, 255, 0.9)";
    ctx.fillRect(x - width, top, width, height);
    items.forEach(([text, color, dash], i) => {
      const y = top + 4 + lh * (i + 0.5);
      ctx.strokeStyle = color; ctx.lineWidth = 3; ctx.setLineDash(dash);
      ctx.beginPath(); ctx.moveTo(x - width + 6, y); ctx.lineTo(x - width + 34, y); ctx.stroke(); ctx.setLineDash([]);
      ctx.fillStyle = COLORS.ink; ctx.textAlign = "left"; ctx.textBaseline = "middle";
      ctx.fillText(text, x - width + 40, y);
    });
  }

  $("reg-redraw").addEventListener("click", () => {
    regDraw += 1;
    regNoise = gaussians(regX.length, (DATA.seed * 7919 + regDraw) >>> 0);
    updateRegression();
  });
  $("reg-classic").addEventListener("click", () => {
    regDraw = 0;
    regNoise = Float64Array.from(REG.unit_noise);
    updateRegression();
  });

  /* ---------- 4. conv on a real image ---------- */

  const CONV = DATA.conv;
  /** The input is (IH, IW) grey, or (IC, IH, IW) for a notebook layer with IC input channels; the maps
   *  are (H, W): the image's size unless the layer's stride or padding changes it. */
  const [IH, IW] = CONV.image.shape.slice(-2), IC = CONV.image.shape.length === 3 ? CONV.image.shape[0] : 1;
  const [H, W] = CONV.map_shape || [IH, IW];
  const image = (() => {
    const raw = decode(CONV.image), out = new Float64Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw[i] / CONV.image.scale; // k/255 exactly as NumPy divides
    return out;
  })();
  const convInputs = { kernel: $("conv-kernel"), bias: $("conv-bias") };
  const preCanvas = $("conv-pre"), mapCanvas = $("conv-map");
  const selected = { row: Math.floor(H / 2), col: Math.floor(W / 2) };
  const sums = new Map();
  /** A kernel's weights as (C, kH, kW): the page's are one grey (kH, kW) plane. */
  const planes = (k) => (Array.isArray(k.weights[0][0]) ? k.weights : [k.weights]);
  /** Stride and zero padding before the first row and column: a notebook layer's own, else "same", stride 1. */
  function geometryOf(k) {
    if (CONV.geometry) return { stride: CONV.geometry.stride, top: CONV.geometry.pad_before[0], left: CONV.geometry.pad_before[1] };
    return { stride: [1, 1], top: Math.floor((k.weights.length - 1) / 2), left: Math.floor((k.weights[0].length - 1) / 2) };
  }

  /** Σ(input * kernel), "same" zero padding, taps in row-major order (data.py's browser_weighted_sum),
   *  then the library's own value wherever the two could fall on different sides of a slider threshold.
   *  A notebook layer's kernels come with the library's sums for every unit (k.sums). */
  function weightedSum(k) {
    if (sums.has(k.name)) return sums.get(k.name);
    if (k.sums) { sums.set(k.name, decode(k.sums)); return sums.get(k.name); }
    const kh = k.weights.length, kw = k.weights[0].length, wts = k.weights.flat();
    const top = Math.floor((kh - 1) / 2), left = Math.floor((kw - 1) / 2);
    const z = new Float64Array(H * W);
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < W; c++) {
        let s = 0;
        for (let i = 0; i < kh; i++) {
          const rr = r + i - top;
          if (rr < 0 || rr >= H) continue;
          for (let j = 0; j < kw; j++) {
            const cc = c + j - left;
            if (cc < 0 || cc >= W) continue;
            s += image[rr * W + cc] * wts[i * kw + j];
          }
        }
        z[r * W + c] = s;
      }
    }
    const idx = decode(k.fix_index), val = decode(k.fix_value);
    for (let i = 0; i < idx.length; i++) z[idx[i]] = val[i];
    sums.set(k.name, z);
    return z;
  }

  /** A diverging colour map with a black centre, t ∈ [0, 1]: blue below ½ (off), black at ½, orange to yellow above. */
  const STOPS = [[0, [170, 215, 255]], [0.25, [40, 120, 215]], [0.5, [12, 12, 12]], [0.75, [215, 95, 15]], [1, [255, 225, 130]]];
  function colourAt(t) {
    let s = 0;
    while (s < STOPS.length - 2 && t > STOPS[s + 1][0]) s++;
    const [t0, c0] = STOPS[s], [t1, c1] = STOPS[s + 1], u = (t - t0) / (t1 - t0);
    const [r, g, b] = c0.map((v, j) => Math.round(v + u * (c1[j] - v)));
    return (255 << 24) | (b << 16) | (g << 8) | r; // RGBA bytes, little-endian
  }

  /** Where value v sits on a scale from −m to m: square-root spacing, so values near 0 stay visible. */
  const position = (v, m) => 0.5 + 0.5 * Math.sign(v) * Math.sqrt(Math.min(1, Math.abs(v) / m));

  /** Colours of LUT_SIZE values evenly spaced over [−m, m]; the middle entry is exactly 0. */
  const LUT_SIZE = 4095;
  const luts = new Map();
  function valueLut(m) {
    if (!luts.has(m)) {
      const lut = new Uint32Array(LUT_SIZE), half = (LUT_SIZE - 1) / 2;
      for (let j = 0; j < LUT_SIZE; j++) lut[j] = colourAt(position(((j - half) / half) * m, m));
      luts.set(m, lut);
    }
    return luts.get(m);
  }

  const currentKernel = () => CONV.kernels.find((k) => k.name === convInputs.kernel.value);
  /** A notebook layer has one bias per output channel (kernel), starting at the layer's values; the
   *  slider moves the chosen channel's, and hooks.onBias hears every change. The page has one bias. */
  const kernelBias = CONV.kernels.map((k) => (typeof k.bias === "number" ? k.bias : null));
  function currentBias() {
    const own = kernelBias[CONV.kernels.indexOf(currentKernel())];
    return own === null ? Number(convInputs.bias.value) : own;
  }
  convInputs.bias.addEventListener("input", () => { // runs before updateConv (registered first)
    const index = CONV.kernels.indexOf(currentKernel());
    if (kernelBias[index] === null) return;
    kernelBias[index] = Number(convInputs.bias.value);
    if (hooks.onBias) hooks.onBias(kernelBias.slice());
  });
  /** Set every channel's bias (from Python); redraws. */
  function setBiases(values) {
    values.forEach((v, i) => { if (kernelBias[i] !== null && typeof v === "number") kernelBias[i] = v; });
    updateConv();
  }
  /** One scale for both maps, wide enough for Σ + b at every slider position: nothing is clipped. */
  const scaleOf = (k) => Math.max(Math.abs(k.sum_min + CONV.bias_slider.min), Math.abs(k.sum_max + CONV.bias_slider.max));

  preCanvas.width = mapCanvas.width = W; preCanvas.height = mapCanvas.height = H;
  const preCtx = preCanvas.getContext("2d"), mapCtx = mapCanvas.getContext("2d");
  const preImage = preCtx.createImageData(W, H), mapImage = mapCtx.createImageData(W, H);
  const prePixels = new Uint32Array(preImage.data.buffer), mapPixels = new Uint32Array(mapImage.data.buffer);
  const timing = { lastConvPaintMs: 0 };

  function paintConv() {
    const t0 = performance.now();
    const k = currentKernel(), z = weightedSum(k), b = currentBias();
    const m = scaleOf(k), lut = valueLut(m), toIndex = (LUT_SIZE - 1) / (2 * m), zeroColour = lut[(LUT_SIZE - 1) / 2];
    let active = 0;
    for (let i = 0; i < z.length; i++) {
      let j = ((z[i] + b + m) * toIndex + 0.5) | 0;
      j = j < 0 ? 0 : j >= LUT_SIZE ? LUT_SIZE - 1 : j;
      prePixels[i] = lut[j];
      if (z[i] > -b) { active++; mapPixels[i] = lut[j]; } else mapPixels[i] = zeroColour; // as KernelMap.stats: Σ > −b
    }
    preCtx.putImageData(preImage, 0, 0);
    mapCtx.putImageData(mapImage, 0, 0);
    $("conv-active-fraction").textContent = percent(active / z.length);
    $("conv-active-fraction").dataset.count = String(active);
    timing.lastConvPaintMs = performance.now() - t0;
  }

  function updateConv() {
    const k = currentKernel(), b = currentBias();
    if (kernelBias[CONV.kernels.indexOf(k)] !== null) { // a notebook layer's channel: its own bias, exactly
      convInputs.bias.value = String(b);
      $("conv-bias-value").textContent = sig(b, 4);
    } else showValue(convInputs.bias, 2);
    $("conv-threshold").textContent =
      `With b = ${fixed(b, 2)} a unit fires where Σ(input * kernel) > ${fixed(-b, 2)}; ` +
      `Σ runs from ${sig(k.sum_min, 4)} to ${sig(k.sum_max, 4)} for ${k.name}.`;
    paintConv();
    drawKernel(k);
    drawScale(k);
    explainPixel();
  }

  function drawKernel(k) {
    const ps = planes(k);
    $("conv-weights").innerHTML = ps.map((plane, c) => {
      const rows = plane.map((row) => "<tr>" + row.map((v) => `<td>${sig(v, 3)}</td>`).join("") + "</tr>").join("");
      return `<table><caption>Kernel ${k.name}${ps.length > 1 ? `, input channel ${c}` : ""}</caption>${rows}</table>`;
    }).join("");
  }

  /** Tick values for the colour bar: 0, ±m and round values between, as many as fit without overlap. */
  function scaleTicks(ctx, m, width) {
    const round = [];
    for (let e = -3; e <= 3; e++) for (const d of [1, 2, 5]) if (d * 10 ** e < m / 1.5) round.push(d * 10 ** e);
    const ticks = [0, m, -m], x = (v) => position(v, m) * width;
    for (const v of round.reverse()) {
      const gap = ctx.measureText(sig(v, 3)).width + 10;
      if (ticks.every((t) => Math.abs(x(v) - x(t)) >= gap)) ticks.push(v, -v);
    }
    return ticks;
  }

  function drawScale(k) {
    const { ctx, w, h } = fitCanvas($("conv-scale"));
    const m = scaleOf(k), barH = h * 0.42, pad = 16, width = w - 2 * pad;
    for (let x = 0; x < width; x++) {
      const c = colourAt(x / (width - 1));
      ctx.fillStyle = `rgb(${c & 255},${(c >> 8) & 255},${(c >> 16) & 255})`;
      ctx.fillRect(pad + x, 0, 1.5, barH);
    }
    ctx.strokeStyle = COLORS.muted; ctx.strokeRect(pad, 0, width, barH);
    ctx.fillStyle = COLORS.ink; ctx.font = canvasFont(0.7); ctx.textBaseline = "top";
    for (const v of scaleTicks(ctx, m, width)) {
      const x = pad + position(v, m) * width;
      ctx.textAlign = v === -m ? "left" : v === m ? "right" : "center";
      ctx.fillRect(x - 0.5, barH, 1, 5);
      ctx.fillText(sig(v, 3), v === -m ? x - pad + 2 : v === m ? x + pad - 2 : x, barH + 6);
    }
    $("conv-scale-caption").textContent =
      `One colour scale for both maps: Σ + b (left) and relu(Σ + b) (right), from ${sig(-m, 3)} to ${sig(m, 3)}, ` +
      "spaced by square root so that values near 0 stay visible. Blue: below 0, the unit is off; black: exactly 0; " +
      "orange to yellow: above 0, it fires. The scale covers every value at any bias, so nothing is clipped.";
  }

  function explainPixel() {
    const k = currentKernel(), z = weightedSum(k), b = currentBias(), ps = planes(k);
    const { row, col } = selected, kh = ps[0].length, kw = ps[0][0].length;
    const { stride, top, left } = geometryOf(k);
    const r0 = row * stride[0] - top, c0 = col * stride[1] - left; // the input under the kernel's first tap
    const grid = (title, cell, ch) => {
      let html = `<table><caption>${title}${ps.length > 1 ? ` (channel ${ch})` : ""}</caption>`;
      for (let i = 0; i < kh; i++) {
        html += "<tr>";
        for (let j = 0; j < kw; j++) {
          const r = r0 + i, c = c0 + j, inside = r >= 0 && r < IH && c >= 0 && c < IW;
          const p = inside ? image[(ch * IH + r) * IW + c] : 0, v = cell(p, ps[ch][i][j]);
          html += `<td class="${inside ? "" : "pad"}" title="${inside ? "" : "zero padding"}">${fixed(v, 3)}</td>`;
        }
        html += "</tr>";
      }
      return html + "</table>";
    };
    const grids = ps.map((_, ch) => `<div class="grids">${grid("input patch", (p) => p, ch)}<span class="op">×</span>` +
      `${grid("kernel", (p, w) => w, ch)}<span class="op">=</span>${grid("input * kernel", (p, w) => p * w, ch)}</div>`).join("");
    const sum = z[row * W + col], pre = sum + b, out = Math.max(pre, 0), on = sum > -b;
    const el = $("conv-explain");
    el.dataset.row = String(row); el.dataset.col = String(col); el.dataset.kernel = k.name;
    el.dataset.sum = String(sum); el.dataset.pre = String(pre); el.dataset.output = String(out);
    el.innerHTML =
      `<p><strong>Output (${row}, ${col})</strong> of ${k.name} = relu(Σ(input * kernel) + b)` +
      `${r0 < 0 || c0 < 0 || r0 + kh > IH || c0 + kw > IW ? " — the kernel hangs over the zero padding (striped cells)" : ""}:</p>` +
      grids +
      "<ol>" +
      `<li>Σ(input * kernel) = <span class="sum">${sig(sum, 6)}</span></li>` +
      `<li>+ b: ${sig(sum, 6)} ${b < 0 ? "−" : "+"} ${fixed(Math.abs(b), 2)} = <span class="pre">${sig(pre, 4)}</span></li>` +
      `<li>relu(${sig(pre, 4)}) = <span class="output">${sig(out, 4)}</span>: ` +
      (on ? `<span class="on">on</span> (Σ &gt; −b = ${fixed(-b, 2)})` : `<span class="off">off</span> (Σ ≤ −b = ${fixed(-b, 2)})`) +
      "</li></ol>";
    for (const marker of root.querySelectorAll("#conv .marker")) {
      marker.style.left = `${((col + 0.5) / W) * 100}%`;
      marker.style.top = `${((row + 0.5) / H) * 100}%`;
    }
  }

  /** The map pixel under the pointer (the image fills the canvas's content box, inside its border). */
  function selectFromPointer(event) {
    const canvas = event.currentTarget, rect = canvas.getBoundingClientRect();
    const x = event.clientX - rect.left - canvas.clientLeft, y = event.clientY - rect.top - canvas.clientTop;
    selected.col = Math.min(W - 1, Math.max(0, Math.floor((x / canvas.clientWidth) * W)));
    selected.row = Math.min(H - 1, Math.max(0, Math.floor((y / canvas.clientHeight) * H)));
    explainPixel();
  }

  function selectFromKeys(event) {
    const step = event.shiftKey ? 10 : 1;
    const moves = { ArrowLeft: [0, -step], ArrowRight: [0, step], ArrowUp: [-step, 0], ArrowDown: [step, 0] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    selected.row = Math.min(H - 1, Math.max(0, selected.row + move[0]));
    selected.col = Math.min(W - 1, Math.max(0, selected.col + move[1]));
    explainPixel();
  }

  for (const canvas of [preCanvas, mapCanvas]) {
    canvas.tabIndex = 0;
    canvas.addEventListener("click", selectFromPointer);
    canvas.addEventListener("keydown", selectFromKeys);
  }

  for (const k of CONV.kernels) {
    const option = document.createElement("option");
    option.value = k.name;
    option.textContent = k.name.startsWith("random-") ? `${k.name} (He-normal, seed ${DATA.seed})` : k.name;
    convInputs.kernel.appendChild(option);
  }
  convInputs.kernel.value = CONV.kernels.some((k) => k.name === "sobel-x") ? "sobel-x" : CONV.kernels[0].name;
  const [oh, ow] = CONV.original_size;
  const slider = CONV.bias_slider; // the range the data asks for (a notebook layer's is wider)
  convInputs.bias.min = String(slider.min); convInputs.bias.max = String(slider.max); convInputs.bias.step = String(slider.step);
  $("conv-intro").textContent = CONV.intro ||
    `The picture ${CONV.source} (${H}×${W}${oh !== H || ow !== W ? `, block-averaged from ${oh}×${ow}` : ""}, grey, ` +
    "values in [0, 1]), prepared as biaslab conv prepares it. Each output pixel is a unit relu(Σ(patch * kernel) + b) " +
    "over the 3×3 patch around it (\"same\" zero padding). The weighted sums are those of biaslab.conv.weighted_sum; " +
    "the bias decides which units fire. Click a pixel, or focus a map and use the arrow keys.";

  /* ---------- 5. a saved run (biaslab explore --from DIR) ---------- */

  const RUN = DATA.run;
  const runInputs = { config: $("run-config"), shift: $("run-shift"), level: $("run-level") };
  const SHIFT_LABEL = {
    brightness: (v) => `brightness ${v >= 0 ? "+" : "−"}${sig(Math.abs(v), 3)}`,
    contrast: (v) => `contrast ×${sig(v, 3)}`,
    noise: (v) => `noise σ = ${sig(v, 3)}`,
  };
  const shiftLabel = (kind, v) => (SHIFT_LABEL[kind] || ((x) => `${kind} ${sig(x, 3)}`))(v);
  const dB = (v) => (v === null ? "n/a" : `${fixed(v, 2)} dB`);

  function showClaims(claims) {
    // the claim's own verdict; files written before verdicts existed derive it from holds
    const CLASS = { holds: "holds", refuted: "fails", inconclusive: "inconclusive", "not measured": "unknown" };
    const derived = { true: "holds", false: "refuted", null: "not measured" };
    $("run-claims").innerHTML = "";
    for (const c of claims) {
      const li = document.createElement("li"), badge = document.createElement("span");
      const text = c.verdict || derived[String(c.holds)], cls = CLASS[text] || "unknown";
      badge.className = `verdict ${cls}`;
      badge.textContent = `${text}: `;
      li.append(badge, c.text);
      $("run-claims").appendChild(li);
    }
  }

  function tableRows(rows) {
    $("run-table").innerHTML = "";
    for (const [name, value, colour] of rows) {
      const tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
      th.scope = "row"; th.textContent = name; if (colour) th.style.color = colour;
      td.textContent = value;
      tr.append(th, td);
      $("run-table").appendChild(tr);
    }
  }

  function lines(ctx, a, xs, series) {
    for (const [ys, colour, dash] of series) {
      ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = 3; ctx.setLineDash(dash);
      ctx.beginPath();
      let started = false;
      xs.forEach((x, i) => {
        if (ys[i] === null) { started = false; return; }
        if (started) ctx.lineTo(a.X(x), a.Y(ys[i])); else { ctx.moveTo(a.X(x), a.Y(ys[i])); started = true; }
      });
      ctx.stroke(); ctx.setLineDash([]);
      xs.forEach((x, i) => { if (ys[i] !== null) { ctx.beginPath(); ctx.arc(a.X(x), a.Y(ys[i]), 4, 0, 2 * Math.PI); ctx.fill(); } });
    }
  }

  function marker(ctx, a, x) {
    ctx.strokeStyle = COLORS.ink; ctx.lineWidth = 2; ctx.setLineDash([6, 4]);
    ctx.beginPath(); ctx.moveTo(a.X(x), a.box.t); ctx.lineTo(a.X(x), a.box.b); ctx.stroke(); ctx.setLineDash([]);
  }

  function updateDenoiseRun() {
    const i = Number(runInputs.level.value), sigma = RUN.sigmas[i], p = RUN.psnr;
    $("run-level-value").textContent = sig(sigma, 4);
    tableRows([["noisy input", dB(p.noisy[i])], ["with bias", dB(p.with_bias[i]), COLORS.without],
               ["bias-free", dB(p.bias_free[i]), COLORS.with],
               ["bias-free − with bias", signed(RUN.gain_db[i], 2, " dB")]]);
    $("run-where").textContent = sigma <= RUN.train_sigma_max
      ? `σ = ${sig(sigma, 4)} is inside the training range σ ≤ ${sig(RUN.train_sigma_max, 4)}.`
      : `σ = ${sig(sigma, 4)} is outside the training range: ${sig(sigma / RUN.train_sigma_max, 3)}× its maximum ${sig(RUN.train_sigma_max, 4)}.`;
    const { ctx, w, h } = fitCanvas($("run-plot"));
    const xs = RUN.sigmas, all = [...p.noisy, ...p.with_bias, ...p.bias_free].filter((v) => v !== null);
    const xr = [Math.min(...xs), Math.max(...xs)], yr = range(all, 0.08);
    const a = axes(ctx, w, h, xr, yr, ["noise σ (0–255)", "PSNR (dB)"]);
    ctx.fillStyle = "rgba(11, 98, 196, 0.08)";
    ctx.fillRect(a.X(xr[0]), a.box.t, a.X(Math.min(RUN.train_sigma_max, xr[1])) - a.X(xr[0]), a.box.b - a.box.t);
    lines(ctx, a, xs, [[p.noisy, COLORS.muted, [3, 4]], [p.with_bias, COLORS.without, [9, 6]], [p.bias_free, COLORS.with, []]]);
    marker(ctx, a, sigma);
    legend(ctx, a, [["bias-free", COLORS.with, []], ["with bias", COLORS.without, [9, 6]], ["noisy input", COLORS.muted, [3, 4]]], "tr");
  }

  function updateAblateRun() {
    const cfg = RUN.configurations[runInputs.config.selectedIndex], shift = cfg.shifts[runInputs.shift.value];
    const i = Number(runInputs.level.value), kind = runInputs.shift.value, levels = shift.levels;
    $("run-level-value").textContent = shiftLabel(kind, levels[i]);
    const names = Object.keys(shift.variants), palette = [COLORS.with, COLORS.without, "#15803d", "#7c3aed"];
    const band = (v) => (v.band === "ci" ? `${Math.round(100 * (v.confidence || 0.95))}% CI` : "± 1 std");
    tableRows(names.map((n, k) => {
      const v = shift.variants[n];
      return [n, v.mean[i] === null ? "n/a" : `${fixed(v.mean[i], 4)} (${band(v)} ${fixed(v.low[i], 4)}–${fixed(v.high[i], 4)})`, palette[k % 4]];
    }));
    $("run-where").textContent = `Level ${i + 1} of ${levels.length} (${i === 0 ? "no shift" : i === levels.length - 1 ? "the strongest" : "between"}); mean test accuracy over ${cfg.seeds} seeds.`;
    const { ctx, w, h } = fitCanvas($("run-plot"));
    const xs = levels.map((_, k) => k);
    const all = names.flatMap((n) => [...shift.variants[n].low, ...shift.variants[n].high]).filter((v) => v !== null);
    const a = axes(ctx, w, h, [0, Math.max(1, xs.length - 1)], range(all, 0.08), [`${kind} (none → strongest)`, "test accuracy"],
      xs.map((k) => [k, shiftLabel(kind, levels[k]).replace(/^\S+ /, "")]));
    names.forEach((n, k) => {
      const v = shift.variants[n], colour = palette[k % 4];
      ctx.fillStyle = colour; ctx.globalAlpha = 0.15; ctx.beginPath();
      xs.forEach((x) => ctx.lineTo(a.X(x), a.Y(v.high[x] ?? v.mean[x] ?? 0)));
      [...xs].reverse().forEach((x) => ctx.lineTo(a.X(x), a.Y(v.low[x] ?? v.mean[x] ?? 0)));
      ctx.closePath(); ctx.fill(); ctx.globalAlpha = 1;
      lines(ctx, a, xs, [[v.mean, colour, k ? [9, 6] : []]]);
    });
    marker(ctx, a, i);
    legend(ctx, a, names.map((n, k) => [n, palette[k % 4], k ? [9, 6] : []]), "bl");
    $("run-caption").textContent = `Mean test accuracy of each variant under ${kind} shift, with its band (${band(shift.variants[names[0]])}).`;
    showClaims(shift.claims);
  }

  function setupRun() {
    $("run").hidden = false; $("run-link").hidden = false;
    if (RUN.command === "denoise") {
      $("run-config-control").hidden = true; $("run-shift-control").hidden = true;
      $("run-level-label").textContent = "Noise σ (0–255)";
      runInputs.level.max = String(RUN.sigmas.length - 1);
      runInputs.level.value = String(RUN.sigmas.length - 1);
      $("run-intro").textContent = "A biaslab denoise run: the network with biases and its bias-free twin, trained on " +
        `σ ≤ ${sig(RUN.train_sigma_max, 4)} and tested up to σ = ${sig(Math.max(...RUN.sigmas), 4)}. Move σ past the ` +
        "training range (shaded) and compare the two networks' PSNR, as stored in the run's results.json.";
      $("run-caption").textContent = "Mean PSNR over the test crops at each σ; the shaded band is the training range.";
      showClaims(RUN.claims);
      onInput([runInputs.level], updateDenoiseRun);
      return updateDenoiseRun;
    }
    for (const cfg of RUN.configurations) runInputs.config.add(new Option(cfg.name, cfg.name));
    const fillShifts = () => {
      const cfg = RUN.configurations[runInputs.config.selectedIndex], previous = runInputs.shift.value;
      runInputs.shift.innerHTML = "";
      for (const kind of Object.keys(cfg.shifts)) runInputs.shift.add(new Option(kind, kind));
      if (previous in cfg.shifts) runInputs.shift.value = previous;
      fillLevels();
    };
    const fillLevels = () => {
      const cfg = RUN.configurations[runInputs.config.selectedIndex];
      runInputs.level.max = String(cfg.shifts[runInputs.shift.value].levels.length - 1);
      runInputs.level.value = runInputs.level.max;
      updateAblateRun();
    };
    $("run-level-label").textContent = "Shift level";
    $("run-intro").textContent = "A biaslab ablate run: the same network trained with and without biases over several " +
      "seeds, tested on inputs shifted in brightness, contrast or noise. Move the shift and compare the variants' " +
      "accuracies, as stored in the run's results.json.";
    onInput([runInputs.config], fillShifts);
    onInput([runInputs.shift], fillLevels);
    onInput([runInputs.level], updateAblateRun);
    fillShifts();
    return updateAblateRun;
  }

  const updateRun = RUN ? setupRun() : () => {};

  /* ---------- wiring ---------- */

  onInput(Object.values(reluInputs), updateRelu);
  onInput(Object.values(planeInputs), updatePlane);
  onInput(Object.values(regInputs), updateRegression);
  onInput(Object.values(convInputs), updateConv);

  function drawAll() { updateRelu(); updatePlane(); updateRegression(); updateConv(); updateRun(); }
  let pending = false;
  window.addEventListener("resize", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; drawAll(); });
  });
  drawAll();
  timing.readyMs = performance.now(); // since navigation started
  const api = { timing, activations: ACTIVATIONS, format: { fixed, sig, signed }, drawAll, setBiases };
  window.biaslabExplore = api; // for the tests and benchmarks/bench_explore.py
  (root.body || root.host).dataset.ready = "true";
  return api;
}

if (typeof BIASLAB_WIDGET === "undefined") { // the page: its data is embedded beside this script
  startExplorer(document, JSON.parse(document.getElementById("explore-data").textContent));
}
