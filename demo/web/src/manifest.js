// What the page makes of an export's `<name>.json`: which UI it needs, and which file serves
// each (flavour, signature). The kind follows the inputs (the JSON contract), not the family
// name, so a new family with known inputs works without a change here. zoo/demo/manifest.py
// applies the same rules before the server starts; keep the two in step.

export class InputError extends Error {}

export const FLAVOURS = ['float32', 'float16', 'int8'];

// input names (sorted, joined) -> kind
const KINDS = {
  'z': 'unconditional',
  'label,z': 'conditional',
  'tokens,z': 'text',
  'images': 'translation',
};
const TRANSLATION_SIGNATURES = ['a_to_b', 'b_to_a'];

function fail(name, message) {
  throw new InputError(`${name}.json: ${message}`);
}

function isShape(shape) {
  return Array.isArray(shape) && shape.every((d) => d === null || Number.isInteger(d));
}

function outputSpec(name, manifest, signature, output) {
  const spec = manifest.signatures?.[signature]?.outputs?.[output];
  if (!spec || !isShape(spec.shape)) {
    fail(name, `signature ${signature} has no output "${output}" with a shape`);
  }
  const shape = spec.shape.slice(1);
  if (shape.some((d) => !Number.isInteger(d) || d < 1)) {
    fail(name, `output ${output} of ${signature} has an unknown size ${JSON.stringify(spec.shape)}`);
  }
  if (shape.length === 3 && (shape[2] === 1 || shape[2] === 3)) return {shape, image: true};
  if (shape.length === 1 && (shape[0] === 1 || shape[0] === 2)) return {shape, image: false};
  fail(name, `output ${output} has shape ${JSON.stringify(spec.shape)}; the demo shows ` +
    '[batch, H, W, 1 or 3] images or [batch, 1 or 2] points');
}

/**
 * Checks a manifest and returns what the page needs:
 * {name, family, kind, flavours, files: {flavour: {signature: file}}, signatures, inputs
 * (name -> {dtype, shape} of the first signature), outputs (name -> {shape, image}), latentDim,
 * classNames, tokenizer, step}. Throws InputError with a readable message otherwise.
 */
export function describe(manifest, name) {
  if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest)) {
    fail(name, 'not a JSON object');
  }
  if (typeof manifest.family !== 'string') fail(name, 'no "family"');
  const entries = manifest.tflite;
  if (!Array.isArray(entries) || entries.length === 0) {
    fail(name, 'lists no TFLite files ("tflite" is empty): export with a float32, float16 or ' +
      'int8 format');
  }
  const files = {};
  const inputsBySignature = {};
  for (const entry of entries) {
    const ok = entry && typeof entry.file === 'string' && !entry.file.includes('/') &&
      FLAVOURS.includes(entry.flavour) && typeof entry.signature === 'string' &&
      entry.inputs && typeof entry.inputs === 'object';
    if (!ok) fail(name, `a "tflite" entry lacks file, flavour, signature or inputs`);
    for (const [input, spec] of Object.entries(entry.inputs)) {
      if (!spec || typeof spec.dtype !== 'string' || !isShape(spec.shape) || spec.shape.length < 1) {
        fail(name, `input ${input} of ${entry.file} has no dtype and shape`);
      }
    }
    (files[entry.flavour] ??= {})[entry.signature] = entry.file;
    inputsBySignature[entry.signature] ??= entry.inputs;
  }
  // The first signature whose inputs the page knows (gan_int_cls also exports from_embedding).
  const keyOf = (signature) => Object.keys(inputsBySignature[signature]).sort().join(',');
  const signatures = Object.keys(inputsBySignature);
  const chosen = signatures.find((signature) => KINDS[keyOf(signature)]);
  if (chosen === undefined) {
    fail(name, `the TFLite inputs (${signatures.map(keyOf).join(' | ')}) are not ones the ` +
      'demo knows: z; z and label; z and tokens; images');
  }
  const inputs = inputsBySignature[chosen];
  const kind = KINDS[keyOf(chosen)];
  const flavours = FLAVOURS.filter((f) => files[f]);
  const needed = kind === 'translation' ? TRANSLATION_SIGNATURES : [chosen];
  for (const flavour of flavours) {
    for (const signature of needed) {
      if (!files[flavour][signature]) {
        fail(name, `no ${flavour} TFLite file for signature ${signature}`);
      }
    }
  }
  const described = {
    name, family: manifest.family, kind, flavours, files, inputs, step: manifest.step,
    signatures: needed, outputs: {}, latentDim: 0, classNames: [], tokenizer: null,
  };
  const outputNames = Object.keys(manifest.signatures?.[needed[0]]?.outputs ?? {});
  if (!outputNames.includes('images')) fail(name, `signature ${needed[0]} has no "images" output`);
  for (const output of outputNames) {
    described.outputs[output] = outputSpec(name, manifest, needed[0], output);
  }
  if (kind === 'translation') {
    const image = described.outputs.images;
    const input = inputs.images.shape.slice(1);
    if (!image.image || JSON.stringify(input) !== JSON.stringify(image.shape)) {
      fail(name, `images in (${JSON.stringify(input)}) and out (${JSON.stringify(image.shape)}) differ`);
    }
    return described;
  }
  const z = inputs.z;
  if (z.dtype !== 'float32' || z.shape.length !== 2 || !(z.shape[1] > 0)) {
    fail(name, `input z is ${z.dtype} ${JSON.stringify(z.shape)}, not float32 [batch, latent]`);
  }
  described.latentDim = z.shape[1];
  if (kind === 'conditional') {
    const label = inputs.label;
    if (!label.dtype.startsWith('int') || label.shape.length !== 1) {
      fail(name, `input label is ${label.dtype} ${JSON.stringify(label.shape)}, not int [batch]`);
    }
    const classes = manifest.data?.class_names;
    const count = manifest.model_config?.num_classes;
    if (Array.isArray(classes) && classes.length > 0) {
      described.classNames = classes.map(String);
    } else if (Number.isInteger(count) && count > 0) {
      described.classNames = Array.from({length: count}, (_, i) => `class ${i}`);
    } else {
      fail(name, 'a class-conditional model without data.class_names');
    }
  }
  if (kind === 'text') {
    const tokens = inputs.tokens;
    const spec = manifest.tokenizer;
    if (!spec || !Array.isArray(spec.vocabulary) || !Number.isInteger(spec.max_length) ||
        !Number.isInteger(spec.pad_id) || !Number.isInteger(spec.oov_id)) {
      fail(name, 'a text model without a "tokenizer" {vocabulary, max_length, pad_id, oov_id}');
    }
    if (!tokens.dtype.startsWith('int') || tokens.shape.length !== 2 ||
        tokens.shape[1] !== spec.max_length) {
      fail(name, `input tokens is ${tokens.dtype} ${JSON.stringify(tokens.shape)}, not int ` +
        `[batch, ${spec.max_length}] (tokenizer.max_length)`);
    }
    described.tokenizer = spec;
  }
  return described;
}
