// One run, live: its event stream (GET .../trainingruns/{name}/events) redraws the page on each
// change and adds a point to the loss curve per iteration; once the run has a model, its
// summary (GET .../summary) gives the whole loss history, the confusion matrix and the weights.
import {
  ApiError, TERMINAL, api, apiJson, describe, follow, h, namespace, newer, notice,
  number, percentOf, phaseBadge, phaseOf, query, rememberNamespace, runPath,
} from './app.js';

const ns = namespace();
const name = query.get('name') || '';
const path = runPath(ns, name);
let current = null;
let summaryShown = false;
rememberNamespace(ns);
document.getElementById('runs-link').href = `./?namespace=${encodeURIComponent(ns)}`;
document.getElementById('new-link').href = `new?namespace=${encodeURIComponent(ns)}`;
document.getElementById('name').textContent = name;
document.title = `${name} · kubetrain`;

// --- the loss curve -------------------------------------------------------------------------
const curve = { iterations: [], loss: [], validation: [] };
let plot = null;
const plotElement = document.getElementById('loss-plot');

function drawCurve() {
  const figure = document.getElementById('loss');
  figure.dataset.points = String(curve.iterations.length);
  const data = [curve.iterations, curve.loss, curve.validation];
  const last = curve.iterations.length - 1;
  document.getElementById('loss-caption').textContent = last < 0
    ? 'Training and validation loss per iteration (no iterations reported yet)'
    : `Loss per iteration: ${curve.iterations.length} points; at iteration ${curve.iterations[last]} ` +
      `training loss ${curve.loss[last] === null ? 'unknown' : number(curve.loss[last])}` +
      (curve.validation[last] === null ? '' : `, validation loss ${number(curve.validation[last])}`);
  // No axes over an empty box: the plot appears with the first point.
  plotElement.hidden = last < 0;
  if (typeof uPlot === 'undefined' || last < 0) return;
  if (!plot) {
    const width = Math.max(280, plotElement.clientWidth || 600);
    plot = new uPlot({
      width,
      height: 260,
      scales: { x: { time: false } },
      axes: [{ label: 'iteration' }, { label: 'loss' }],
      series: [
        { label: 'iteration' },
        { label: 'training loss', stroke: '#1f5fbf', width: 2, spanGaps: true },
        { label: 'validation loss', stroke: '#b5470b', width: 2, dash: [6, 3], spanGaps: true },
      ],
    }, data, plotElement);
    new ResizeObserver(() => {
      plot.setSize({ width: Math.max(280, plotElement.clientWidth), height: 260 });
    }).observe(plotElement);
  } else {
    plot.setData(data);
  }
}

function addProgress(run) {
  const progress = run.status && run.status.progress;
  if (!progress || !progress.iteration) return;
  const last = curve.iterations[curve.iterations.length - 1];
  if (last !== undefined && progress.iteration <= last) return;
  const finite = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  curve.iterations.push(progress.iteration);
  curve.loss.push(finite(progress.loss));
  curve.validation.push(finite(progress.validationLoss));
  drawCurve();
}

function historyFromSummary(history) {
  if (!Array.isArray(history) || history.length === 0) return;
  curve.iterations = history.map((p) => p.iteration);
  curve.loss = history.map((p) => (typeof p.loss === 'number' ? p.loss : null));
  curve.validation = history.map((p) => (typeof p.validationLoss === 'number' ? p.validationLoss : null));
  drawCurve();
}

// --- the page -------------------------------------------------------------------------------
function pairs(tableId, entries) {
  const rows = entries
    .filter(([, value]) => value !== undefined && value !== null && value !== '')
    .map(([key, value]) => h('tr', {}, h('th', { scope: 'row' }, key), h('td', {}, value instanceof Node ? value : String(value))));
  document.querySelector(`#${tableId} tbody`).replaceChildren(...rows);
  return rows.length > 0;
}

const METRICS = [
  ['accuracy', 'accuracy'], ['logLoss', 'log loss'], ['macroF1', 'macro F1'], ['rmse', 'RMSE'],
  ['mae', 'MAE'], ['r2', 'R²'], ['trainingLoss', 'training loss'], ['iterations', 'iterations'],
  ['converged', 'converged'], ['evaluatedOn', 'evaluated on'], ['validationRows', 'validation rows'],
];

function render(run) {
  if (!current) performance.mark('kubetrain:first-render');
  current = run;
  const status = run.status || {};
  const phase = phaseOf(run);
  document.getElementById('phase').replaceChildren(phaseBadge(phase));
  const message = document.getElementById('message');
  const why = status.trainerError ? `${status.trainerError.reason}: ${status.trainerError.message}` : status.message;
  message.hidden = !why;
  message.textContent = why || '';
  message.className = phase === 'Failed' ? 'message error' : 'message';

  const percent = percentOf(run);
  document.getElementById('progress').value = percent;
  const progress = status.progress;
  const parts = [`${Math.floor(percent)}%`];
  if (progress && progress.total) parts.push(`iteration ${progress.iteration} of ${progress.total}`);
  if (progress && typeof progress.loss === 'number') parts.push(`loss ${number(progress.loss)}`);
  if (progress && typeof progress.validationLoss === 'number') parts.push(`validation loss ${number(progress.validationLoss)}`);
  if (progress && progress.estimatedRemainingSeconds && !TERMINAL.has(phase)) parts.push(`about ${Math.ceil(progress.estimatedRemainingSeconds)} s left`);
  document.getElementById('progress-text').textContent = parts.join(' · ');
  addProgress(run);

  const metrics = status.metrics || {};
  const metricRows = METRICS.map(([key, label]) => [label, typeof metrics[key] === 'number' ? number(metrics[key]) : metrics[key]]);
  for (const [key, value] of Object.entries(metrics.reported || {})) {
    if (!METRICS.some(([known]) => known === key)) metricRows.push([key, number(value)]);
  }
  document.getElementById('metrics-section').hidden = !pairs('metrics', metricRows);

  const model = status.model;
  document.getElementById('model-section').hidden = !model;
  if (model) pairs('model', [['URI', model.uri], ['sha256', model.sha256], ['bytes', model.bytes]]);

  const dataset = status.dataset;
  if (dataset) {
    document.getElementById('dataset-section').hidden = !pairs('dataset', [
      ['URI', run.spec.dataset.uri], ['rows', dataset.rows], ['features', dataset.features],
      ['classes', dataset.classes || ''], ['sha256', dataset.sha256],
    ]);
  }
  if (!summaryShown && status.topFeatures && status.topFeatures.length) {
    weights(status.topFeatures, 'The weightiest features (the summary lists every one once the run succeeds).');
  }

  const conditions = (status.conditions || []).map((c) => h('tr', {},
    h('th', { scope: 'row' }, c.type), h('td', {}, c.status), h('td', {}, c.reason || ''),
    h('td', {}, c.message || ''), h('td', {}, c.lastTransitionTime || '')));
  document.querySelector('#conditions tbody').replaceChildren(...conditions);
  document.getElementById('spec').textContent = JSON.stringify(run.spec, null, 2);
  document.getElementById('cancel').hidden = TERMINAL.has(phase) || run.spec.cancel === true;
  document.getElementById('delete').hidden = false;
  if (model && !summaryShown) {
    summaryShown = true;
    showSummary();
  }
}

function weights(list, note) {
  const top = [...list].sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight)).slice(0, 20);
  const largest = Math.max(1e-12, ...top.map((w) => Math.abs(w.weight)));
  const rows = top.map((w) => h('tr', {},
    h('th', { scope: 'row' }, w.name),
    h('td', { class: 'bar-cell' }, (() => {
      const bar = h('span', { class: w.weight < 0 ? 'weight-bar negative' : 'weight-bar' });
      bar.style.width = `${(100 * Math.abs(w.weight)) / largest}%`;
      return bar;
    })()),
    h('td', { class: 'num' }, number(w.weight))));
  document.querySelector('#weights tbody').replaceChildren(...rows);
  document.getElementById('weights-note').textContent = note;
  document.getElementById('weights-section').hidden = rows.length === 0;
}

function confusion(matrix, classes) {
  const table = document.getElementById('confusion');
  const peak = Math.max(1, ...matrix.map((row) => Math.max(...row)));
  const head = h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'true \\ predicted'),
    classes.map((c) => h('th', { scope: 'col' }, c))));
  const body = h('tbody', {}, matrix.map((row, i) => h('tr', {},
    h('th', { scope: 'row' }, classes[i] ?? String(i)),
    row.map((count, j) => {
      const share = count / peak;
      const cell = h('td', {
        class: i === j ? 'num diagonal' : 'num',
        'aria-label': `true ${classes[i]}, predicted ${classes[j]}: ${count}`,
      }, String(count));
      cell.style.backgroundColor = `hsl(212 70% ${Math.round(97 - share * 55)}%)`;
      cell.style.color = share > 0.55 ? '#fff' : '#111';
      return cell;
    }))));
  table.replaceChildren(h('caption', {}, 'Rows of the evaluation set by true class (rows) and predicted class (columns)'), head, body);
  document.getElementById('confusion-section').hidden = false;
}

async function showSummary() {
  try {
    const summary = await apiJson(`${path}/summary`);
    historyFromSummary(summary.lossHistory);
    const metrics = summary.metrics || {};
    const classes = (summary.dataset && summary.dataset.classes) || [];
    if (Array.isArray(metrics.confusionMatrix) && metrics.confusionMatrix.length) {
      confusion(metrics.confusionMatrix, classes);
    }
    if (Array.isArray(summary.featureWeights) && summary.featureWeights.length) {
      weights(summary.featureWeights, summary.featureWeights.length > 20
        ? `The 20 weightiest of ${summary.featureWeights.length} features.` : '');
    }
    if (summary.dataset && typeof summary.dataset.trainRows === 'number') {
      const table = document.querySelector('#dataset tbody');
      table.append(h('tr', {}, h('th', { scope: 'row' }, 'training rows'), h('td', {}, String(summary.dataset.trainRows))),
        h('tr', {}, h('th', { scope: 'row' }, 'validation rows'), h('td', {}, String(summary.dataset.validationRows))));
      document.getElementById('dataset-section').hidden = false;
    }
  } catch (error) {
    summaryShown = false;
    notice(`Cannot read the run's summary: ${describe(error)}`);
  }
}

// --- actions --------------------------------------------------------------------------------
document.getElementById('cancel').addEventListener('click', async () => {
  if (!confirm(`Cancel run ${name}? Its trainer is stopped and the run ends Cancelled.`)) return;
  try {
    const run = await apiJson(`${path}/cancel`, { method: 'POST' });
    if (!current || newer(run, current)) render(run);
    notice('Cancel requested.');
  } catch (error) {
    notice(`Cannot cancel: ${describe(error)}`);
  }
});

document.getElementById('delete').addEventListener('click', async () => {
  if (!confirm(`Delete run ${name}? Its model stays in storage.`)) return;
  try {
    await api(path, { method: 'DELETE' });
    location.href = `./?namespace=${encodeURIComponent(ns)}`;
  } catch (error) {
    notice(`Cannot delete: ${describe(error)}`);
  }
});

document.getElementById('download').addEventListener('click', async () => {
  try {
    const response = await api(`${path}/model`);
    const blob = await response.blob();
    const link = h('a', { href: URL.createObjectURL(blob), download: (current.status.model.uri.split('/').pop() || 'model') });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  } catch (error) {
    notice(`Cannot download the model: ${describe(error)}`);
  }
});

// --- live -----------------------------------------------------------------------------------
drawCurve();
// The stream ends after the terminal phase; reconnect only when it ends before that.
const finished = new AbortController();
follow(`${path}/events`, (event, run) => {
  if (event === 'run' && (!current || newer(run, current))) render(run);
  if (current && TERMINAL.has(phaseOf(current))) finished.abort();
}, {
  reconnect: true,
  signal: finished.signal,
  onError: (error) => {
    notice(error instanceof ApiError && error.status === 404
      ? `There is no run ${name} in namespace ${ns}.` : `Cannot follow the run: ${describe(error)}`);
  },
});
