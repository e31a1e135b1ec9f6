// ClusterMap: every conversation as a point (WebGL through regl-scatterplot), coloured by a category code
// with a legend; zoom, pan, hover text, click and lasso (shift + drag) selection.
// Traits (see clio_lab/widgets/map.py): xy (float32 bytes, x0 y0 x1 y1 ..., in [-1, 1]), codes (uint16
// bytes, one colour index per point), palette, legend, labels (hover texts), highlight (indices set from
// Python), selection (indices set here), height, point_size. Texts are shown with textContent only.
import createRegl from "regl";
import createScatterplot, { createRenderer } from "regl-scatterplot";

const GL_EXTENSIONS = ["OES_texture_float", "OES_element_index_uint", "WEBGL_color_buffer_float", "EXT_float_blend"];

// A renderer the size of the map. regl-scatterplot's default one draws into a canvas as large as the window and
// copies the middle of it onto the map: every redraw then clears, shades and reads back pixels nobody sees, and
// the read-back is most of a frame (benchmarks/widget_map.py --profile). No multisampling either: points are
// drawn into a float framebuffer, which is never multisampled, so it only cost a resolve per frame.
function mapRenderer(width, height) {
  const canvas = document.createElement("canvas");
  const gl = canvas.getContext("webgl", { antialias: false, preserveDrawingBuffer: true });
  const extensions = GL_EXTENSIONS.filter((name) => gl.getExtension(name));
  const renderer = createRenderer({ regl: createRegl({ gl, extensions }), canvas });
  renderer.resize(width, height);
  return renderer;
}

function floats(view) {
  if (!view || !view.byteLength) return new Float32Array(0);
  return new Float32Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

function uint16s(view) {
  if (!view || !view.byteLength) return new Uint16Array(0);
  return new Uint16Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render({ model, el: root }) {
  root.classList.add("clio-map");
  const frame = el("div", "clio-map-frame");
  frame.style.height = `${model.get("height")}px`;
  const canvas = el("canvas", "clio-map-canvas");
  const tip = el("div", "clio-map-tip");
  tip.style.display = "none";
  const legend = el("div", "clio-map-legend");
  const status = el("div", "clio-map-status");
  frame.append(canvas, tip);
  root.append(frame, legend, status);

  let plot = null;
  let renderer = null;
  let nPoints = 0;
  const started = performance.now();

  function drawLegend() {
    legend.replaceChildren();
    const title = model.get("legend_title");
    if (title) legend.append(el("div", "clio-map-legend-title", title));
    for (const item of model.get("legend") || []) {
      const row = el("div", "clio-map-legend-row");
      const swatch = el("span", "clio-map-swatch");
      swatch.style.background = item.color;
      row.append(swatch, el("span", "clio-map-legend-label", item.label), el("span", "clio-map-legend-count",
        String(item.count)));
      legend.append(row);
    }
  }

  function points() {
    const xy = floats(model.get("xy"));
    const codes = uint16s(model.get("codes"));
    nPoints = xy.length / 2;
    const x = new Float32Array(nPoints);
    const y = new Float32Array(nPoints);
    const z = new Float32Array(nPoints);
    for (let i = 0; i < nPoints; i++) {
      x[i] = xy[2 * i];
      y[i] = xy[2 * i + 1];
      z[i] = codes.length === nPoints ? codes[i] : 0;
    }
    return { x, y, valueA: z };
  }

  function colours() {
    const palette = model.get("palette") || [];
    return palette.length ? palette : ["#4c78a8"];
  }

  function setStatus() {
    const sel = (model.get("selection") || []).length;
    status.textContent = `${nPoints.toLocaleString()} conversations` + (sel ? ` · ${sel} selected` : "") +
      " · drag to pan, scroll to zoom, shift + drag to lasso";
  }

  async function init() {
    const { width } = frame.getBoundingClientRect();
    const data = points();
    renderer = mapRenderer(Math.max(width, 100), model.get("height"));
    plot = createScatterplot({
      renderer,
      // above 50,000 points: square points, no alpha blending (regl-scatterplot's fast path)
      performanceMode: nPoints > 50000,
      canvas,
      width: Math.max(width, 100),
      height: model.get("height"),
      pointSize: model.get("point_size"),
      pointSizeSelected: 1,
      pointOutlineWidth: 1,
      backgroundColor: "#ffffff",
      pointColor: colours(),
      pointColorActive: colours(),
      pointColorHover: "#000000",
      colorBy: "valueA",
      opacityInactiveMax: 0.12,
      lassoColor: "#333333",
    });
    plot.subscribe("pointOver", (i) => {
      const labels = model.get("labels") || [];
      const text = labels[i];
      if (!text) return;
      tip.textContent = text;
      const [px, py] = plot.getScreenPosition(i) || [0, 0];
      tip.style.left = `${Math.min(px + 12, frame.clientWidth - 260)}px`;
      tip.style.top = `${py + 12}px`;
      tip.style.display = "block";
    });
    plot.subscribe("pointOut", () => { tip.style.display = "none"; });
    plot.subscribe("select", ({ points: picked }) => {
      model.set("selection", Array.from(picked));
      model.save_changes();
      setStatus();
    });
    plot.subscribe("deselect", () => {
      model.set("selection", []);
      model.save_changes();
      setStatus();
    });
    // tests and the benchmark reach the plot here (screen positions of points, redraw timing)
    Object.defineProperty(root, "__clioPlot", { value: plot, configurable: true });
    await plot.draw(data, { zDataType: "categorical" });
    root.dataset.firstDrawMs = String(Math.round(performance.now() - started));
    applyHighlight();
    drawLegend();
    setStatus();
  }

  function applyHighlight() {
    if (!plot) return;
    const idx = model.get("highlight") || [];
    if (idx.length) plot.select(idx, { preventEvent: true });
    else plot.deselect({ preventEvent: true });
  }

  model.on("change:xy", async () => { if (plot) { await plot.draw(points(), { zDataType: "categorical" }); setStatus(); } });
  model.on("change:codes", async () => {
    if (!plot) return;
    plot.set({ pointColor: colours(), pointColorActive: colours() });
    await plot.draw(points(), { zDataType: "categorical", preventFilterReset: true });
    applyHighlight();
  });
  model.on("change:palette", () => { if (plot) plot.set({ pointColor: colours(), pointColorActive: colours() }); });
  model.on("change:legend", drawLegend);
  model.on("change:legend_title", drawLegend);
  model.on("change:highlight", applyHighlight);
  model.on("change:selection", setStatus);

  const observer = new ResizeObserver(() => {
    if (!plot) return;
    const { width } = frame.getBoundingClientRect();
    if (width > 0) {
      renderer.resize(width, model.get("height"));
      plot.set({ width, height: model.get("height") });
    }
  });
  observer.observe(frame);
  // the element is attached to the page after render() returns; wait a frame so that it has a width
  requestAnimationFrame(() => { init(); });
  return () => {
    observer.disconnect();
    if (plot) plot.destroy();
    if (renderer) renderer.destroy();  // a renderer passed in is not the plot's to destroy
  };
}

export default { render };
