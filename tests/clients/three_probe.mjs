// Run by node, not by pytest: loads a .glb with three.js's own GLTFLoader, plays its animation
// with an AnimationMixer and reports, per skinned mesh and time, what three.js would do.
//   node three_probe.mjs NODE_MODULES GLB REQUEST.json
// REQUEST: {"times": [seconds, ...]}. Prints JSON: {revision, meshes: {name: [{t, shown,
// inFrustum, culled, sphereRadius}]}, firstSphere: {name: radius}, firstSphereWithoutReach: {name: radius},
// camera: [{t, matrix}] (the video camera's world matrix, 16 numbers column-major, at each time),
// nodes: [names of the scene's objects]}
// where `culled` is three.js's own test (Frustum.intersectsObject with the bounding sphere it
// computes once, at the first draw: here time 0), `inFrustum` whether any drawn vertex is inside
// the video camera's frustum, and `shown` whether the drawn vertices are not collapsed (scale 0).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [modules, glbPath, requestPath] = process.argv.slice(2);
globalThis.navigator ??= { userAgent: 'node' };  // GLTFLoader reads it; node 20 has none
globalThis.self ??= globalThis;
const THREE = await import(pathToFileURL(`${modules}/three/build/three.module.js`));
const { GLTFLoader } = await import(pathToFileURL(`${modules}/three/examples/jsm/loaders/GLTFLoader.js`));
const request = JSON.parse(readFileSync(requestPath, 'utf8'));
const bytes = readFileSync(glbPath);
const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
const gltf = await new Promise((resolve, reject) => new GLTFLoader().parse(buffer, '', resolve, reject));

const scene = gltf.scene;
const camera = gltf.cameras[0];
const mixer = new THREE.AnimationMixer(scene);
mixer.clipAction(gltf.animations[0]).play();
const meshes = [];
scene.traverse((o) => { if (o.isSkinnedMesh) meshes.push(o); });

function pose(t) {
  mixer.setTime(t);
  scene.updateMatrixWorld(true);
  camera.updateMatrixWorld(true);
  for (const mesh of meshes) mesh.skeleton.update();
}

function frustum() {
  camera.updateProjectionMatrix();
  const m = new THREE.Matrix4().multiplyMatrices(camera.projectionMatrix, camera.matrixWorldInverse);
  return new THREE.Frustum().setFromProjectionMatrix(m);
}

const reach = 2;  // the file's last two vertices: the reach box corners, never drawn
function drawnPoints(mesh) {
  const count = mesh.geometry.getAttribute('position').count - reach;
  const points = [];
  const v = new THREE.Vector3();
  for (let i = 0; i < count; i += 7) points.push(mesh.getVertexPosition(i, v).clone().applyMatrix4(mesh.matrixWorld));
  return points;
}

// The first draw: three.js computes each skinned mesh's bounding sphere once, now.
pose(0);
const firstSphere = {}, firstSphereWithoutReach = {};
for (const mesh of meshes) {
  mesh.computeBoundingSphere();
  firstSphere[mesh.name] = mesh.boundingSphere.radius;
  const without = new THREE.Sphere().setFromPoints(drawnPoints(mesh));
  firstSphereWithoutReach[mesh.name] = without.radius;
}
const names = [];
scene.traverse((o) => names.push(o.name));
const out = { revision: THREE.REVISION, meshes: {}, firstSphere, firstSphereWithoutReach, camera: [], nodes: names };
for (const mesh of meshes) out.meshes[mesh.name] = [];
for (const t of request.times) {
  pose(t);
  const f = frustum();
  out.camera.push({ t, matrix: camera.matrixWorld.elements.slice() });
  for (const mesh of meshes) {
    const points = drawnPoints(mesh);
    const shown = new THREE.Sphere().setFromPoints(points).radius > 1e-4;  // not collapsed by a scale of 0
    const inFrustum = shown && points.some((p) => f.containsPoint(p));
    out.meshes[mesh.name].push({ t, shown, inFrustum, culled: !f.intersectsObject(mesh) });
  }
}
console.log(JSON.stringify(out));
