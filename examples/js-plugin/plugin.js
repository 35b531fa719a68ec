// The `headline` task plugin in JavaScript, built with componentize-js.
//
// The same plugin as the Rust template (examples/plugin-template): it reads
// {"text": "..."}, asks the operator's LLM for a headline and the text's mood
// as JSON valid against REPLY_SCHEMA, and returns
// {"headline", "mood", "audience", "model"}. Config values: `audience`
// (default "general readers") and `max_words` (a positive integer, default 12).
//
// The contract's imports are ES modules named after the WIT interfaces.
// Records are objects with camelCase fields, enums are strings, variants are
// {tag, val}, u64 values are BigInts. An export returning
// `result<_, task-error>` returns its value, or throws {tag, val}; an import
// that fails throws an Error whose `payload` is the import's error.

import { complete } from 'sluice:task/llm@0.1.0';
import { get } from 'sluice:task/config@0.1.0';
import { log } from 'sluice:task/log@0.1.0';

const REPLY_SCHEMA = JSON.stringify({
  type: 'object',
  properties: {
    headline: { type: 'string', minLength: 1, maxLength: 200 },
    mood: { enum: ['positive', 'neutral', 'negative'] },
  },
  required: ['headline', 'mood'],
  additionalProperties: false,
});

const permanent = (message) => ({ tag: 'permanent', val: message });
const retryable = (message) => ({ tag: 'retryable', val: message });

// An unusable reply is retried once (models are not deterministic).
function onceThenPermanent(attempt, message) {
  return attempt <= 1
    ? retryable(`${message} (attempt ${attempt}, will retry once)`)
    : permanent(`${message} (attempt ${attempt}, giving up)`);
}

// The standard mapping of an `llm` error (the Rust SDK's, in JavaScript).
function llmError(error, attempt) {
  switch (error.tag) {
    case 'timeout':
      return retryable('the LLM call timed out');
    case 'rate-limited':
      return retryable('the LLM provider is rate limiting');
    case 'provider': {
      const { status, message } = error.val;
      return status === 408 || status === 429 || status >= 500
        ? retryable(`the LLM provider failed with status ${status}: ${message}`)
        : permanent(`the LLM provider rejected the request with status ${status}: ${message}`);
    }
    case 'denied':
      return permanent(
        `the LLM call was denied: ${error.val} (the operator configures LLM access under [tasks.<task_type>.llm])`,
      );
    case 'invalid-request':
      return permanent(`the LLM request was refused as invalid: ${error.val}`);
    default:
      return onceThenPermanent(attempt, 'the LLM reply was larger than the host accepts');
  }
}

function positive(key, fallback) {
  const value = get(key);
  if (value === undefined || value === null) return fallback;
  const number = /^\s*\d+\s*$/.test(value) ? Number(value) : 0;
  if (!(number > 0)) {
    throw permanent(`config value \`${key}\` must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return number;
}

function instructions(audience, maxWords) {
  return (
    `Write a headline of at most ${maxWords} words for ${audience} about the user's text, ` +
    'and say whether its mood is positive, neutral or negative.'
  );
}

export function describe() {
  return { name: 'headline', version: '0.1.0', taskTypes: ['headline'], mode: 'item' };
}

export function process(items) {
  if (items.length !== 1) throw permanent(`expected exactly one item, got ${items.length}`);
  const item = items[0];
  let text;
  try {
    text = JSON.parse(item.payload).text;
  } catch (e) {
    throw permanent(`item ${item.id}: the payload is not JSON: ${e}`);
  }
  if (typeof text !== 'string') {
    throw permanent(`item ${item.id}: the payload does not have the expected shape: missing field \`text\``);
  }
  const audience = get('audience') ?? 'general readers';
  const maxWords = positive('max_words', 12);
  let response;
  try {
    response = complete({
      messages: [
        { role: 'system', content: instructions(audience, maxWords) },
        { role: 'user', content: text },
      ],
      maxTokens: 200,
      temperature: 0,
      stop: [],
      jsonSchema: REPLY_SCHEMA,
    });
  } catch (e) {
    throw llmError(e.payload ?? { tag: 'denied', val: String(e) }, item.attempt);
  }
  let reply;
  try {
    reply = JSON.parse(response.content);
  } catch (e) {
    throw onceThenPermanent(
      item.attempt,
      `the LLM reply cannot be used: ${e}; raw reply: ${JSON.stringify(response.content.slice(0, 4096))}`,
    );
  }
  log('info', `item ${item.id}: ${JSON.stringify(reply.headline)}`);
  const output = { headline: reply.headline, mood: reply.mood, audience, model: response.model };
  return { output: JSON.stringify(output), enqueue: [] };
}
