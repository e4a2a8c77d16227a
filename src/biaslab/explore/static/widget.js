/* biaslab explore in a notebook: the anywidget front end of biaslab.explore.widget.
 *
 * biaslab.explore.notebook loads this module as `const BIASLAB_WIDGET = true;` + explore.js + this
 * file, so startExplorer is the page's own code (no second copy). The page's panels (the <main>
 * of explore.html) and its stylesheet are mounted in a shadow root, so they neither take nor
 * give styles to the notebook around them. Moving a layer's bias slider sets the model's `bias`
 * (w.bias in Python); setting w.bias in Python moves the sliders.
 */
function render({ model, el }) {
  const shadow = el.shadowRoot || el.attachShadow({ mode: "open" });
  shadow.innerHTML = `<style>${model.get("_page_css")}</style>${model.get("_page_html")}`;
  const panels = model.get("panels");
  for (const section of shadow.querySelectorAll("main > section.panel")) {
    if (section.id !== "run") section.hidden = !panels.includes(section.id);
  }
  const api = startExplorer(shadow, model.get("_data"), {
    onBias(values) {
      model.set("bias", values);
      model.save_changes();
    },
  });
  const fromPython = () => api.setBiases(model.get("bias"));
  fromPython(); // a second view of the same widget starts where the first left the biases
  model.on("change:bias", fromPython);
  // the cell's output may be laid out after render(): redraw the canvases whenever its size changes
  let pending = false;
  const observer = new ResizeObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; api.drawAll(); });
  });
  observer.observe(el);
  return () => {
    observer.disconnect();
    model.off("change:bias", fromPython);
  };
}

export default { render };
