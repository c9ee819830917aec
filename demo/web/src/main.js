// ganzoo's demo page: loads an export's <name>.json, picks the UI its inputs call for and runs
// the TFLite generators in LiteRT.js. URL parameters (all optional):
//   model=NAME        which <name>.json of the export (default: the first the server lists)
//   flavour=float32   float32 | float16 | int8
//   seed=N            seed of the page's z draws (default: random)
//   n=N               samples (unconditional: the grid; conditional: per class; text: per caption)
//   z=BASE64URL       a fixed latent batch: float32 little-endian [batch, latent_dim]
//                     (any parameter may come in the fragment, #z=...&label=..., instead)
//   label=3,3,5,...   class of each row of z (class-conditional models)
//   caption=TEXT      the caption (text-to-image models)
//   check=1           publish inputs and outputs of the first render in window.__ganzoo
// window.__ganzoo.status ends as "ready" (or "done" with check=1) or "error" (with kind
// "input" for a bad export and "runtime" otherwise, and a message shown on the page).

import {describe, InputError} from './manifest.js';
import {drawGrid, drawPoints, readImage, scaleFor} from './images.js';
import {randomNormal, sampleZ, slerp} from './latent.js';
import {Generator} from './runtime.js';
import {tokenize} from './tokenizer.js';

const EXPORT_BASE = 'export/';
// The query, and the fragment for long values (a latent batch is not sent to the server).
const params = new URLSearchParams(location.search);
for (const [key, value] of new URLSearchParams(location.hash.slice(1))) params.set(key, value);
const checking = params.get('check') === '1';
const state = (window.__ganzoo = {status: 'loading', kind: null, message: '', runs: []});
let recording = checking;

// -- small DOM helpers --------------------------------------------------------------------
function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function panel(title, ...children) {
  return element('section', {class: 'panel'}, element('h2', {}, title), ...children);
}

function setTiming(text) {
  document.getElementById('timing').textContent = text;
}

function showError(err) {
  const input = err instanceof InputError;
  state.status = 'error';
  state.kind = input ? 'input' : 'runtime';
  state.message = String(err?.message ?? err);
  const box = document.getElementById('error');
  box.replaceChildren(
    element('strong', {}, input ? 'This export cannot be shown: ' : 'Something failed: '),
    state.message,
  );
  box.hidden = false;
  console.error(err);
}

function timingText(flavour, label, result) {
  const compile = result.compileMs ? ` (compiled in ${result.compileMs.toFixed(0)} ms)` : '';
  return `${flavour}: ${result.ms.toFixed(1)} ms for ${label}${compile}`;
}

// -- encoding of tensors for the URL and for window.__ganzoo ------------------------------
function fromBase64Url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer, 0, Math.floor(bytes.length / 4));
}

function toBase64(typed) {
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function encoded(tensors) {
  const out = {};
  for (const [name, {data, shape}] of Object.entries(tensors)) {
    const dtype = data instanceof Int32Array ? 'int32' : 'float32';
    out[name] = {dtype, shape, data: toBase64(data)};
  }
  return out;
}

/** Runs one signature and, during a check, records its inputs and outputs under `id`. */
async function run(app, id, signature, inputs) {
  const result = await app.generator.run(app.flavour, signature, inputs);
  if (recording) {
    state.runs.push({id, signature, flavour: app.flavour, ms: result.ms,
      inputs: encoded(inputs), outputs: encoded(result.outputs)});
  }
  return result;
}

// -- latent batches -----------------------------------------------------------------------
function fixedZ(described) {
  const text = params.get('z');
  if (!text) return null;
  const z = fromBase64Url(text);
  if (z.length === 0 || z.length % described.latentDim !== 0) {
    throw new InputError(`the URL's z holds ${z.length} numbers, not a multiple of ` +
      `latent_dim ${described.latentDim}`);
  }
  return z;
}

function count(name, fallback) {
  const value = Number.parseInt(params.get(name) ?? '', 10);
  return Number.isInteger(value) && value > 0 ? Math.min(value, 1024) : fallback;
}

// -- views, one per kind ------------------------------------------------------------------
function unconditionalView(app) {
  const {described} = app;
  const d = described.latentDim;
  const image = described.outputs.images.image;
  const grid = element('canvas', {class: 'grid', id: 'samples'});
  let z = fixedZ(described) ?? sampleZ(app.normal, count('n', image ? 16 : 512), d);
  const samples = async () => {
    const n = z.length / d;
    const result = await run(app, 'samples', described.signatures[0], {z: {data: z, shape: [n, d]}});
    const out = result.outputs.images;
    if (image) drawGrid(grid, out.data, out.shape, Math.ceil(Math.sqrt(n)));
    else drawPoints(grid, out.data, out.shape);
    setTiming(timingText(app.flavour, `${n} samples`, result));
  };
  const fresh = element('button', {onclick: async () => {
    z = sampleZ(app.normal, z.length / d, d);
    await guarded(samples);
  }}, 'New samples');
  const views = [panel(image ? 'Samples' : 'Samples (a toy model: points, not images)',
    element('div', {class: 'row'}, fresh), grid)];
  let interpolate = async () => {};
  if (image) {
    const strip = element('canvas', {class: 'grid', id: 'strip'});
    const single = element('canvas', {class: 'grid', id: 'single'});
    const slider = element('input', {type: 'range', min: '0', max: '100', value: '50'});
    const label = element('span', {}, 't = 0.50');
    let ends = null;
    const point = async () => {
      const t = Number(slider.value) / 100;
      label.textContent = `t = ${t.toFixed(2)}`;
      const result = await app.generator.run(app.flavour, described.signatures[0],
        {z: {data: slerp(ends[0], ends[1], t), shape: [1, d]}});
      const out = result.outputs.images;
      drawGrid(single, out.data, out.shape, 1, 2 * scaleFor(out.shape[1]));
    };
    interpolate = async () => {
      ends = z.length >= 2 * d ? [z.slice(0, d), z.slice(d, 2 * d)] :
        [sampleZ(app.normal, 1, d), sampleZ(app.normal, 1, d)];
      const steps = 8;
      const path = new Float32Array(steps * d);
      for (let i = 0; i < steps; i++) path.set(slerp(ends[0], ends[1], i / (steps - 1)), i * d);
      const result = await app.generator.run(app.flavour, described.signatures[0],
        {z: {data: path, shape: [steps, d]}});
      drawGrid(strip, result.outputs.images.data, result.outputs.images.shape, steps);
      await point();
    };
    slider.addEventListener('input', () => guarded(point));
    const newEnds = element('button', {onclick: () => guarded(async () => {
      z.set(sampleZ(app.normal, 2, d).subarray(0, Math.min(z.length, 2 * d)));
      await samples();
      await interpolate();
    })}, 'New end points');
    views.push(panel('Spherical interpolation between samples 1 and 2',
      element('div', {class: 'row'}, newEnds, slider, label), strip, single));
  }
  return {views, render: async () => {
    await samples();
    recording = false;
    await interpolate();
  }};
}

function conditionalView(app) {
  const {described} = app;
  const d = described.latentDim;
  const classes = described.classNames;
  const perClass = count('n', 6);
  const picker = element('select', {}, element('option', {value: 'all'}, 'all classes'),
    ...classes.map((name, i) => element('option', {value: String(i)}, `${i}: ${name}`)));
  const rows = element('div', {class: 'rows'});
  let z = fixedZ(described);
  let labels = null;
  if (z) {
    labels = (params.get('label') ?? '').split(',').filter((s) => s !== '').map(Number);
    if (labels.length !== z.length / d || labels.some((l) => !(l >= 0 && l < classes.length))) {
      throw new InputError(`the URL's label needs ${z.length / d} class numbers in ` +
        `0..${classes.length - 1}`);
    }
  }
  const draw = () => {
    const chosen = picker.value === 'all' ? classes.map((_, i) => i) : [Number(picker.value)];
    labels = chosen.flatMap((c) => Array(perClass).fill(c));
    z = sampleZ(app.normal, labels.length, d);
  };
  const samples = async () => {
    if (!z) draw();
    const n = labels.length;
    const result = await run(app, 'samples', described.signatures[0], {
      z: {data: z, shape: [n, d]},
      label: {data: Int32Array.from(labels), shape: [n]},
    });
    const out = result.outputs.images;
    const [, h, w, c] = out.shape;
    const size = h * w * c;
    rows.replaceChildren();
    for (let start = 0; start < n;) {
      let end = start;
      while (end < n && labels[end] === labels[start]) end++;
      const canvas = element('canvas', {class: 'grid'});
      drawGrid(canvas, out.data.subarray(start * size, end * size), [end - start, h, w, c],
        end - start);
      rows.append(element('div', {class: 'labelled'},
        element('span', {class: 'label'}, classes[labels[start]]), canvas));
      start = end;
    }
    setTiming(timingText(app.flavour, `${n} samples`, result));
  };
  picker.addEventListener('change', () => guarded(async () => {
    draw();
    await samples();
  }));
  const fresh = element('button', {onclick: () => guarded(async () => {
    draw();
    await samples();
  })}, 'New samples');
  return {views: [panel('One row per class', element('div', {class: 'row'}, picker, fresh), rows)],
    render: samples};
}

function textView(app) {
  const {described} = app;
  const d = described.latentDim;
  const spec = described.tokenizer;
  const perCaption = count('n', 8);
  const words = spec.vocabulary.filter((w, i) => i !== spec.pad_id && i !== spec.oov_id && w);
  const box = element('textarea', {rows: '2', cols: '60'});
  box.value = params.get('caption') ?? words.slice(0, 6).join(' ');
  const ids = element('div', {class: 'tokens'});
  const stage2 = element('canvas', {class: 'grid'});
  const stage1 = element('canvas', {class: 'grid'});
  let z = fixedZ(described) ?? sampleZ(app.normal, perCaption, d);
  const samples = async () => {
    const n = z.length / d;
    const tokens = tokenize(box.value, spec);
    ids.textContent = `tokens: ${tokens.join(' ')}`;
    const batch = new Int32Array(n * tokens.length);
    for (let i = 0; i < n; i++) batch.set(tokens, i * tokens.length);
    const result = await run(app, 'samples', described.signatures[0], {
      z: {data: z, shape: [n, d]},
      tokens: {data: batch, shape: [n, tokens.length]},
    });
    const out = result.outputs.images;
    const low = result.outputs.stage1_images;
    const cols = Math.min(n, low ? 4 : 8);  // two grids side by side with Stage I
    drawGrid(stage2, out.data, out.shape, cols);
    if (low) {
      drawGrid(stage1, low.data, low.shape, cols,
        (scaleFor(out.shape[1]) * out.shape[1]) / low.shape[1]);  // shown at Stage II's size
    }
    setTiming(timingText(app.flavour, `${n} samples`, result));
  };
  const generate = element('button', {onclick: () => guarded(async () => {
    z = sampleZ(app.normal, z.length / d, d);
    await samples();
  })}, 'Generate');
  box.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      guarded(samples);
    }
  });
  const shown = described.outputs.stage1_images ?
    element('div', {class: 'stages'},
      element('figure', {}, stage1, element('figcaption', {}, 'Stage I')),
      element('figure', {}, stage2, element('figcaption', {}, 'Stage II'))) :
    stage2;
  return {views: [panel('Caption', element('div', {class: 'row'}, box, generate), ids, shown)],
    render: samples};
}

function translationView(app) {
  const {described} = app;
  const [h, w, c] = described.outputs.images.shape;
  const size = h * w * c;
  const domains = {a: [], b: []};  // Float32Array [H, W, C] each
  const names = {a: 'A', b: 'B'};
  const tables = {a: element('div', {class: 'rows'}), b: element('div', {class: 'rows'})};
  const note = element('p', {class: 'note'});
  const batch = (images) => {
    const data = new Float32Array(images.length * size);
    images.forEach((image, i) => data.set(image, i * size));
    return {data, shape: [images.length, h, w, c]};
  };
  const row = (label, tensor) => {
    const canvas = element('canvas', {class: 'grid'});
    drawGrid(canvas, tensor.data, tensor.shape, tensor.shape[0]);
    return element('div', {class: 'labelled'}, element('span', {class: 'label'}, label), canvas);
  };
  const translate = async () => {
    let total = 0;
    let compile = 0;
    for (const [from, to] of [['a', 'b'], ['b', 'a']]) {
      if (domains[from].length === 0) {
        tables[from].replaceChildren(element('p', {class: 'note'}, 'no images: upload some'));
        continue;
      }
      const x = batch(domains[from]);
      const forward = await run(app, `${from}_to_${to}`, `${from}_to_${to}`, {images: x});
      const y = forward.outputs.images;
      const back = await run(app, `${from}_to_${to}_to_${from}`, `${to}_to_${from}`, {images: y});
      total += forward.ms + back.ms;
      compile += forward.compileMs + back.compileMs;
      const [f, t] = [names[from], names[to]];
      tables[from].replaceChildren(row(f, x), row(`${f} → ${t}`, y),
        row(`${f} → ${t} → ${f}`, back.outputs.images));
    }
    setTiming(timingText(app.flavour, 'both directions and back', {ms: total, compileMs: compile}));
  };
  const upload = (key) => element('input', {type: 'file', accept: 'image/*', multiple: '',
    onchange: (event) => guarded(async () => {
      for (const file of event.target.files) domains[key].push(await readImage(file, h, w, c));
      await translate();
    })});
  const load = async () => {
    const response = await fetch('samples/index.json');
    if (response.ok) {
      const index = await response.json();
      for (const key of ['a', 'b']) {
        for (const file of index[key] ?? []) {
          domains[key].push(await readImage(`samples/${file}`, h, w, c));
        }
        if (index.names?.[key]) names[key] = index.names[key];
      }
      note.textContent = index.source ? `Test images: ${index.source}` : '';
    } else {
      note.textContent = 'No test images came with this export: upload some of each domain.';
    }
    await translate();
  };
  return {views: [panel('Image-to-image translation, and back', note,
    element('div', {class: 'row'}, 'Add images to A: ', upload('a'), ' to B: ', upload('b')),
    tables.a, tables.b)], render: load};
}

const VIEWS = {
  unconditional: unconditionalView,
  conditional: conditionalView,
  text: textView,
  translation: translationView,
};

// -- start-up -----------------------------------------------------------------------------
async function guarded(fn) {
  try {
    await fn();
  } catch (err) {
    showError(err);
  }
}

async function fetchJson(url, what) {
  const response = await fetch(url);
  if (!response.ok) throw new InputError(`${what}: HTTP ${response.status} for ${url}`);
  try {
    return await response.json();
  } catch (err) {
    throw new InputError(`${what} is not valid JSON (${err.message})`);
  }
}

async function chooseModel() {
  const response = await fetch('api/models.json');
  const models = response.ok ? await response.json() : [];
  const wanted = params.get('model');
  if (wanted) {
    if (response.ok && !models.some((m) => m.name === wanted)) {
      throw new InputError(`no model "${wanted}" in this export (it has: ` +
        `${models.map((m) => m.name).join(', ') || 'none'})`);
    }
    return {name: wanted, models};
  }
  if (models.length === 0) {
    throw new InputError('no <name>.json in the export directory: run python -m export first');
  }
  return {name: models[0].name, models};
}

function flavourSwitch(app, rerender) {
  const group = element('span', {class: 'flavours'});
  for (const flavour of app.described.flavours) {
    const input = element('input', {type: 'radio', name: 'flavour', value: flavour});
    input.checked = flavour === app.flavour;
    input.addEventListener('change', () => guarded(async () => {
      app.generator.release();
      app.flavour = flavour;
      params.set('flavour', flavour);
      const query = new URLSearchParams(params);
      for (const key of ['z', 'label', 'caption']) query.delete(key);
      history.replaceState(null, '', `?${query}${location.hash}`);
      await rerender();
    }));
    group.append(element('label', {}, input, flavour));
  }
  return group;
}

async function main() {
  const {name, models} = await chooseModel();
  const manifest = await fetchJson(`${EXPORT_BASE}${encodeURIComponent(name)}.json`,
    `${name}.json`);
  const described = describe(manifest, name);
  const wantedFlavour = params.get('flavour') ?? described.flavours[0];
  if (!described.flavours.includes(wantedFlavour)) {
    throw new InputError(`no ${wantedFlavour} TFLite file in ${name}.json (it has: ` +
      `${described.flavours.join(', ')})`);
  }
  const seed = params.has('seed') ? Number(params.get('seed')) : (Math.random() * 2 ** 32) >>> 0;
  const app = {
    described,
    flavour: wantedFlavour,
    normal: randomNormal(seed),
    generator: new Generator(described, EXPORT_BASE),
  };
  document.getElementById('title').textContent =
    `${name}: ${described.family}` + (described.step != null ? `, step ${described.step}` : '');
  if (models.length > 1) {
    const picker = element('select', {onchange: (event) => {
      params.set('model', event.target.value);
      location.search = `?${params}`;
    }}, ...models.map((m) => element('option', {value: m.name}, `${m.name} (${m.family})`)));
    picker.value = name;
    document.getElementById('models').append(picker);
  }
  const view = VIEWS[described.kind](app);
  document.getElementById('controls').prepend(flavourSwitch(app, view.render));
  document.getElementById('view').replaceChildren(...view.views);
  await view.render();
  recording = false;
  state.family = described.family;
  state.flavour = app.flavour;
  state.status = checking ? 'done' : 'ready';
}

window.addEventListener('unhandledrejection', (event) => showError(event.reason));
main().catch(showError);
