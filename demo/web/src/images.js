// Tensors <-> pictures: [B, H, W, C] in [-1, 1] drawn as grids; PNG files read as tensors.

const GAP = 1;

/** Display scale of an H-pixel image: about 96 px on screen, whole multiples only. */
export function scaleFor(height) {
  return Math.max(1, Math.round(96 / height));
}

function toByte(value) {
  return Math.max(0, Math.min(255, Math.round((value + 1) * 127.5)));
}

/**
 * Draws images [B, H, W, C] (flat `data`) into `canvas` as a grid of `cols` columns; the
 * canvas holds native pixels and CSS scales it up without smoothing.
 */
export function drawGrid(canvas, data, shape, cols, scale = scaleFor(shape[1])) {
  const [count, height, width, channels] = shape;
  cols = Math.max(1, Math.min(cols, count));
  const rows = Math.ceil(count / cols);
  canvas.width = cols * width + (cols - 1) * GAP;
  canvas.height = rows * height + (rows - 1) * GAP;
  canvas.style.width = `${canvas.width * scale}px`;
  canvas.style.height = `${canvas.height * scale}px`;
  const context = canvas.getContext('2d');
  const picture = context.createImageData(canvas.width, canvas.height);
  picture.data.fill(255);
  for (let n = 0; n < count; n++) {
    const x0 = (n % cols) * (width + GAP);
    const y0 = Math.floor(n / cols) * (height + GAP);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const source = ((n * height + y) * width + x) * channels;
        const target = ((y0 + y) * canvas.width + x0 + x) * 4;
        for (let c = 0; c < 3; c++) {
          picture.data[target + c] = toByte(data[source + (channels === 3 ? c : 0)]);
        }
        picture.data[target + 3] = 255;
      }
    }
  }
  context.putImageData(picture, 0, 0);
}

/** Draws points [B, 2] (or [B, 1] on a strip) as a scatter plot. */
export function drawPoints(canvas, data, shape) {
  const [count, dims] = shape;
  const size = 320;
  canvas.width = size;
  canvas.height = dims === 2 ? size : 80;
  canvas.style.width = `${canvas.width}px`;
  canvas.style.height = `${canvas.height}px`;
  const context = canvas.getContext('2d');
  context.fillStyle = '#fff';
  context.fillRect(0, 0, canvas.width, canvas.height);
  let extent = 1e-6;
  for (const value of data) if (Number.isFinite(value)) extent = Math.max(extent, Math.abs(value));
  extent *= 1.1;
  const px = (v) => ((v / extent + 1) / 2) * size;
  context.strokeStyle = '#ccc';
  context.beginPath();
  context.moveTo(size / 2, 0);
  context.lineTo(size / 2, canvas.height);
  if (dims === 2) {
    context.moveTo(0, size / 2);
    context.lineTo(size, size / 2);
  }
  context.stroke();
  context.fillStyle = 'rgba(30, 90, 200, 0.6)';
  for (let n = 0; n < count; n++) {
    const x = px(data[n * dims]);
    const y = dims === 2 ? size - px(data[n * dims + 1]) : 20 + ((n * 37) % 40);
    context.fillRect(x - 1.5, y - 1.5, 3, 3);
  }
  context.fillStyle = '#555';
  context.font = '11px sans-serif';
  context.fillText(`±${extent.toFixed(2)}`, 4, 12);
}

/**
 * Reads an image (URL or File/Blob) as float32 [H, W, C] in [-1, 1]: resized to H x W,
 * grey as the luma 0.299 R + 0.587 G + 0.114 B when C = 1 (exact for grey files).
 */
export async function readImage(source, height, width, channels) {
  const blob = typeof source === 'string' ? await (await fetchOk(source)).blob() : source;
  const bitmap = await createImageBitmap(blob, {
    colorSpaceConversion: 'none', premultiplyAlpha: 'none',
  });
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d');
  context.drawImage(bitmap, 0, 0, width, height);
  const rgba = context.getImageData(0, 0, width, height).data;
  const out = new Float32Array(height * width * channels);
  for (let i = 0; i < height * width; i++) {
    const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]];
    if (channels === 1) {
      const grey = r === g && g === b ? r : Math.round(0.299 * r + 0.587 * g + 0.114 * b);
      out[i] = grey / 127.5 - 1;
    } else {
      out[3 * i] = r / 127.5 - 1;
      out[3 * i + 1] = g / 127.5 - 1;
      out[3 * i + 2] = b / 127.5 - 1;
    }
  }
  return out;
}

async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}
