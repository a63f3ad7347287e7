// Same answer under load: 16 streamed requests at once, each with its own prompt (greedy and seeded
// sampling), must produce exactly the tokens the same request produces alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stories, chatTemplate, metrics, sum } from './harness.mjs';

let srv, client;
const model = 'stories260K';
const subjects = ['a dog', 'the sea', 'a red ball', 'two friends', 'a big tree', 'the moon', 'a little bird',
  'a rainy day', 'a lost cat', 'the park', 'a birthday cake', 'a brave girl', 'the farm', 'a toy car', 'snow', 'a fish'];

function request(i) {
  return {
    model,
    messages: [{ role: 'user', content: `Tell me a story about ${subjects[i]}.` }],
    max_tokens: 40 + (i % 5) * 8,
    // Half greedy, half sampled with a seed: both must be reproducible under load.
    ...(i % 2 ? { temperature: 0.9, top_p: 0.95, seed: 1000 + i } : { temperature: 0 }),
    logprobs: true,
  };
}

// The token strings (from logprobs) and text of a streamed request.
async function streamed(i) {
  const stream = await client.chat.completions.create({ ...request(i), stream: true });
  const tokens = [];
  let text = '', finish = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    text += c.delta.content ?? '';
    for (const t of c.logprobs?.content ?? []) tokens.push(t.token);
    if (c.finish_reason) finish = c.finish_reason;
  }
  return { tokens, text, finish };
}

before(async () => {
  // Six slots for sixteen requests: batches mix prefill chunks and decode steps, and requests queue.
  srv = await startServer([stories, '--chat-template', chatTemplate, '--parallel', '6', '-c', '512']);
  client = srv.client();
});
after(async () => assert.equal((await srv.stop()).code, 0, srv.log()));

test('16 simultaneous streamed requests each get the tokens they get alone', async () => {
  const alone = [];
  for (let i = 0; i < 16; i++) alone.push(await streamed(i));
  for (const a of alone) assert.ok(a.tokens.length >= 5);
  const together = await Promise.all(subjects.map((_, i) => streamed(i)));
  for (let i = 0; i < 16; i++) {
    assert.deepEqual(together[i].tokens, alone[i].tokens, `request ${i} changed under load`);
    assert.equal(together[i].text, alone[i].text);
    assert.equal(together[i].finish, alone[i].finish);
  }
  // And non-streamed, all at once, once more.
  const plain = await Promise.all(subjects.map((_, i) => client.chat.completions.create(request(i))));
  for (let i = 0; i < 16; i++) assert.equal(plain[i].choices[0].message.content, alone[i].text);
  const m = await metrics(srv.url);
  assert.equal(sum(m, 'chassis_active_sequences'), 0);
  assert.ok(m['chassis_cached_prompt_tokens_total'] > 0, 'the shared template prefix was never reused');
});
