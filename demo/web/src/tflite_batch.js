// Fixes the batch size of a .tflite flatbuffer, in place.
//
// The zoo exports every input with a dynamic batch axis (shape_signature [-1, ...]). LiteRT.js
// 2.5 checks an input tensor's type against that signature exactly, cannot resize inputs and
// sizes output buffers from the file's static shapes, so the page compiles one copy of a model
// per batch size: every tensor whose shape_signature starts with -1 (inputs, intermediates and
// outputs) gets the batch as the first entry of `shape` and `shape_signature` (int32 vectors
// rewritten in place; nothing moves). Schema (tensorflow/lite/schema/schema.fbs):
// Model.subgraphs = field 2; SubGraph.tensors = 0; Tensor.shape = 0, .shape_signature = 7.

function fieldPosition(view, table, field) {
  const vtable = table - view.getInt32(table, true);
  const vtableSize = view.getUint16(vtable, true);
  const entry = 4 + 2 * field;
  if (entry >= vtableSize) return 0;
  const offset = view.getUint16(vtable + entry, true);
  return offset ? table + offset : 0;
}

function indirect(view, position) {
  return position + view.getUint32(position, true);
}

function vector(view, table, field) {
  const position = fieldPosition(view, table, field);
  if (!position) return null;
  const start = indirect(view, position);
  return {length: view.getUint32(start, true), data: start + 4};
}

function tableAt(view, vec, i) {
  return indirect(view, vec.data + 4 * i);
}

/**
 * Returns a copy of `bytes` (a .tflite flatbuffer) with its dynamic batch axes set to `batch`.
 * Throws if the file is not a TFLite model or has no input with a dynamic batch axis.
 */
export function withBatch(bytes, batch) {
  const out = new Uint8Array(bytes);  // a copy
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (out.byteLength < 8 || String.fromCharCode(...out.subarray(4, 8)) !== 'TFL3') {
    throw new Error('not a TFLite flatbuffer (no TFL3 identifier)');
  }
  const model = indirect(view, 0);
  const subgraphs = vector(view, model, 2);
  if (!subgraphs) throw new Error('TFLite model without subgraphs');
  let patched = 0;
  for (let s = 0; s < subgraphs.length; s++) {
    const tensors = vector(view, tableAt(view, subgraphs, s), 0);
    for (let t = 0; tensors && t < tensors.length; t++) {
      const tensor = tableAt(view, tensors, t);
      const signature = vector(view, tensor, 7);
      if (!signature || signature.length < 1 || view.getInt32(signature.data, true) !== -1) {
        continue;
      }
      view.setInt32(signature.data, batch, true);
      const shape = vector(view, tensor, 0);
      if (shape && shape.length === signature.length) view.setInt32(shape.data, batch, true);
      patched++;
    }
  }
  if (patched === 0) throw new Error('the model has no dynamic batch axis to set');
  return out;
}
