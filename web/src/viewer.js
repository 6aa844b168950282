// The facerecon viewer: upload photos to the HTTP API, follow the job, show the GLB in three.js
// (orbit, wireframe and texture toggles, ARKit expression sliders driven by the GLB's morph
// targets), the overlay beside it, and links to the files. Built by web/build.mjs.
// For tests it fills window.viewerReport once a face is on screen.
import * as THREE from "three";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";

const $ = (id) => document.getElementById(id);
const DOWNLOADS = [["mesh.glb", "GLB (morph targets)"], ["mesh.obj", "OBJ"], ["mesh.mtl", "MTL"],
  ["albedo.png", "texture"], ["mesh.ply", "PLY"], ["params.json", "parameters"], ["landmarks.json", "landmarks"]];
let arkitNames = [];
fetch("/v1/meta").then((r) => r.json()).then((m) => { arkitNames = m.arkit_names; }).catch(() => {});

const canvas = $("view");
const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(1);
const scene = new THREE.Scene();
scene.background = new THREE.Color(0x303440);
scene.add(new THREE.AmbientLight(0xffffff, 1.2));
const camera = new THREE.PerspectiveCamera(30, 1, 0.001, 100);
const key = new THREE.DirectionalLight(0xffffff, 2.2);
key.position.set(0.5, 0.6, 1);
camera.add(key);
scene.add(camera);
const controls = new OrbitControls(camera, canvas);
controls.addEventListener("change", render);
let current = null; // {root, meshes, map}

function render() { renderer.render(scene, camera); }

function show(id, visible = true) { $(id).hidden = !visible; }

function setStatus(stage, progress) {
  show("status");
  $("stage").textContent = stage;
  $("bar").value = progress;
}

function fail(message) {
  show("error");
  $("error").textContent = message;
  $("go").disabled = false;
}

$("upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = $("photos").files;
  if (!files.length) return;
  const body = new FormData();
  for (const f of files) body.append("image", f, f.name);
  body.append("mode", $("mode").value);
  $("go").disabled = true;
  show("error", false); show("note", false);
  setStatus(`uploading ${files.length} photo(s)`, 0);
  let reply;
  try {
    reply = await fetch("/v1/reconstructions", { method: "POST", body });
  } catch (err) { fail(`upload failed: ${err}`); return; }
  const job = await reply.json().catch(() => ({}));
  if (reply.status !== 202) {
    const retry = reply.headers.get("Retry-After");
    fail(`${job.detail || reply.statusText}${retry ? ` (try again in ${retry} s)` : ""}`);
    return;
  }
  follow(job.url);
});

async function follow(url) {
  for (;;) {
    const job = await (await fetch(url)).json();
    setStatus(`${job.status}: ${job.stage}`, job.progress);
    if (job.status === "done") { await showJob(job); break; }
    if (job.status === "failed" || !job.status) { fail(job.error || job.detail || "the reconstruction failed"); break; }
    await new Promise((r) => setTimeout(r, 400));
  }
  $("go").disabled = false;
}

async function showJob(job) {
  const notes = [job.note, ...job.errors.map((e) => `${e.name}: ${e.error}`)].filter(Boolean);
  show("note", notes.length > 0);
  $("note").textContent = notes.join(" — ");
  const pick = $("face");
  pick.innerHTML = "";
  job.faces.forEach((f, k) => pick.add(new Option(`${k + 1}: ${f.name}`, String(k))));
  show("face-pick", job.faces.length > 1);
  pick.onchange = () => showFace(job, job.faces[Number(pick.value)]);
  show("result");
  await showFace(job, job.faces[0]);
}

async function showFace(job, face) {
  const gltf = await new GLTFLoader().loadAsync(face.files["mesh.glb"]);
  if (current) scene.remove(current.root);
  const meshes = [];
  gltf.scene.traverse((o) => { if (o.isMesh) meshes.push(o); });
  current = { root: gltf.scene, meshes, maps: meshes.map((m) => m.material.map), fitted: meshes.map((m) => [...(m.morphTargetInfluences || [])]) };
  scene.add(gltf.scene);
  frame(gltf.scene);
  applyToggles();
  buildSliders();
  $("overlay").src = face.files["overlay.png"];
  const list = $("downloads");
  list.innerHTML = "";
  for (const [name, label] of DOWNLOADS) {
    if (!face.files[name]) continue;
    const a = document.createElement("a");
    a.href = face.files[name];
    a.download = name;
    a.textContent = `${label} (${name})`;
    const li = document.createElement("li");
    li.append(a);
    list.append(li);
  }
  const vertices = meshes.reduce((n, m) => n + m.geometry.attributes.position.count, 0);
  const morphs = Object.keys(meshes[0].morphTargetDictionary || {}).length;
  $("stats").textContent = `${vertices} vertices, ${morphs} morph targets`;
  render();
  window.viewerReport = { jobId: job.id, faces: job.faces.length, vertices, morphTargets: morphs,
    sliders: document.querySelectorAll("#sliders input").length, note: job.note };
}

function frame(object) {
  const box = new THREE.Box3().setFromObject(object);
  const size = box.getSize(new THREE.Vector3()).length();
  const centre = box.getCenter(new THREE.Vector3());
  camera.near = size / 100;
  camera.far = size * 20;
  camera.position.copy(centre).add(new THREE.Vector3(0, 0, size * 1.5));
  camera.updateProjectionMatrix();
  controls.target.copy(centre);
  controls.update();
}

function applyToggles() {
  if (!current) return;
  current.meshes.forEach((m, k) => {
    m.material.wireframe = $("wireframe").checked;
    m.material.map = $("texture").checked ? current.maps[k] : null;
    m.material.needsUpdate = true;
  });
  render();
}
$("wireframe").addEventListener("change", applyToggles);
$("texture").addEventListener("change", applyToggles);

function buildSliders() {
  const box = $("sliders");
  box.innerHTML = "";
  const dict = current.meshes[0].morphTargetDictionary || {};
  const order = arkitNames.filter((n) => n in dict).concat(Object.keys(dict).filter((n) => !arkitNames.includes(n)).sort());
  for (const name of order) {
    const row = document.createElement("label");
    row.className = "slider";
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: 0, max: 1, step: 0.01, name });
    input.value = current.meshes[0].morphTargetInfluences[dict[name]];
    const value = document.createElement("span");
    value.textContent = Number(input.value).toFixed(2);
    input.addEventListener("input", () => {
      for (const m of current.meshes) if (m.morphTargetDictionary && name in m.morphTargetDictionary) m.morphTargetInfluences[m.morphTargetDictionary[name]] = Number(input.value);
      value.textContent = Number(input.value).toFixed(2);
      render();
    });
    const text = document.createElement("span");
    text.textContent = name;
    row.append(text, input, value);
    box.append(row);
  }
}

$("reset").addEventListener("click", () => {
  if (!current) return;
  current.meshes.forEach((m, k) => { if (m.morphTargetInfluences) m.morphTargetInfluences.splice(0, Infinity, ...current.fitted[k]); });
  buildSliders();
  render();
});
