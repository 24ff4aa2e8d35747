// Starts Valle's scoring Web Worker: Trunk's worker script, then its wasm. Trunk does not
// hash worker file names; the service worker fetches these network first (public/sw.js).
importScripts('/valle-scorer.js');
wasm_bindgen('/valle-scorer_bg.wasm');
