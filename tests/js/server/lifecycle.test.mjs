// Several models by name (loaded on first use, unloaded by keep-alive or to fit the memory budget)
// and a graceful SIGTERM: running requests finish, new ones are refused, the process exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stories, storiesHf, chatTemplate, metrics } from './harness.mjs';

const hello = [{ role: 'user', content: 'Once upon a time' }];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('models load on first use, make room for each other, and unload when idle', async () => {
  // Each of the two needs ~6 MiB (weights + KV of 4 slots × 512 positions); 9 MiB holds one.
  const srv = await startServer([`gguf=${stories}`, `folder=${storiesHf}`, '--chat-template', chatTemplate,
    '--memory-budget', '9M', '--keep-alive', '2s']);
  try {
    const c = srv.client();
    assert.deepEqual((await c.models.list()).data.map((m) => m.id), ['gguf', 'folder']);
    assert.equal((await metrics(srv.url))['chassis_models_loaded'], 0);
    const a = await c.chat.completions.create({ model: 'gguf', messages: hello, max_tokens: 16, temperature: 0 });
    let m = await metrics(srv.url);
    assert.equal(m['chassis_models_loaded'], 1);
    assert.ok('chassis_model_bytes{model="gguf"}' in m);
    // The folder is the same model as the GGUF: same greedy text, after the GGUF made room.
    const b = await c.chat.completions.create({ model: 'folder', messages: hello, max_tokens: 16, temperature: 0 });
    assert.equal(b.choices[0].message.content, a.choices[0].message.content);
    m = await metrics(srv.url);
    assert.equal(m['chassis_models_loaded'], 1);
    assert.ok('chassis_model_bytes{model="folder"}' in m);
    assert.ok(!('chassis_model_bytes{model="gguf"}' in m));
    // Idle past keep-alive: unloaded.
    for (let i = 0; i < 60 && (await metrics(srv.url))['chassis_models_loaded'] > 0; i++) await sleep(100);
    assert.equal((await metrics(srv.url))['chassis_models_loaded'], 0);
    // And loaded again on demand.
    const again = await c.chat.completions.create({ model: 'gguf', messages: hello, max_tokens: 16, temperature: 0 });
    assert.equal(again.choices[0].message.content, a.choices[0].message.content);
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('a model larger than the memory budget gets a clear error, not an OOM', async () => {
  const srv = await startServer([stories, '--memory-budget', '1M']);
  try {
    await assert.rejects(srv.client().completions.create({ model: 'stories260K', prompt: 'x' }),
      (e) => e.status === 400 && e.code === 'model_too_large' && /memory budget/.test(e.message));
    assert.equal((await fetch(`${srv.url}/health`)).status, 200);
  } finally {
    await srv.stop();
  }
});

test('a full queue answers 429 with Retry-After, and the server goes on', async () => {
  const srv = await startServer([stories, '--parallel', '1', '--queue', '0']);
  try {
    const c = srv.client();
    const running = await c.completions.create({ model: 'stories260K', prompt: 'Once', max_tokens: 300, stream: true });
    const it = running[Symbol.asyncIterator]();
    await it.next(); // the only slot is busy now
    const res = await fetch(`${srv.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stories260K', prompt: 'x', max_tokens: 2 }),
    });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '1');
    const body = await res.json();
    assert.equal(body.error.type, 'rate_limit_error');
    assert.equal(body.error.code, 'queue_full');
    while (!(await it.next()).done);
    const after = await c.completions.create({ model: 'stories260K', prompt: 'x', max_tokens: 2 });
    assert.equal(after.usage.completion_tokens, 2);
  } finally {
    assert.equal((await srv.stop()).code, 0);
  }
});

test('SIGTERM lets running requests finish, refuses new ones, and exits 0', async () => {
  const srv = await startServer([stories, '--chat-template', chatTemplate, '--grace', '20s']);
  const c = srv.client();
  const stream = await c.chat.completions.create({ model: 'stories260K', messages: hello, max_tokens: 200,
    temperature: 0.8, seed: 3, stream: true, stream_options: { include_usage: true } });
  let finish = null, usage = null, signalled = false, refused = null;
  for await (const chunk of stream) {
    if (!signalled) {
      signalled = true;
      srv.proc.kill('SIGTERM');
      await sleep(50);
      refused = await fetch(`${srv.url}/v1/models`).then((r) => r.status, () => 'closed');
    }
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.ok(finish === 'length' || finish === 'stop', `finish ${finish}`);
  assert.ok(usage.completion_tokens > 1);
  assert.ok(refused === 503 || refused === 'closed', `a new request during the drain got ${refused}`);
  const { code } = await srv.exited;
  assert.equal(code, 0, srv.log());
});
