// The runs of a namespace, live: the namespace watch (GET /v1/watch/namespaces/{ns}/trainingruns)
// says when to list and what changed since; the table is redrawn from the runs held here.
import {
  TERMINAL, age, algorithmOf, apiJson, describe, follow, h, namespace, newer, notice,
  percentOf, phaseBadge, phaseOf, query, rememberNamespace, runsPath, scoreText,
} from './app.js';

const ns = namespace();
const phase = query.get('phase') || '';
const labelSelector = query.get('labelSelector') || '';
const runs = new Map();

document.getElementById('namespace').value = ns;
document.getElementById('phase').value = phase;
document.getElementById('labelSelector').value = labelSelector;
document.getElementById('new-link').href = `new?namespace=${encodeURIComponent(ns)}`;
rememberNamespace(ns);

/** Every page of the list, as one array. */
async function listAll() {
  const items = [];
  let token = '';
  do {
    const params = new URLSearchParams({ limit: '500' });
    if (labelSelector) params.set('labelSelector', labelSelector);
    if (token) params.set('continue', token);
    const page = await apiJson(`${runsPath(ns)}?${params}`);
    items.push(...page.items);
    token = page.continue || '';
  } while (token);
  return items;
}

/** Replace what is held by a fresh list, keeping events newer than it (they came after). */
async function resync() {
  try {
    const listed = await listAll();
    const newest = Math.max(0, ...listed.map((r) => Number(r.metadata.resourceVersion) || 0));
    const fresh = new Map(listed.map((r) => [r.metadata.name, r]));
    for (const [name, run] of runs) {
      const kept = fresh.get(name);
      if (kept ? newer(run, kept) : Number(run.metadata.resourceVersion) > newest) {
        fresh.set(name, run);
      }
    }
    runs.clear();
    for (const [name, run] of fresh) runs.set(name, run);
    notice('');
    draw();
  } catch (error) {
    notice(`Cannot list the runs: ${describe(error)}`);
  }
}

function applied(run) {
  const held = runs.get(run.metadata.name);
  if (!held || newer(run, held)) {
    runs.set(run.metadata.name, run);
    draw();
  }
}

function deleted(run) {
  if (runs.delete(run.metadata.name)) draw();
}

let drawing = false;
function draw() {
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(() => {
    drawing = false;
    render();
  });
}

function render() {
  const shown = [...runs.values()]
    .filter((run) => !phase || phaseOf(run) === phase)
    .sort((a, b) => (b.metadata.creationTimestamp || '').localeCompare(a.metadata.creationTimestamp || '')
      || a.metadata.name.localeCompare(b.metadata.name));
  const rows = shown.map((run) => {
    const name = run.metadata.name;
    const percent = percentOf(run);
    const running = !TERMINAL.has(phaseOf(run));
    const href = `run?namespace=${encodeURIComponent(ns)}&name=${encodeURIComponent(name)}`;
    return h('tr', { 'data-name': name, 'data-phase': phaseOf(run) },
      h('th', { scope: 'row' }, h('a', { href }, name)),
      h('td', {}, phaseBadge(phaseOf(run))),
      h('td', {}, algorithmOf(run)),
      h('td', { class: 'score' }, scoreText(run)),
      h('td', { class: 'progress' },
        h('progress', { max: 100, value: percent, 'aria-label': `${name} progress` }),
        ` ${Math.floor(percent)}%`,
        running && run.status && run.status.progress && run.status.progress.total
          ? ` (${run.status.progress.iteration}/${run.status.progress.total})` : ''),
      h('td', { title: run.metadata.creationTimestamp || '' }, age(run.metadata.creationTimestamp)));
  });
  document.querySelector('#runs tbody').replaceChildren(...rows);
  document.getElementById('empty').hidden = shown.length > 0;
  if (rows.length && !performance.getEntriesByName('kubetrain:first-rows').length) {
    performance.mark('kubetrain:first-rows');
  }
}

follow(`/v1/watch/namespaces/${encodeURIComponent(ns)}/trainingruns${labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : ''}`,
  (event, run) => {
    if (event === 'resync') resync();
    else if (event === 'run') applied(run);
    else if (event === 'deleted') deleted(run);
  },
  { reconnect: true, onError: (error) => notice(`Cannot follow the runs: ${describe(error)}`) });

// Ages move on without any change to the runs.
setInterval(draw, 10000);
