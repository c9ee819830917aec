// The text families' tokenizer, exactly as `<name>.json`'s "tokenizer" object defines it:
// lowercase ASCII A-Z only; every maximal run of characters outside [a-z0-9] becomes one space;
// split on spaces dropping empty pieces; each word -> its index in the vocabulary (unknown ->
// oov_id); keep the first max_length ids; pad with pad_id at the end to max_length.
// The Python side is zoo.text (Tokenizer.tokenize_numpy); --check compares the two.

/** The words of `text` under the rule (before the vocabulary lookup). */
export function words(text) {
  const lowered = String(text).replace(/[A-Z]/g, (c) => c.toLowerCase());
  return lowered.replace(/[^a-z0-9]+/gu, ' ').split(' ').filter((w) => w.length > 0);
}

/** Token ids (length max_length) of `text` for a tokenizer spec from the manifest. */
export function tokenize(text, spec) {
  const index = new Map();
  spec.vocabulary.forEach((word, i) => {
    if (!index.has(word)) index.set(word, i);
  });
  const ids = words(text).map((w) => (index.has(w) ? index.get(w) : spec.oov_id));
  const kept = ids.slice(0, spec.max_length);
  while (kept.length < spec.max_length) kept.push(spec.pad_id);
  return kept;
}
