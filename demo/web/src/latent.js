// Latent points: a seeded standard normal (mulberry32 + Box-Muller) and spherical interpolation
// (zoo.core.latent.slerp: exact at t = 0 and 1, linear where the endpoints are parallel).

export function randomNormal(seed) {
  let state = seed >>> 0;
  let spare = null;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    if (spare !== null) {
      const value = spare;
      spare = null;
      return value;
    }
    const u = 1 - uniform();  // (0, 1]
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** A [num, dim] batch of N(0, 1) as a flat Float32Array. */
export function sampleZ(normal, num, dim) {
  const z = new Float32Array(num * dim);
  for (let i = 0; i < z.length; i++) z[i] = normal();
  return z;
}

/** slerp(z0, z1, t) of two Float32Array vectors, as a Float32Array. */
export function slerp(z0, z1, t, eps = 1e-7) {
  let dot = 0;
  let n0 = 0;
  let n1 = 0;
  for (let i = 0; i < z0.length; i++) {
    dot += z0[i] * z1[i];
    n0 += z0[i] * z0[i];
    n1 += z1[i] * z1[i];
  }
  let cos = dot / Math.sqrt(n0 * n1);
  if (!Number.isFinite(cos)) cos = 1;
  cos = Math.min(1, Math.max(-1, cos));
  const omega = Math.acos(cos);
  const sin = Math.sin(omega);
  const out = new Float32Array(z0.length);
  const parallel = Math.abs(sin) < eps;
  const a = parallel ? 1 - t : Math.sin((1 - t) * omega) / sin;
  const b = parallel ? t : Math.sin(t * omega) / sin;
  for (let i = 0; i < z0.length; i++) out[i] = a * z0[i] + b * z1[i];
  return out;
}
