// The emoblend page: camera or a video file -> JPEG frames -> /v1/stream -> overlay and chart.
// One frame is in flight at a time (the next goes after the reply), so latency never builds up.
// The latest reply is kept in window.emoblendLast for tests and for pages that embed this one.
"use strict";

const MAX_WIDTH = 640;
const JPEG_QUALITY = 0.85;
const CHART_SECONDS = 10;
const PALETTE = { happy: "#ffa500", unknown: "#aaaaaa", sad: "#0064c8" };
const SPARE_COLORS = ["#e6194b", "#3cb44b", "#ffe119", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c"];

const token = new URLSearchParams(location.search).get("token");
const video = document.getElementById("video");
const view = document.getElementById("view");
const chart = document.getElementById("chart");
const statusLine = document.getElementById("status");
const stats = document.getElementById("stats");
const grab = document.createElement("canvas");

let ws = null;
let classes = [];
let inFlight = false;
let sentAt = 0;
let retryMs = 1000;
let stopped = false;  // wrong token: retrying cannot help
let sourceProblem = null;  // why there is no camera: kept on screen until a source works
const replyTimes = [];  // performance.now() of recent replies, for fps
let rtt = null;
const history = [];  // {t, probabilities} of the face drawn in the chart
window.emoblendLast = null;

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

function colorOf(label) {
  if (PALETTE[label]) return PALETTE[label];
  const i = Math.max(0, classes.indexOf(label));
  return SPARE_COLORS[i % SPARE_COLORS.length];
}

// ---- the connection ----------------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = token ? "?token=" + encodeURIComponent(token) : "";
  ws = new WebSocket(scheme + "//" + location.host + "/v1/stream" + query);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { retryMs = 1000; inFlight = false; };
  ws.onmessage = (event) => onReply(JSON.parse(event.data));
  ws.onclose = (event) => {
    ws = null;
    inFlight = false;
    if (event.code === 1008) {
      stopped = true;
      say("Wrong or missing token: open this page as /?token=YOUR_TOKEN " +
          "(the token emoblend serve was started with).", true);
    } else if (event.code === 1013) {
      say("The server is busy (" + (event.reason || "too many streams") +
          "); retrying in 5 s…", true);
      setTimeout(connect, 5000);
    } else {
      say("Lost the server; reconnecting in " + (retryMs / 1000).toFixed(0) + " s…", true);
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    }
  };
}

function onReply(msg) {
  if (msg.server) {
    classes = msg.server.classes;
    drawLegend();
    if (sourceProblem) say(sourceProblem, true);
    else if (video.srcObject || video.src) say("Reading emotions (model " + msg.server.model + ").");
    else say("Connected: model " + msg.server.model + ". Start the camera or pick a video file.");
    sendFrame();
    return;
  }
  inFlight = false;
  if (msg.error) {
    say("Server: " + msg.error, true);
  } else {
    const now = performance.now();
    rtt = now - sentAt;
    replyTimes.push(now);
    while (replyTimes.length && now - replyTimes[0] > 1000) replyTimes.shift();
    window.emoblendLast = msg;
    const face = msg.faces.slice().sort((a, b) => a.face_id - b.face_id)[0];
    if (face) {
      history.push({ t: now, p: face.probabilities });
      document.getElementById("chart-face").textContent = "(face #" + face.face_id + ")";
    }
    while (history.length && now - history[0].t > CHART_SECONDS * 1000) history.shift();
    stats.textContent = replyTimes.length + " fps · round trip " + rtt.toFixed(0) + " ms" +
      (msg.dropped ? " · dropped " + msg.dropped : "");
    if (statusLine.classList.contains("error")) say("Reading emotions.");
  }
  sendFrame();
}

// ---- frames out: downscale, JPEG, send the next one after each reply ----------------------

function sendFrame() {
  if (!ws || ws.readyState !== WebSocket.OPEN || inFlight) return;
  if (video.readyState < 2 || !video.videoWidth) {
    setTimeout(sendFrame, 50);
    return;
  }
  const scale = Math.min(1, MAX_WIDTH / video.videoWidth);
  grab.width = Math.round(video.videoWidth * scale);
  grab.height = Math.round(video.videoHeight * scale);
  grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
  inFlight = true;
  grab.toBlob((blob) => {
    if (!blob || !ws || ws.readyState !== WebSocket.OPEN) { inFlight = false; return; }
    blob.arrayBuffer().then((buffer) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) { inFlight = false; return; }
      sentAt = performance.now();
      ws.send(buffer);
    });
  }, "image/jpeg", JPEG_QUALITY);
}

// ---- sources ---------------------------------------------------------------------------------

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say("This browser gives no camera here (pages need https or localhost for a camera); " +
        "pick a video file instead.", true);
    return;
  }
  try {
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640 }, audio: false });
    video.removeAttribute("src");
    video.srcObject = media;
    await video.play();
    sourceProblem = null;
    say("Reading emotions from the camera.");
    sendFrame();
  } catch (err) {
    if (err.name === "NotAllowedError" || err.name === "SecurityError") {
      sourceProblem = "Camera permission denied: allow the camera in the browser, or pick a video file.";
    } else if (err.name === "NotFoundError" || err.name === "OverconstrainedError") {
      sourceProblem = "No camera found: plug one in, or pick a video file.";
    } else {
      sourceProblem = "Cannot start the camera (" + err.name + ": " + err.message + "); pick a video file.";
    }
    if (!stopped) say(sourceProblem, true);
  }
}

function startFile(file) {
  if (video.srcObject) video.srcObject.getTracks().forEach((track) => track.stop());
  video.srcObject = null;
  video.src = URL.createObjectURL(file);
  video.play().then(() => {
    sourceProblem = null;
    say("Reading emotions from " + file.name + ".");
    sendFrame();
  },
    () => say("Cannot play " + file.name + " in this browser; try an MP4 (H.264) file.", true));
}

// ---- drawing -------------------------------------------------------------------------------

function drawView() {
  const ctx = view.getContext("2d");
  if (video.readyState >= 2 && video.videoWidth) {
    const scale = Math.min(1, MAX_WIDTH / video.videoWidth);
    const w = Math.round(video.videoWidth * scale), h = Math.round(video.videoHeight * scale);
    if (view.width !== w || view.height !== h) { view.width = w; view.height = h; }
    ctx.drawImage(video, 0, 0, w, h);
  }
  const last = window.emoblendLast;
  if (last) {
    for (const face of last.faces) {
      const [x, y, w, h] = face.box;
      const color = colorOf(face.stable_label);
      ctx.lineWidth = 3;
      ctx.strokeStyle = color;
      ctx.strokeRect(x, y, w, h);
      const text = "#" + face.face_id + " " + face.stable_label + " " + face.confidence.toFixed(2);
      ctx.font = "bold 16px system-ui, sans-serif";
      const tw = ctx.measureText(text).width;
      const ty = y > 24 ? y - 6 : y + h + 20;
      ctx.fillStyle = color;
      ctx.fillRect(x, ty - 17, tw + 8, 22);
      ctx.fillStyle = "#000";
      ctx.fillText(text, x + 4, ty);
      const barY = Math.min(view.height - 8, y + h + (ty > y + h ? 26 : 4));
      ctx.fillStyle = "#333";
      ctx.fillRect(x, barY, w, 6);
      ctx.fillStyle = color;
      ctx.fillRect(x, barY, w * face.confidence, 6);
    }
  }
  drawChart();
  requestAnimationFrame(drawView);
}

function drawChart() {
  const ctx = chart.getContext("2d");
  const W = chart.width, H = chart.height, now = performance.now();
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, W, H);
  ctx.strokeStyle = "#333";
  ctx.lineWidth = 1;
  for (const p of [0.25, 0.5, 0.75]) {
    ctx.beginPath(); ctx.moveTo(0, H * (1 - p)); ctx.lineTo(W, H * (1 - p)); ctx.stroke();
  }
  for (const label of classes) {
    ctx.strokeStyle = colorOf(label);
    ctx.lineWidth = 2;
    ctx.beginPath();
    history.forEach((point, i) => {
      const x = W * (1 - (now - point.t) / (CHART_SECONDS * 1000));
      const y = (H - 4) * (1 - (point.p[label] ?? 0)) + 2;
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

function drawLegend() {
  const legend = document.getElementById("legend");
  legend.replaceChildren(...classes.map((label) => {
    const item = document.createElement("span");
    item.style.setProperty("--c", colorOf(label));
    item.textContent = label;
    return item;
  }));
}

document.getElementById("camera").addEventListener("click", startCamera);
document.getElementById("file").addEventListener("change", (event) => {
  if (event.target.files.length) startFile(event.target.files[0]);
});
say("Connecting to the server…");
connect();
startCamera();
requestAnimationFrame(drawView);
