// The form that submits a run. The algorithm's parameters are drawn from the API's own
// OpenAPI document (names, bounds, descriptions), so the form offers exactly what the
// TrainingRun schema accepts; the API server (or kubetrain local) still validates the run, and
// its field errors are shown as they come.
import { api, apiJson, describe, h, namespace, rememberNamespace, runsPath } from './app.js';

const form = document.getElementById('run-form');
const errors = document.getElementById('errors');
const ns = namespace();
document.getElementById('namespace').value = ns;
document.getElementById('runs-link').href = `./?namespace=${encodeURIComponent(ns)}`;

let document_ = null;

function lookup(ref) {
  return ref.replace(/^#\//, '').split('/').reduce((node, key) => (node ? node[key] : undefined), document_);
}

/** The schema itself: $refs followed, an Option's `null` alternative dropped. */
function resolve(schema) {
  let node = schema || {};
  for (let depth = 0; depth < 16; depth += 1) {
    if (node.$ref) {
      const { $ref, ...rest } = node;
      node = { ...lookup($ref), ...rest };
    } else if (Array.isArray(node.anyOf) || Array.isArray(node.oneOf)) {
      const options = (node.anyOf || node.oneOf).filter((o) => o.type !== 'null');
      const { anyOf, oneOf, ...rest } = node;
      node = { ...(options[0] || {}), ...rest };
    } else if (Array.isArray(node.allOf) && node.allOf.length === 1) {
      const { allOf, ...rest } = node;
      node = { ...allOf[0], ...rest };
    } else {
      break;
    }
  }
  return node;
}

function typeOf(schema) {
  const types = Array.isArray(schema.type) ? schema.type.filter((t) => t !== 'null') : [schema.type];
  return types[0] || (schema.enum ? 'string' : 'object');
}

function algorithmSchema(algorithm) {
  const run = resolve(lookup('#/components/schemas/TrainingRun') || {});
  const spec = resolve(run.properties && run.properties.spec);
  const algorithms = resolve(spec.properties && spec.properties.algorithm);
  return resolve(algorithms.properties && algorithms.properties[algorithm]);
}

function drawParams() {
  const container = document.getElementById('params');
  const algorithm = document.getElementById('algorithm').value;
  const schema = document_ ? algorithmSchema(algorithm) : {};
  const fields = Object.entries(schema.properties || {}).map(([key, raw]) => {
    const field = resolve(raw);
    const type = typeOf(field);
    const id = `param-${key}`;
    const help = `${id}-help`;
    let input;
    if (field.enum || type === 'boolean') {
      const values = field.enum || ['true', 'false'];
      input = h('select', { id, name: key, 'data-type': type, 'aria-describedby': help },
        h('option', { value: '' }, 'default'), values.map((v) => h('option', { value: String(v) }, String(v))));
    } else if (type === 'integer' || type === 'number') {
      input = h('input', {
        id, name: key, type: 'number', 'data-type': type, 'aria-describedby': help,
        min: field.minimum ?? (field.exclusiveMinimum !== undefined ? String(field.exclusiveMinimum) : undefined),
        max: field.maximum ?? undefined,
        step: type === 'integer' ? '1' : 'any',
        placeholder: field.default !== undefined ? String(field.default) : '',
      });
    } else if (type === 'object' || type === 'array') {
      return null;
    } else {
      input = h('input', { id, name: key, 'data-type': 'string', 'aria-describedby': help });
    }
    return h('div', { class: 'param' },
      h('label', { for: id }, key), input,
      h('small', { id: help }, (field.description || '').replace(/\s+/g, ' ').trim()));
  }).filter(Boolean);
  container.replaceChildren(...fields);
}

function paramsOf() {
  const params = {};
  for (const input of document.querySelectorAll('#params [name]')) {
    if (input.value === '') continue;
    const type = input.dataset.type;
    if (type === 'integer') params[input.name] = parseInt(input.value, 10);
    else if (type === 'number') params[input.name] = Number(input.value);
    else if (type === 'boolean') params[input.name] = input.value === 'true';
    else params[input.name] = input.value;
  }
  return params;
}

function source() {
  return form.querySelector('input[name="source"]:checked').value;
}

for (const radio of form.querySelectorAll('input[name="source"]')) {
  radio.addEventListener('change', () => {
    const upload = source() === 'upload';
    document.getElementById('uri-field').hidden = upload;
    document.getElementById('file-field').hidden = !upload;
    document.getElementById('output-hint').textContent = upload
      ? 'Leave the output URI empty to store the model beside the uploaded data.' : '';
  });
}

document.getElementById('algorithm').addEventListener('change', () => {
  const algorithm = document.getElementById('algorithm').value;
  const task = document.getElementById('task');
  if (algorithm === 'linearRegression') task.value = 'regression';
  if (algorithm === 'logisticRegression') task.value = 'classification';
  drawParams();
});

function showErrors(lines) {
  errors.replaceChildren(...lines.map((line) => h('p', {}, line)));
  if (lines.length) errors.focus();
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showErrors([]);
  const submit = document.getElementById('submit');
  submit.disabled = true;
  try {
    const target = document.getElementById('namespace').value.trim();
    let datasetUri = document.getElementById('datasetUri').value.trim();
    let outputUri = document.getElementById('outputUri').value.trim();
    if (source() === 'upload') {
      const file = document.getElementById('datasetFile').files[0];
      if (!file) throw new Error('Choose a CSV file to upload.');
      const uploaded = await apiJson(`/v1/namespaces/${encodeURIComponent(target)}/datasets`, {
        method: 'POST', body: file, headers: { 'Content-Type': 'text/csv' },
      });
      datasetUri = uploaded.uri;
      if (!outputUri) {
        outputUri = datasetUri.replace(/\/datasets\/([^/]+?)(\.csv)?$/, '/models/$1/');
      }
    }
    const fraction = document.getElementById('validationFraction').value;
    const dataset = { uri: datasetUri, labelColumn: document.getElementById('labelColumn').value.trim() };
    if (fraction !== '') dataset.validationFraction = Number(fraction);
    const run = {
      apiVersion: 'kubetrain.dev/v1alpha1',
      kind: 'TrainingRun',
      metadata: { generateName: document.getElementById('generateName').value.trim() },
      spec: {
        task: document.getElementById('task').value,
        algorithm: { [document.getElementById('algorithm').value]: paramsOf() },
        dataset,
        output: { uri: outputUri },
      },
    };
    const created = await apiJson(runsPath(target), { method: 'POST', json: run });
    rememberNamespace(target);
    location.href = `run?namespace=${encodeURIComponent(target)}&name=${encodeURIComponent(created.metadata.name)}`;
  } catch (error) {
    showErrors(describe(error).split('\n'));
  } finally {
    submit.disabled = false;
  }
});

errors.tabIndex = -1;
try {
  document_ = await (await api('/openapi.json')).json();
} catch (error) {
  showErrors([`Cannot read the API's description, so no parameters are offered: ${describe(error)}`]);
}
drawParams();
