// @ts-check
/**
 * The report page's script (report.html): reads the embedded JSON, turns each chart spec
 * (report/charts.ts) into a chart.js config, and swaps datasets when the reader picks another stage
 * or repeat. Plain ES5 so any browser runs it from disk; no network, no modules. Sets
 * `window.wamiReport` when done. report/html.ts reads this file at render time and inlines it, the
 * way it inlines chart.js; `npm run lint` type-checks it (tsconfig.page.json) against the spec types.
 *
 * @typedef {import('./charts.js').ChartSpec} ChartSpec
 * @typedef {import('./charts.js').DatasetSpec} DatasetSpec
 * @typedef {import('./charts.js').AxisSpec} AxisSpec
 * @typedef {{ defaultSel: string, charts: ChartSpec[] }} PageData
 */
(function () {
  'use strict';
  /** @type {PageData} */
  var data = JSON.parse(/** @type {HTMLElement} */ (document.getElementById('wami-data')).textContent || '{}');
  /** @type {any} chart.js's UMD global, inlined before this script */
  var C = /** @type {any} */ (window).Chart;
  C.defaults.animation = false;
  C.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  C.defaults.font.size = 12;
  C.defaults.color = '#1f2937';
  var DASH = { dashed: [6, 4], dotted: [2, 3] };

  /** @param {number} x 1/(1-p) @returns {string} */
  function pct(x) {
    var p = 100 * (1 - 1 / x);
    if (p <= 0) return '0%';
    return `${String(+p.toPrecision(7))}%`;
  }
  /** @param {unknown} v @returns {string} */
  function num(v) {
    return typeof v === 'number' ? (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : String(+v.toPrecision(4))) : String(v);
  }
  /** @param {DatasetSpec} d */
  function dataset(d) {
    return {
      label: d.label,
      data: d.data.map(function (p) {
        return { x: p[0], y: p[1] };
      }),
      borderColor: d.color,
      backgroundColor: d.color,
      borderDash: d.dash ? DASH[d.dash] : [],
      borderWidth: d.dash === 'dotted' ? 1.5 : 2,
      yAxisID: d.y2 ? 'y2' : 'y',
      showLine: !d.pointsOnly,
      pointRadius: d.pointStyle ? 5 : d.pointsOnly ? 2.5 : d.points ? 3.5 : 0,
      pointStyle: d.pointStyle || 'circle',
      pointBorderWidth: d.pointStyle ? 2 : 1,
      pointHoverRadius: 4,
      tension: 0,
    };
  }
  /** @param {AxisSpec} a @param {string} position */
  function axis(a, position) {
    /** @type {Record<string, any>} */
    var s = { type: a.log ? 'logarithmic' : 'linear', position: position, title: { display: true, text: a.label }, ticks: { callback: num } };
    if (a.min !== undefined) s.min = a.min;
    if (a.max !== undefined) s.max = a.max;
    if (a.log && !a.percentile) {
      // chart.js puts a tick at every minor step near the bottom of a short log range (500, 510,
      // 520, …): keep the 1-2-5 series instead, or 1…9 × 10^k when that leaves fewer than three.
      /** @param {{ min: number, max: number, ticks: Array<{ value: number }> }} ax */
      s.afterBuildTicks = function (ax) {
        /** @param {number[]} ms @returns {Array<{ value: number }>} */
        var series = function (ms) {
          /** @type {Array<{ value: number }>} */
          var t = [];
          for (var e = Math.floor(Math.log10(Math.max(ax.min, 1e-9))); 10 ** e <= ax.max * 1.0001; e++) {
            ms.forEach(function (m) {
              var v = m * 10 ** e;
              if (v >= ax.min * 0.9999 && v <= ax.max * 1.0001) t.push({ value: v });
            });
          }
          return t;
        };
        var t = series([1, 2, 5]);
        ax.ticks = t.length >= 3 ? t : series([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      };
    }
    if (a.percentile) {
      /** @param {{ max: number, ticks: Array<{ value: number }> }} ax */
      s.afterBuildTicks = function (ax) {
        /** @type {Array<{ value: number }>} */
        var t = [];
        for (var v = 1; v <= ax.max * 1.0001; v *= 10) {
          t.push({ value: v });
          if (v === 1 && ax.max >= 2) t.push({ value: 2 });
        }
        ax.ticks = t;
      };
      s.ticks = {
        callback: /** @param {number} v */ function (v) {
          return pct(v);
        },
        autoSkip: false,
      };
    }
    return s;
  }
  var emptyPlugin = {
    id: 'wamiEmpty',
    /** @param {any} chart */
    afterDraw: function (chart) {
      var any = chart.data.datasets.some(
        /** @param {{ data: unknown[] }} d */ function (d) {
          return d.data.length > 0;
        },
      );
      if (any) return;
      var a = chart.chartArea,
        ctx = chart.ctx;
      ctx.save();
      ctx.fillStyle = '#6b7280';
      ctx.textAlign = 'center';
      ctx.font = '13px system-ui, sans-serif';
      ctx.fillText('no data for this selection', (a.left + a.right) / 2, (a.top + a.bottom) / 2);
      ctx.restore();
    },
  };
  // Per canvas: the measured window [from, to] on the x axis; outside it is shaded grey.
  /** @type {Record<string, [number, number] | null>} */
  var ranges = {};
  var shadePlugin = {
    id: 'wamiShade',
    /** @param {any} chart */
    beforeDatasetsDraw: function (chart) {
      var m = ranges[chart.canvas.id];
      if (!m || !chart.scales.x) return;
      var x = chart.scales.x,
        a = chart.chartArea,
        ctx = chart.ctx;
      var from = Math.max(a.left, Math.min(a.right, x.getPixelForValue(m[0])));
      var to = Math.max(a.left, Math.min(a.right, x.getPixelForValue(m[1])));
      ctx.save();
      ctx.fillStyle = 'rgba(107, 114, 128, 0.13)';
      if (from > a.left) ctx.fillRect(a.left, a.top, from - a.left, a.bottom - a.top);
      if (to < a.right) ctx.fillRect(to, a.top, a.right - to, a.bottom - a.top);
      ctx.restore();
    },
  };
  // Per canvas: x ranges to mark (faults), red bands with their name.
  /** @type {Record<string, Array<{ from: number, to: number, label: string }>>} */
  var marks = {};
  var markPlugin = {
    id: 'wamiMarks',
    /** @param {any} chart */
    beforeDatasetsDraw: function (chart) {
      var list = marks[chart.canvas.id];
      if (!list || !chart.scales.x) return;
      var x = chart.scales.x,
        a = chart.chartArea,
        ctx = chart.ctx;
      ctx.save();
      list.forEach(function (m) {
        var from = Math.max(a.left, Math.min(a.right, x.getPixelForValue(m.from)));
        var to = Math.max(a.left, Math.min(a.right, x.getPixelForValue(m.to)));
        ctx.fillStyle = 'rgba(190, 18, 60, 0.16)';
        ctx.fillRect(from, a.top, Math.max(2, to - from), a.bottom - a.top);
        ctx.fillStyle = '#be123c';
        ctx.font = '12px system-ui, sans-serif';
        ctx.fillText(m.label, from + 3, a.top + 12);
      });
      ctx.restore();
    },
  };
  /** @param {ChartSpec} spec @param {DatasetSpec[]} datasets */
  function config(spec, datasets) {
    /** @type {Record<string, Record<string, any>>} */
    var scales = { x: axis(spec.x, 'bottom'), y: axis(spec.y, 'left') };
    if (spec.y2) {
      var y2 = axis(spec.y2, 'right');
      y2.grid = { drawOnChartArea: false };
      scales.y2 = y2;
    }
    var scatter =
      datasets.length > 0 &&
      datasets.every(function (d) {
        return d.pointsOnly;
      });
    return {
      type: scatter ? 'scatter' : 'line',
      data: { datasets: datasets.map(dataset) },
      plugins: [emptyPlugin, shadePlugin, markPlugin],
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        normalized: true,
        interaction: { mode: 'nearest', intersect: false },
        plugins: {
          title: { display: true, text: spec.title, font: { size: 14, weight: '600' } },
          legend: { position: 'bottom', labels: { boxWidth: 18, boxHeight: 2, padding: 8 } },
          tooltip: {
            callbacks: {
              /** @param {Array<{ parsed: { x: number } }>} items */
              title: function (items) {
                if (!items.length) return '';
                var x = /** @type {{ parsed: { x: number } }} */ (items[0]).parsed.x;
                return spec.x.percentile ? `percentile ${pct(x)}` : `${spec.x.label}: ${num(x)}`;
              },
              label: /** @param {{ dataset: { label: string }, parsed: { y: number } }} item */ function (item) {
                return `${item.dataset.label}: ${num(item.parsed.y)}`;
              },
            },
          },
        },
        scales: scales,
      },
    };
  }

  var sel = /** @type {HTMLSelectElement | null} */ (document.getElementById('wami-sel'));
  var key = sel ? sel.value : data.defaultSel;
  /** @type {Array<{ spec: ChartSpec, chart: any }>} */
  var charts = [];
  data.charts.forEach(function (spec) {
    var canvas = /** @type {HTMLCanvasElement | null} */ (document.getElementById(`chart-${spec.id}`));
    if (!canvas) return;
    var ds = spec.bySel ? spec.bySel[key] || [] : spec.datasets || [];
    if (spec.measured) ranges[canvas.id] = spec.measured[key] || null;
    if (spec.marks) marks[canvas.id] = spec.marks;
    charts.push({ spec: spec, chart: new C(canvas, config(spec, ds)) });
  });
  if (sel) {
    var select = sel;
    select.addEventListener('change', function () {
      charts.forEach(function (c) {
        if (!c.spec.bySel) return;
        if (c.spec.measured) ranges[c.chart.canvas.id] = c.spec.measured[select.value] || null;
        c.chart.data.datasets = (c.spec.bySel[select.value] || []).map(dataset);
        c.chart.update();
      });
    });
  }
  /** @type {any} */ (window).wamiReport = { ready: true, charts: charts.length };
})();
