// Misbehaving clients: 64 clients for 30 s, a third of them walking away at random points (mid-
// stream, mid-prefill, while queued). Afterwards the server is healthy, nothing is left running
// or holding KV, and every response that completed is well-formed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stories, chatTemplate, metrics, sum } from './harness.mjs';

let srv;
const model = 'stories260K';
const seconds = Number(process.env.CHASSIS_FAULT_SECONDS ?? 30);

before(async () => {
  srv = await startServer([stories, '--chat-template', chatTemplate, '--parallel', '8', '-c', '512', '--queue', '128', '-q']);
});
after(async () => assert.equal((await srv.stop()).code, 0, srv.log()));

function rand(n) { return Math.floor(Math.random() * n); }

test(`64 clients for ${seconds} s, a third disconnecting`, async () => {
  const client = srv.client({ timeout: 120000 });
  const deadline = Date.now() + seconds * 1000;
  const counts = { completed: 0, aborted: 0, streamed: 0 };
  const problems = [];
  async function one(id) {
    const stream = Math.random() < 0.6;
    const leave = Math.random() < 1 / 3;
    const controller = new AbortController();
    const body = {
      model,
      messages: [{ role: 'user', content: `Story ${id}: ${'once upon a time '.repeat(rand(20))}` }],
      max_tokens: 16 + rand(64),
      temperature: Math.random(),
      seed: id,
    };
    if (leave) setTimeout(() => controller.abort(), rand(400));
    try {
      if (stream) {
        const s = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } },
          { signal: controller.signal });
        let finish = null, usage = null, text = '';
        for await (const chunk of s) {
          if (chunk.usage) usage = chunk.usage;
          const c = chunk.choices[0];
          if (!c) continue;
          text += c.delta.content ?? '';
          if (c.finish_reason) finish = c.finish_reason;
        }
        // The SDK ends an aborted stream's iteration quietly.
        if (leave && controller.signal.aborted && finish === null) { counts.aborted++; return; }
        if (!['stop', 'length'].includes(finish)) problems.push(`stream ${id} ended with finish ${finish}`);
        if (!usage || usage.completion_tokens < 1 || usage.completion_tokens > body.max_tokens)
          problems.push(`stream ${id} usage ${JSON.stringify(usage)}`);
        if (typeof text !== 'string') problems.push(`stream ${id} text`);
        counts.streamed++;
      } else {
        const r = await client.chat.completions.create(body, { signal: controller.signal });
        const c = r.choices?.[0];
        if (!c || typeof c.message?.content !== 'string' || !['stop', 'length'].includes(c.finish_reason) ||
            r.usage.completion_tokens > body.max_tokens)
          problems.push(`response ${id} malformed: ${JSON.stringify(r).slice(0, 200)}`);
      }
      counts.completed++;
    } catch (e) {
      if (leave && (e.name === 'AbortError' || /abort/i.test(e.message))) counts.aborted++;
      else problems.push(`request ${id} failed: ${e.status ?? ''} ${e.message}`);
    }
  }
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (Date.now() < deadline) await one(next++);
  }));
  assert.deepEqual(problems, []);
  assert.ok(counts.completed > 64, JSON.stringify(counts));
  assert.ok(counts.aborted > 10, JSON.stringify(counts));

  // Within a moment every sequence is gone and no KV is held by a running sequence.
  let m;
  for (let i = 0; i < 50; i++) {
    m = await metrics(srv.url);
    if (sum(m, 'chassis_active_sequences') === 0 && sum(m, 'chassis_queue_depth') === 0 && sum(m, 'chassis_kv_blocks_in_use') === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(sum(m, 'chassis_active_sequences'), 0);
  assert.equal(sum(m, 'chassis_queue_depth'), 0);
  assert.equal(sum(m, 'chassis_kv_blocks_in_use'), 0);
  assert.ok(m['chassis_client_disconnects_total'] > 0);
  assert.deepEqual(await (await fetch(`${srv.url}/health`)).json(), { status: 'ok' });
  // And it still answers correctly.
  const r = await srv.client().chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 });
  assert.equal(r.usage.completion_tokens, 4);
  console.log(`# ${JSON.stringify(counts)}, disconnects seen by the server: ${m['chassis_client_disconnects_total']}`);
});
