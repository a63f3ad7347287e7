// Starts and stops `chassis serve` for the server tests, which drive it with the official `openai`
// SDK as a user's app would. Paths come from the environment ctest sets: CHASSIS_BINARY, CHASSIS_SHARED.
import { spawn } from 'node:child_process';
import OpenAI from 'openai';

export const chassis = process.env.CHASSIS_BINARY ?? 'build/chassis';
export const shared = process.env.CHASSIS_SHARED ?? '../shared';
export const stories = `${shared}/models/stories260K/stories260K.gguf`;
export const storiesHf = `${shared}/models/stories260K-hf`;
// stories260K has no chat template of its own; TinyLlama's (Zephyr-style) suits its tokens.
export const chatTemplate = `${shared}/models/tinyllama-1.1b-chat-v1.0/chat_template.jinja`;

// Spawns `chassis serve ARGS --port 0` and resolves once it prints the address it listens on.
export async function startServer(args) {
  const proc = spawn(chassis, ['serve', ...args, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 20000);
    proc.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/serving .* on (http:\/\/[^ \n]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${log}`));
    });
  });
  return {
    url,
    proc,
    exited,
    log: () => log,
    client: (opts = {}) => new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 60000, ...opts }),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

// Parses Prometheus text into { 'name{labels}': value }.
export async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

export function sum(m, prefix) {
  let s = 0;
  for (const [k, v] of Object.entries(m)) if (k === prefix || k.startsWith(prefix + '{')) s += v;
  return s;
}
