// A small Node.js app with what a real one has: timers, a worker thread, a
// child process talking over pipes, and a file it appends to. Each line of
// the output file: "<ticks> <worker messages> <child replies>".
const fs = require('fs');
const { Worker } = require('worker_threads');
const { spawn } = require('child_process');
const out = process.argv[2];
let ticks = 0;
let fromWorker = 0;
let replies = 0;
const worker = new Worker("const { parentPort } = require('worker_threads'); let n = 0; setInterval(() => parentPort.postMessage(++n), 20);", { eval: true });
worker.on('message', (n) => { fromWorker = n; });
const child = spawn('sh', ['-c', 'while read l; do echo "got $l"; done'], { stdio: ['pipe', 'pipe', 'ignore'] });
child.stdout.on('data', (d) => { replies += d.toString().split('\n').filter(Boolean).length; });
setInterval(() => {
  ticks++;
  child.stdin.write(`${ticks}\n`);
  fs.appendFileSync(out, `${ticks} ${fromWorker} ${replies}\n`);
}, 50);
