/* vasomics 3D vessel tree viewer: a dependency-free 2D-canvas renderer (works offline and
   with software rendering). Data: <script type="application/json" id="tree-data">.
   Drag to rotate, wheel to zoom, double-click to reset; colour by name, radius or any
   per-segment feature. Points are physical LPS mm. */
(function () {
  "use strict";
  function b64(s, T) {
    var bin = atob(s), n = bin.length, u8 = new Uint8Array(n);
    for (var i = 0; i < n; i++) u8[i] = bin.charCodeAt(i);
    return new T(u8.buffer);
  }
  var RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function ramp(t) {
    if (!(t >= 0)) t = 0; if (t > 1) t = 1;
    var f = t * (RAMP.length - 1), i = Math.min(Math.floor(f), RAMP.length - 2), u = f - i;
    var a = RAMP[i], b = RAMP[i + 1];
    return "rgb(" + Math.round(a[0] + u * (b[0] - a[0])) + "," +
      Math.round(a[1] + u * (b[1] - a[1])) + "," + Math.round(a[2] + u * (b[2] - a[2])) + ")";
  }
  function quantiles(v) {
    var f = [];
    for (var i = 0; i < v.length; i++) if (isFinite(v[i])) f.push(v[i]);
    if (!f.length) return [0, 1];
    f.sort(function (a, b) { return a - b; });
    var lo = f[Math.floor(0.02 * (f.length - 1))], hi = f[Math.ceil(0.98 * (f.length - 1))];
    return hi > lo ? [lo, hi] : [lo, lo + 1];
  }
  function init() {
    var el = document.getElementById("tree-data"), canvas = document.getElementById("tree3d");
    if (!el || !canvas) return;
    var d = JSON.parse(el.textContent);
    var pts = b64(d.points, Float32Array), off = b64(d.offsets, Int32Array);
    var rad = b64(d.radius, Float32Array), nameIdx = b64(d.seg_name, Int32Array);
    var nseg = off.length - 1, npt = pts.length / 3;
    var segRadius = new Float32Array(nseg);
    for (var s = 0; s < nseg; s++) {
      var acc = 0;
      for (var k = off[s]; k < off[s + 1]; k++) acc += rad[k];
      segRadius[s] = off[s + 1] > off[s] ? acc / (off[s + 1] - off[s]) : NaN;
    }
    var centre = [0, 0, 0], ext = 1e-6, mn = [Infinity, Infinity, Infinity], mx = [-Infinity, -Infinity, -Infinity];
    for (var i = 0; i < npt; i++) for (var c = 0; c < 3; c++) {
      var v = pts[3 * i + c]; if (v < mn[c]) mn[c] = v; if (v > mx[c]) mx[c] = v;
    }
    for (c = 0; c < 3; c++) { centre[c] = (mn[c] + mx[c]) / 2; ext = Math.max(ext, mx[c] - mn[c]); }
    var view = { yaw: 0, pitch: 0, zoom: 1 };
    var select = document.getElementById("tree-colour"), legend = document.getElementById("tree-legend");
    var proj = new Float32Array(npt * 3), order = new Int32Array(nseg), depth = new Float32Array(nseg);
    var ctx = canvas.getContext("2d");
    function colours() {
      var mode = select ? select.value : "name", out = new Array(nseg), vals = null, unit = "";
      if (mode === "name") {
        for (var s = 0; s < nseg; s++) out[s] = d.colours[nameIdx[s]];
        legend.innerHTML = d.names.map(function (n, j) {
          return "<span><i style='background:" + d.colours[j] + "'></i>" +
            n.replace(/[<>&]/g, "") + "</span>";
        }).join(" ");
        return out;
      }
      if (mode === "radius") { vals = segRadius; unit = "mm"; }
      else { vals = b64(d.seg_features[mode].values, Float32Array); unit = d.seg_features[mode].unit; }
      var q = quantiles(vals);
      for (s = 0; s < nseg; s++) out[s] = isFinite(vals[s]) ? ramp((vals[s] - q[0]) / (q[1] - q[0])) : "#888";
      legend.innerHTML = "<span>" + q[0].toPrecision(3) + "</span> <i class='ramp'></i> <span>" +
        q[1].toPrecision(3) + " " + unit.replace(/[<>&]/g, "") + "</span> <span>(grey: undefined)</span>";
      return out;
    }
    var segColour = colours();
    function draw() {
      var w = canvas.width, h = canvas.height, cy = Math.cos(view.yaw), sy = Math.sin(view.yaw);
      var cp = Math.cos(view.pitch), sp = Math.sin(view.pitch);
      var scale = 0.9 * Math.min(w, h) / ext * view.zoom;
      for (var i = 0; i < npt; i++) {
        /* LPS -> screen: x (left) to the right of the screen as seen from the front (flip),
           superior (z) up; rotate about the vertical then the horizontal axis. */
        var x = -(pts[3 * i] - centre[0]), y = pts[3 * i + 1] - centre[1], z = pts[3 * i + 2] - centre[2];
        var x1 = cy * x + sy * y, y1 = -sy * x + cy * y;
        var z2 = cp * z - sp * y1, d2 = sp * z + cp * y1;
        proj[3 * i] = w / 2 + x1 * scale; proj[3 * i + 1] = h / 2 - z2 * scale; proj[3 * i + 2] = d2;
      }
      for (var s = 0; s < nseg; s++) {
        var a = off[s], b = off[s + 1], acc = 0;
        for (var k = a; k < b; k++) acc += proj[3 * k + 2];
        depth[s] = b > a ? acc / (b - a) : 0; order[s] = s;
      }
      var ord = Array.prototype.slice.call(order).sort(function (p, q) { return depth[q] - depth[p]; });
      ctx.fillStyle = "#111"; ctx.fillRect(0, 0, w, h);
      ctx.lineCap = "round"; ctx.lineJoin = "round";
      for (var j = 0; j < nseg; j++) {
        s = ord[j]; a = off[s]; b = off[s + 1];
        if (b - a < 2) continue;
        ctx.strokeStyle = segColour[s];
        ctx.lineWidth = Math.max(1, Math.min(8, 2 * segRadius[s] * scale)) || 1;
        ctx.beginPath(); ctx.moveTo(proj[3 * a], proj[3 * a + 1]);
        for (k = a + 1; k < b; k++) ctx.lineTo(proj[3 * k], proj[3 * k + 1]);
        ctx.stroke();
      }
      canvas.dataset.drawn = String(nseg);
    }
    var drag = null;
    canvas.addEventListener("mousedown", function (e) { drag = [e.clientX, e.clientY]; });
    window.addEventListener("mouseup", function () { drag = null; });
    window.addEventListener("mousemove", function (e) {
      if (!drag) return;
      view.yaw += (e.clientX - drag[0]) * 0.01; view.pitch += (e.clientY - drag[1]) * 0.01;
      drag = [e.clientX, e.clientY]; requestAnimationFrame(draw);
    });
    canvas.addEventListener("wheel", function (e) {
      e.preventDefault(); view.zoom *= Math.exp(-e.deltaY * 0.001); requestAnimationFrame(draw);
    }, { passive: false });
    canvas.addEventListener("dblclick", function () { view.yaw = 0; view.pitch = 0; view.zoom = 1; draw(); });
    if (select) select.addEventListener("change", function () { segColour = colours(); draw(); });
    draw();
    if (window.performance && performance.mark) performance.mark("tree-drawn");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
