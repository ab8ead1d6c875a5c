import { synthesize } from '../src/generate/speech.js';
let t = performance.now();
const lap = (l: string) => { const n = performance.now(); console.log(l, (n - t).toFixed(0)); t = n; };
for (let i = 0; i < 5; i++) { await synthesize({voice:'en', variant:'m1', speed:150, pitch:40}, 'seven'); lap('one'); }
