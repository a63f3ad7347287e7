// The OpenAI routes, driven by the official `openai` SDK: chat (plain and streamed, with usage),
// completions, models, and every error a client can provoke, each in OpenAI's error shape.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, stories, chatTemplate, metrics, sum } from './harness.mjs';

let srv, bare, keyed, client;
const model = 'stories260K';
const hello = [{ role: 'user', content: 'Once upon a time' }];

before(async () => {
  [srv, bare, keyed] = await Promise.all([
    startServer([stories, '--chat-template', chatTemplate, '-c', '256', '--max-body', '64K', '--cors', 'http://app.example']),
    startServer([stories]),
    startServer([stories, '--chat-template', chatTemplate, '--api-key', 'sk-right']),
  ]);
  client = srv.client();
});
after(async () => {
  for (const s of [srv, bare, keyed]) if (s) assert.equal((await s.stop()).code, 0, s.log());
});

test('models are listed and retrieved; an unknown one is a 404', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), [model]);
  assert.equal((await client.models.retrieve(model)).id, model);
  await assert.rejects(client.models.retrieve('nope'), (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
});

test('chat completion: content, finish reason and usage', async () => {
  const r = await client.chat.completions.create({ model, messages: hello, max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 12);
  assert.ok(r.usage.prompt_tokens > 5);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 12);
  assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
  // The same conversation again reuses the cached prompt: every whole KV block (16 positions)
  // before its last token.
  const again = await client.chat.completions.create({ model, messages: hello, max_tokens: 12, temperature: 0 });
  assert.equal(again.choices[0].message.content, r.choices[0].message.content);
  const block = (await metrics(srv.url))['chassis_kv_block_tokens{model="stories260K"}'];
  assert.equal(block, 16);
  assert.equal(again.usage.prompt_tokens_details.cached_tokens, Math.floor((r.usage.prompt_tokens - 1) / block) * block);
  assert.ok(again.usage.prompt_tokens_details.cached_tokens > 0);
});

test('streamed chat gives the same text, a role first and usage last', async () => {
  const plain = await client.chat.completions.create({ model, messages: hello, max_tokens: 30, temperature: 0 });
  const stream = await client.chat.completions.create({
    model, messages: hello, max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '', first = null, finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices.length) continue;
    const c = chunk.choices[0];
    if (first === null) first = c.delta;
    text += c.delta.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(first.role, 'assistant');
  assert.equal(text, plain.choices[0].message.content);
  assert.equal(finish, plain.choices[0].finish_reason);
  assert.ok(chunks > 5);
  assert.equal(usage.completion_tokens, plain.usage.completion_tokens);
  assert.equal(usage.prompt_tokens, plain.usage.prompt_tokens);
});

test('stop strings, n choices with a seed, logprobs', async () => {
  const full = await client.chat.completions.create({ model, messages: hello, max_tokens: 40, temperature: 0 });
  const text = full.choices[0].message.content;
  const stop = text.slice(8, 12);
  const cut = await client.chat.completions.create({ model, messages: hello, max_tokens: 40, temperature: 0, stop: [stop] });
  assert.equal(cut.choices[0].finish_reason, 'stop');
  assert.equal(cut.choices[0].message.content, text.slice(0, text.indexOf(stop)));

  const args = { model, messages: hello, max_tokens: 16, temperature: 1, seed: 1234, n: 3 };
  const a = await client.chat.completions.create(args);
  const b = await client.chat.completions.create(args);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
  assert.equal(a.usage.completion_tokens, 48);

  const lp = await client.chat.completions.create({ model, messages: hello, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = lp.choices[0].logprobs.content;
  assert.equal(content.length, 6);
  assert.equal(content.map((t) => t.token).join(''), lp.choices[0].message.content);
  for (const t of content) {
    assert.equal(t.top_logprobs.length, 3);
    assert.equal(t.top_logprobs[0].token, t.token); // greedy picks the most likely
    assert.ok(t.logprob <= 0);
  }
});

test('completions: text and token prompts, echo, logprobs, streaming', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 10, temperature: 0, logprobs: 2, echo: true });
  assert.equal(r.object, 'text_completion');
  assert.ok(r.choices[0].text.startsWith('Once upon a time'));
  assert.equal(r.choices[0].logprobs.tokens.length, 10);
  assert.equal(r.usage.completion_tokens, 10);
  const generated = r.choices[0].text.slice('Once upon a time'.length);
  // Token ids: BOS (1) + the prompt's tokens give the same continuation.
  const tokens = await client.completions.create({ model, prompt: [1, 403, 407, 261, 378], max_tokens: 10, temperature: 0 });
  assert.equal(tokens.usage.prompt_tokens, 5);
  assert.equal(tokens.choices[0].text, generated);
  await assert.rejects(client.completions.create({ model, prompt: [1, 99999], max_tokens: 2 }), (e) => e.status === 400);
  let streamed = '';
  for await (const c of await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 10, temperature: 0, stream: true }))
    streamed += c.choices[0]?.text ?? '';
  assert.equal(streamed, generated);
  const two = await client.completions.create({ model, prompt: ['One day', 'The cat'], max_tokens: 4, temperature: 0 });
  assert.equal(two.choices.length, 2);
});

test('bad requests are 400s that name the field; unknown fields are ignored', async () => {
  const bad = (p) => assert.rejects(p, (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && !!e.error?.message);
  await bad(client.chat.completions.create({ model, messages: hello, temperature: 'hot' }));
  await assert.rejects(client.chat.completions.create({ model, messages: hello, max_tokens: -1 }), (e) => e.param === 'max_tokens');
  await assert.rejects(client.chat.completions.create({ model, messages: 'hi' }), (e) => e.param === 'messages');
  await assert.rejects(client.chat.completions.create({ model }), (e) => e.status === 400 && e.param === 'messages');
  await assert.rejects(client.chat.completions.create({ model, messages: hello, stop: 5 }), (e) => e.param === 'stop');
  await assert.rejects(client.chat.completions.create({ model, messages: [{ content: 'no role' }] }), (e) => e.status === 400);
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: hello }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  await assert.rejects(client.chat.completions.create({ model, messages: hello, response_format: { type: 'json_object' } }),
    (e) => e.status === 400 && e.param === 'response_format');
  const ok = await client.chat.completions.create({ model, messages: hello, max_tokens: 2, some_future_field: { x: 1 }, user: 'u1' });
  assert.equal(ok.choices.length, 1);

  // Malformed JSON, straight over HTTP.
  const res = await fetch(`${srv.url}/v1/chat/completions`, { method: 'POST', body: '{"model": ', headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error.type, 'invalid_request_error');
  assert.ok(body.error.message.includes('not valid JSON'));
});

test('a prompt longer than the context is a 400 that says so; a huge body is a 413', async () => {
  const long = 'the cat sat on the mat and '.repeat(60);
  await assert.rejects(client.completions.create({ model, prompt: long, max_tokens: 4 }),
    (e) => e.status === 400 && e.code === 'context_length_exceeded' && /context/.test(e.message));
  const res = await fetch(`${srv.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt: 'x'.repeat(100000) }),
  });
  assert.equal(res.status, 413);
  assert.ok((await res.json()).error.message.includes('larger than'));
});

test('a model without a chat template gets a 400 for chat, completions still work', async () => {
  const c = bare.client();
  await assert.rejects(c.chat.completions.create({ model, messages: hello }),
    (e) => e.status === 400 && e.code === 'no_chat_template' && /chat template/.test(e.message));
  const r = await c.completions.create({ model, prompt: 'Once upon a time', max_tokens: 3 });
  assert.equal(r.usage.completion_tokens, 3);
});

test('with an API key every /v1 route needs it; /health does not', async () => {
  await assert.rejects(keyed.client().models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  await assert.rejects(keyed.client({ apiKey: 'sk-wrong' }).chat.completions.create({ model, messages: hello }),
    (e) => e.status === 401);
  await assert.rejects(keyed.client({ apiKey: 'sk-righ' }).models.list(), (e) => e.status === 401);
  const good = keyed.client({ apiKey: 'sk-right' });
  assert.equal((await good.models.list()).data.length, 1);
  assert.equal((await good.chat.completions.create({ model, messages: hello, max_tokens: 2 })).choices.length, 1);
  const noAuth = await fetch(`${keyed.url}/v1/completions`, { method: 'POST', body: '{}' });
  assert.equal(noAuth.status, 401);
  assert.equal((await fetch(`${keyed.url}/health`)).status, 200);
});

test('CORS only for the named origin; health and metrics', async () => {
  const pre = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'OPTIONS', headers: { Origin: 'http://app.example', 'Access-Control-Request-Method': 'POST' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'http://app.example');
  const other = await fetch(`${srv.url}/v1/models`, { headers: { Origin: 'http://evil.example' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  const off = await fetch(`${bare.url}/v1/models`, { headers: { Origin: 'http://app.example' } });
  assert.equal(off.headers.get('access-control-allow-origin'), null);

  assert.deepEqual(await (await fetch(`${srv.url}/health`)).json(), { status: 'ok' });
  const m = await metrics(srv.url);
  assert.ok(sum(m, 'chassis_requests_total') > 10);
  assert.ok(m['chassis_generated_tokens_total'] > 50);
  assert.equal(m['chassis_models_loaded'], 1);
  assert.equal(sum(m, 'chassis_active_sequences'), 0);
  assert.ok(m['chassis_time_to_first_token_seconds_count'] > 0);
  assert.equal((await fetch(`${srv.url}/nowhere`)).status, 404);
});
