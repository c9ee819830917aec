// LiteRT.js behind one call: run(flavour, signature, inputs) -> outputs and milliseconds.
// Wasm files come from the page's own wasm/ folder (copied there by build.mjs).

import {loadAndCompile, loadLiteRt, Tensor} from '@litertjs/core';

import {InputError} from './manifest.js';
import {withBatch} from './tflite_batch.js';

let loading = null;

/** Loads the LiteRT.js wasm runtime once (CPU: XNNPACK in WebAssembly). */
export function loadRuntime() {
  loading ??= loadLiteRt(new URL('wasm/', document.baseURI).href);
  return loading;
}

const TYPED = {float32: Float32Array, int32: Int32Array, int64: BigInt64Array};

export class Generator {
  /** `described` from manifest.describe; files are read from `base` (e.g. "export/"). */
  constructor(described, base) {
    this.described = described;
    this.base = base;
    this.bytes = new Map();  // file -> Uint8Array
    this.models = new Map();  // "file@batch" -> CompiledModel
  }

  async fileBytes(file) {
    if (!this.bytes.has(file)) {
      const response = await fetch(this.base + encodeURIComponent(file));
      if (!response.ok) {
        throw new InputError(`${file}: HTTP ${response.status} (listed in ` +
          `${this.described.name}.json but not served)`);
      }
      this.bytes.set(file, new Uint8Array(await response.arrayBuffer()));
    }
    return this.bytes.get(file);
  }

  /** The compiled model of (flavour, signature) for a batch size; {model, compileMs}. */
  async model(flavour, signature, batch) {
    const file = this.described.files[flavour][signature];
    const key = `${file}@${batch}`;
    if (this.models.has(key)) return {model: this.models.get(key), compileMs: 0};
    const bytes = withBatch(await this.fileBytes(file), batch);
    await loadRuntime();
    const start = performance.now();
    const model = await loadAndCompile(bytes, {accelerator: 'wasm'});
    const compileMs = performance.now() - start;
    this.models.set(key, model);
    return {model, compileMs};
  }

  /**
   * Runs one signature. `inputs`: name -> {data: TypedArray, shape}. Returns {outputs:
   * name -> {data: Float32Array (a copy), shape}, ms (inference only, after a warm-up run
   * when the model was just compiled), compileMs}.
   */
  async run(flavour, signature, inputs) {
    const batch = Object.values(inputs)[0].shape[0];
    const {model, compileMs} = await this.model(flavour, signature, batch);
    const runner = model.signatures[signature] ?? model;
    const tensors = {};
    let ms = 0;
    for (const [name, value] of Object.entries(inputs)) {
      const dtype = this.described.inputs[name]?.dtype ?? 'float32';
      const Typed = TYPED[dtype] ?? Float32Array;
      const data = value.data instanceof Typed ? value.data : Typed.from(value.data);
      tensors[name] = new Tensor(data, value.shape);
    }
    let results;
    try {
      if (compileMs) {  // XNNPACK packs weights on the first run: time the second one
        for (const tensor of Object.values(await runner.run(tensors))) tensor.delete();
      }
      const start = performance.now();
      results = await runner.run(tensors);
      ms = performance.now() - start;
    } finally {
      for (const tensor of Object.values(tensors)) tensor.delete();
    }
    const outputs = {};
    for (const [name, tensor] of Object.entries(results)) {
      outputs[name] = {
        data: Float32Array.from(tensor.toTypedArray()),
        shape: Array.from(tensor.type.layout.dimensions),
      };
      tensor.delete();
    }
    return {outputs, ms, compileMs};
  }

  /** Frees every compiled model (a flavour switch keeps the downloaded bytes). */
  release() {
    for (const model of this.models.values()) model.delete();
    this.models.clear();
  }
}
